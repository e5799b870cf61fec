"""Removal engines side by side: what fills an erased object's hole best, at the photo's own resolution.

Engines (each fills only inside the hole; the classical ones work on a context crop around it):

    blur        smartbrush.method.masks.blur_fill (normalised convolution)
    telea       cv2.inpaint(..., INPAINT_TELEA), radius 5
    patchmatch  patchmatch_cython.inpaint_pyramid (exemplar-based, coarse to fine)
    pm_telea    PatchMatch's detail on Telea's tone: lowpass(telea) + 0.7 (pm - lowpass(pm)), a Gaussian
                of sigma = hole side / 16, on the hole's box grown by half its side: the library's removal,
                smartbrush.method.infill.infill (what an empty prompt does)
    pm_blur     the same on the blur fill's tone (infill(..., tone="blur"))
    model       the demo model alone: pipe(image, mask, "", precision=0, 20 steps)
    model_pm    the model refining a PatchMatch start at strength 0.5: the PatchMatch-filled image goes in
                as the image, with the model's removal prompt spelled out (pipe.config["removal_prompt"]):
                the same text conditioning as "", but the pipeline then starts the region from the given
                image (its fill start) instead of blur-filling the hole (its removal start); the UNet
                still sees the hole masked out (x_0 * (1 - m_s)) and only the hole is pasted back
    model_blur  (not run by default) the pipeline's own partial-strength removal: "", strength 0.5 (starts from the blur fill)
    truth       a reference, not an engine: the true background itself (its texture ratio says how
                textured the hole is beside its ring; a fill cannot be asked for much more)

Data, all held out from training:

    scenes128   objects-world test scenes (128 px): the scene with its object, a lasso around it (the
                object grown by 8 %), truth = the scene without the object
    scenes512   the same scenes upscaled to 512 px (bicubic), the lasso drawn at 512 px
    photos      real photos (Debian's opencv-doc sample data) with an emoji object pasted at its native
                size (about 128 px) at --per-photo seeded places, truth = the photo. HELD_OUT_PHOTOS are reported;
                DEV_PHOTOS were used to choose the combinations' parameters (--photos dev shows them)

Measures inside the hole, per case: tone shift (max over channels of |mean fill - mean truth|, levels),
texture ratio (mean gradient magnitude of the fill, the hole eroded by 2 px so the seam does not count,
over that of the TRUE image in a ring 8-16 px outside the hole), PSNR and SSIM (skimage; SSIM's map over
the hole's bounding box, averaged over the hole) against the truth, and seconds. The issue's goal per
case: tone shift <= blur's + 8, texture ratio >= 0.35, PSNR >= blur's - 2. Timing: a 200 x 200 hole in a
1-megapixel photo (aloeL resized to 1155 x 866), best of --repeats runs.

    python benchmarks/removal_engines.py [--n 3] [--photos held-out|dev|all|NAME,...] [--per-photo 1]
        [--engines blur,telea,...] [--seed 0] [--json out.json] [--figure docs/removal-engines.png]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import PIL.Image
import PIL.ImageDraw
from scipy import ndimage
from skimage.metrics import structural_similarity

from smartbrush.method.infill import infill
from smartbrush.method.masks import blur_fill, bounding_box

OPENCV_DOC_DATA = "usr/share/doc/opencv-doc/examples/data"
PHOTO_CACHE = Path.home() / ".cache" / "smartbrush-bench" / "opencv-photos"
DEV_PHOTOS = ("fruits.jpg", "messi5.jpg", "home.jpg", "baboon.jpg")
HELD_OUT_PHOTOS = (
    "building.jpg",
    "aloeL.jpg",
    "leuvenA.jpg",
    "squirrel_cls.jpg",
    "ela_original.jpg",
    "aero1.jpg",
)
TIMING_PHOTO, TIMING_SIZE, TIMING_HOLE = "aloeL.jpg", (1155, 866), 200
DEFAULT_ENGINES = "blur,telea,patchmatch,pm_telea,pm_blur,model,model_pm,truth"
ENGINES = ("blur", "telea", "patchmatch", "pm_telea", "pm_blur", "model", "model_pm", "model_blur",
           "truth")  # fmt: skip
LASSO_MARGIN = 0.08  # the lasso: the object grown by 8 % of its larger side (objects_eval's rule)
TONE_SLACK, TEXTURE_MIN, PSNR_SLACK = 8.0, 0.35, 2.0  # the goal, per case
RING = (8, 16)  # the texture ratio's reference ring outside the hole, in pixels
STRENGTH = 0.5  # model_pm and model_blur
# the combinations, chosen on the dev photos and scenes 1000-1005 (see docs/removal-engines.md)
PM_MARGIN = 0.5  # PatchMatch's context: the hole's box grown by half its side (1.0: 1.7x the time)


# -- data ------------------------------------------------------------------------------------------------


def opencv_photos(cache: Path = PHOTO_CACHE) -> Path:
    """The folder of Debian's opencv-doc sample photos, downloaded (apt-get download) and unpacked once."""
    marker = cache / "fruits.jpg"
    if marker.is_file():
        return cache
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        (deb,) = Path(tmp).glob("opencv-doc_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/x"], check=True)
        cache.mkdir(parents=True, exist_ok=True)
        for name in (*DEV_PHOTOS, *HELD_OUT_PHOTOS):
            (cache / name).write_bytes((Path(tmp) / "x" / OPENCV_DOC_DATA / name).read_bytes())
    return cache


def lasso(mask: np.ndarray, margin: float = LASSO_MARGIN) -> np.ndarray:
    """The object's mask grown by `margin` of its larger side (as objects_eval.removal_lasso)."""
    bounds = bounding_box(mask)
    assert bounds is not None, "lasso needs a non-empty mask"
    return ndimage.binary_dilation(mask, iterations=max(1, round(margin * max(bounds[2:]))))


@dataclass
class Case:
    dataset: str
    name: str
    image: np.ndarray  # HxWx3 uint8, with the object
    truth: np.ndarray  # the same without it
    hole: np.ndarray  # HxW bool: the lasso


def scene_cases(n: int, start: int) -> list[Case]:
    from smartbrush.research.objects import ObjectsWorld

    world = ObjectsWorld()
    cases = []
    for index in range(start, start + n):
        scene = world.scene("test", index)
        cases.append(Case("scenes128", f"scene {index}", scene.image, scene.background,
                          lasso(scene.mask)))  # fmt: skip
        big = [
            np.asarray(PIL.Image.fromarray(a).resize((512, 512), PIL.Image.Resampling.BICUBIC))
            for a in (scene.image, scene.background)
        ]
        mask = PIL.Image.fromarray(scene.mask.astype(np.uint8) * 255).resize((512, 512))
        cases.append(Case("scenes512", f"scene {index}", big[0], big[1],
                          lasso(np.asarray(mask) >= 128)))  # fmt: skip
    return cases


def sprites() -> dict[str, np.ndarray]:
    from smartbrush.research import objects

    with np.load(objects.prepare() / "sprites.npz") as data:
        return {name: data[name] for name in objects.CLASS_NAMES}


def paste(photo: np.ndarray, sprite: np.ndarray, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA sprite pasted at (x, y): (image, the object's mask: alpha >= 0.5)."""
    h, w = sprite.shape[:2]
    alpha = sprite[..., 3:].astype(np.float32) / 255
    image = photo.copy()
    region = image[y : y + h, x : x + w].astype(np.float32)
    image[y : y + h, x : x + w] = (region * (1 - alpha) + sprite[..., :3] * alpha).round()
    mask = np.zeros(photo.shape[:2], bool)
    mask[y : y + h, x : x + w] = alpha[..., 0] >= 0.5
    return image, mask


def photo_cases(names: list[str], seed: int, per_photo: int = 2) -> list[Case]:
    folder, drawings = opencv_photos(), sprites()
    labels = sorted(drawings)
    cases = []
    for k, name in enumerate(names):
        photo = np.asarray(PIL.Image.open(folder / name).convert("RGB"))
        rng = np.random.default_rng([seed, k])
        for j in range(per_photo):
            sprite = drawings[labels[int(rng.integers(len(labels)))]]
            if rng.random() < 0.5:
                sprite = sprite[:, ::-1]
            h, w = sprite.shape[:2]
            pad = 24  # room for the lasso and the ring
            x = int(rng.integers(pad, photo.shape[1] - w - pad))
            y = int(rng.integers(pad, photo.shape[0] - h - pad))
            image, mask = paste(photo, sprite, x, y)
            cases.append(Case("photos", f"{Path(name).stem} {j}", image, photo, lasso(mask)))
    return cases


def timing_case() -> Case:
    """A 200 x 200 hole (over a pasted object) in a 1-megapixel photo."""
    photo = PIL.Image.open(opencv_photos() / TIMING_PHOTO).convert("RGB")
    photo = np.asarray(photo.resize(TIMING_SIZE, PIL.Image.Resampling.LANCZOS))
    sprite = np.asarray(
        PIL.Image.fromarray(sprites()["dog"]).resize((180, 180), PIL.Image.Resampling.LANCZOS)
    )
    image, _ = paste(photo, sprite, 460, 340)
    hole = np.zeros(photo.shape[:2], bool)
    hole[330:530, 450:650] = True
    return Case("timing", "200x200 in 1 MP", image, photo, hole)


# -- engines ---------------------------------------------------------------------------------------------


def hole_side(hole: np.ndarray) -> int:
    bounds = bounding_box(hole)
    assert bounds is not None
    return max(bounds[2], bounds[3])


def context(hole: np.ndarray, margin: float = 1.0, least: int = 32) -> tuple[slice, slice]:
    """The hole's bounding box grown by `margin` of its larger side (at least `least` px) each way."""
    bounds = bounding_box(hole)
    assert bounds is not None
    x, y, w, h = bounds
    pad = max(least, round(margin * max(w, h)))
    height, width = hole.shape
    return slice(max(0, y - pad), min(height, y + h + pad)), slice(
        max(0, x - pad), min(width, x + w + pad)
    )


def on_crop(
    fill: Callable[[np.ndarray, np.ndarray, int], np.ndarray], margin: float = 1.0
) -> Callable:
    """An engine that fills the context crop only (the hole's box grown by `margin` of its side) and
    pastes the result inside the hole."""

    def engine(image: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
        rows, cols = context(hole, margin)
        filled = fill(np.ascontiguousarray(image[rows, cols]), hole[rows, cols], seed)
        out = image.copy()
        out[rows, cols][hole[rows, cols]] = filled[hole[rows, cols]]
        return out

    return engine


def telea(image: np.ndarray, hole: np.ndarray, seed: int = 0) -> np.ndarray:
    return cv2.inpaint(image, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)


def patchmatch(image: np.ndarray, hole: np.ndarray, seed: int = 0) -> np.ndarray:
    import patchmatch_cython

    return patchmatch_cython.inpaint_pyramid(image, hole, seed=seed)


class Model:
    """The demo model, loaded on first use."""

    def __init__(self):
        self.pipe = None

    def load(self):
        if self.pipe is None:
            from smartbrush.runtime.loading import load_pipeline

            self.pipe = load_pipeline("demo")
            self.pipe.set_progress_bar_config(disable=True)
        return self.pipe

    def alone(self, image: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
        out = self.load()(image, hole, "", precision=0.0, num_inference_steps=20, seed=seed)
        return np.asarray(out.images[0].convert("RGB"))

    def own_start(self, image: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
        out = self.load()(image, hole, "", precision=0.0, num_inference_steps=20, seed=seed,
                          strength=STRENGTH)  # fmt: skip
        return np.asarray(out.images[0].convert("RGB"))

    def from_patchmatch(self, image: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
        pipe = self.load()
        start = on_crop(patchmatch, PM_MARGIN)(image, hole, seed)
        out = pipe(start, hole, pipe.config["removal_prompt"], precision=0.0,
                   num_inference_steps=20, seed=seed, strength=STRENGTH)  # fmt: skip
        return np.asarray(out.images[0].convert("RGB"))


def engines(model: Model) -> dict[str, Callable]:
    return {
        "blur": on_crop(lambda image, hole, seed: blur_fill(image, hole)),
        "telea": on_crop(telea),
        "patchmatch": on_crop(patchmatch, PM_MARGIN),
        "pm_telea": infill,  # the library's removal (smartbrush.method.infill)
        "pm_blur": lambda image, hole, seed: infill(image, hole, seed, tone="blur"),
        "model": model.alone,
        "model_pm": model.from_patchmatch,
        "model_blur": model.own_start,
    }


# -- measures --------------------------------------------------------------------------------------------


def gradient(image: np.ndarray) -> np.ndarray:
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    dy, dx = np.gradient(grey)
    return np.hypot(dx, dy)


def measure(result: np.ndarray, case: Case) -> dict:
    hole, truth = case.hole, case.truth
    fill, true = result[hole].astype(np.float64), truth[hole].astype(np.float64)
    tone = float(np.abs(fill.mean(0) - true.mean(0)).max())
    inner = np.asarray(ndimage.binary_erosion(hole, iterations=2), bool)
    inner = inner if inner.any() else hole
    near = np.asarray(ndimage.binary_dilation(hole, iterations=RING[0]), bool)
    ring = np.asarray(ndimage.binary_dilation(hole, iterations=RING[1]), bool) & ~near
    texture = float(gradient(result)[inner].mean() / max(1e-6, gradient(truth)[ring].mean()))
    mse = float(((fill - true) ** 2).mean())
    psnr = 10 * np.log10(255**2 / max(mse, 1e-10))
    rows, cols = context(hole, margin=0.0, least=4)
    # skimage's annotation covers every return shape; full=True gives (score, map)
    _, ssim_map = cast(tuple[float, np.ndarray], structural_similarity(
        truth[rows, cols], result[rows, cols], channel_axis=-1, data_range=255, full=True))  # fmt: skip
    ssim = float(ssim_map.mean(-1)[hole[rows, cols]].mean())
    return {"tone": tone, "texture": texture, "psnr": float(psnr), "ssim": ssim}


def passes(row: dict, blur: dict) -> bool:
    return (
        row["tone"] <= blur["tone"] + TONE_SLACK
        and row["texture"] >= TEXTURE_MIN
        and row["psnr"] >= blur["psnr"] - PSNR_SLACK
    )


# -- report ----------------------------------------------------------------------------------------------


def summarise(rows: list[dict], names: list[str]) -> list[dict]:
    blur_of = {r["case"]: r for r in rows if r["engine"] == "blur"}
    summary = []
    for dataset in ("all", *dict.fromkeys(r["dataset"] for r in rows)):
        for name in names:
            mine = [r for r in rows if r["engine"] == name and dataset in ("all", r["dataset"])]
            if not mine:
                continue
            line = {"dataset": dataset, "engine": name, "cases": len(mine)}
            for key in ("tone", "texture", "psnr", "ssim", "seconds"):
                values = [r[key] for r in mine]
                line[f"{key}_median"] = statistics.median(values)
                line[f"{key}_mean"] = statistics.fmean(values)
            line["psnr_worst_vs_blur"] = min(r["psnr"] - blur_of[r["case"]]["psnr"] for r in mine)
            line["pass"] = sum(passes(r, blur_of[r["case"]]) for r in mine)
            summary.append(line)
    return summary


def format_table(summary: list[dict]) -> str:
    head = (
        f"{'data':<10} {'engine':<11} {'n':>3} {'tone med/mean':>14} {'texture med/mean':>17} "
        f"{'PSNR med/mean':>14} {'worst dPSNR':>11} {'SSIM med':>8} {'s med':>6} {'goal':>7}"
    )
    lines = [head, "-" * len(head)]
    for s in summary:
        lines.append(
            f"{s['dataset']:<10} {s['engine']:<11} {s['cases']:>3} "
            f"{s['tone_median']:>6.1f} /{s['tone_mean']:>6.1f} "
            f"{s['texture_median']:>8.2f} /{s['texture_mean']:>6.2f} "
            f"{s['psnr_median']:>6.1f} /{s['psnr_mean']:>6.1f} {s['psnr_worst_vs_blur']:>+11.1f} "
            f"{s['ssim_median']:>8.3f} {s['seconds_median']:>6.2f} {s['pass']:>3}/{s['cases']:<3}"
        )
    return "\n".join(lines)


def figure(cases: list[Case], results: dict, columns: list[str], path: Path) -> None:
    """Crops around the hole at 100 %: one row per case, one column per engine (truth first)."""
    tiles, label_height = [], 14
    for case in cases:
        rows, cols = context(case.hole, margin=0.15, least=12)
        row = [("truth", case.truth[rows, cols])]
        row += [(c, results[(case.dataset, case.name, c)][rows, cols]) for c in columns]
        tiles.append(row)
    width = max(sum(t.shape[1] + 4 for _, t in row) for row in tiles)
    height = sum(max(t.shape[0] for _, t in row) + label_height + 4 for row in tiles)
    canvas = PIL.Image.new("RGB", (width, height), "white")
    draw = PIL.ImageDraw.Draw(canvas)
    y = 0
    for case, row in zip(cases, tiles):
        x = 0
        for name, tile in row:
            draw.text((x + 2, y + 1), name if name != "truth" else f"{case.name}", fill="black")
            canvas.paste(PIL.Image.fromarray(tile), (x, y + label_height))
            x += tile.shape[1] + 4
        y += max(t.shape[0] for _, t in row) + label_height + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument(
        "--n", type=int, default=3, help="objects-world test scenes (each at 128 and 512 px)"
    )
    parser.add_argument("--scene-start", type=int, default=0, help="first test scene index")
    parser.add_argument(
        "--photos", default="held-out", help="held-out, dev, all, none, or NAME,..."
    )
    parser.add_argument("--engines", default=DEFAULT_ENGINES, help=f"of {', '.join(ENGINES)}")
    parser.add_argument("--per-photo", type=int, default=1, help="pasted objects per photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timing runs (the best counts)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--json", type=Path, help="write every row and the summary here")
    parser.add_argument("--figure", type=Path, help="write a comparison PNG here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    names = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(names) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    if "blur" not in names:
        names.insert(0, "blur")  # the goal is relative to it
    photos = {"held-out": list(HELD_OUT_PHOTOS), "dev": list(DEV_PHOTOS), "none": [],
              "all": [*DEV_PHOTOS, *HELD_OUT_PHOTOS]}.get(args.photos) or args.photos.split(",")  # fmt: skip
    photos = [] if args.photos == "none" else photos

    model = Model()
    run = engines(model)
    cases = scene_cases(args.n, args.scene_start) + photo_cases(photos, args.seed, args.per_photo)
    started = time.monotonic()
    rows, results = [], {}
    for k, case in enumerate(cases):
        seed = args.seed + k
        for name in names:
            if name.startswith("model"):
                model.load()  # not counted in the first case's seconds
            t0 = time.perf_counter()
            if name == "truth":
                result = np.where(case.hole[..., None], case.truth, case.image)
            else:
                result = run[name](case.image, case.hole, seed)
            seconds = time.perf_counter() - t0
            assert np.array_equal(result[~case.hole], case.image[~case.hole]) or name.startswith(
                "model"
            ), f"{name} changed pixels outside the hole"
            results[(case.dataset, case.name, name)] = result
            rows.append({"dataset": case.dataset, "case": f"{case.dataset} {case.name}",
                         "engine": name, "seconds": seconds, **measure(result, case)})  # fmt: skip
        print(f"  [{k + 1}/{len(cases)}] {case.dataset} {case.name}", file=sys.stderr, flush=True)
    summary = summarise(rows, names)
    print(format_table(summary))

    timing = {}
    if not args.no_timing:
        case = timing_case()
        for name in [n for n in names if n != "truth"]:
            runs = []
            for _ in range(args.repeats if not name.startswith("model") else 1):
                t0 = time.perf_counter()
                run[name](case.image, case.hole, args.seed)
                runs.append(time.perf_counter() - t0)
            timing[name] = min(runs)
        print(f"\n{TIMING_HOLE} x {TIMING_HOLE} hole in a {TIMING_SIZE[0]} x {TIMING_SIZE[1]} photo "
              f"(best of {args.repeats}; model: 1 run), {args.threads} threads, load average "
              f"{os.getloadavg()[0]:.1f}:")  # fmt: skip
        print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in timing.items()))
    print(f"\n{len(cases)} cases, {time.monotonic() - started:.0f} s")

    if args.figure:
        best = next((c for c in ("pm_telea", "pm_blur", "model_pm") if c in names), None)
        columns = [c for c in ("blur", "telea", "patchmatch", best, "model") if c in names and c]
        picks = [c for c in cases if c.dataset == "photos"][:2] + [
            c for c in cases if c.dataset == "scenes512"
        ][:2]
        figure(picks, results, columns, args.figure)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows, "summary": summary, "timing": timing},
                                        indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

"""Fills at canvas scale: the detail stage (crispness and time) and the pixel-precise object mask.

    python benchmarks/canvas_scale.py [--model demo] [--photos held-out] [--scenes 24] [--json out.json]

1. Crispness retention (the `detail` fill option, smartbrush.method.detail). The same prompt and seed
   fill a box whose context crop is the model's size (128 px for the demo) and the same photo at 3x
   with a 3x box and 3x context, so the model sees the same picture. Crispness = the 95th percentile
   of the gradient magnitude (Sobel, grey) over the painted object and its outline (crispness());
   retention = the large fill's over the small one's (1: as crisp as the model paints it).
   Photos: Debian's opencv-doc samples (see removal_engines.py), held out by default.
2. Time: a 20-step fill of the 3x case with each detail level, side by side, best of 2.
3. The object's mask (the `pixel_precise_mask` pipeline argument): objects-world test scenes rendered
   at 128 and 512 px, filled with the object's box (precision 1) and its exact mask (precision 0);
   the generated object is what the fill changed (the evaluation's rule, objects_eval.changed_pixels,
   inside the box); IoU of the pipeline's predicted mask with it, at latent cells vs to the pixel.
   Scenes 0.. are reported; scenes from 1000 on are for tuning (--scene-start 1000).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from removal_engines import DEV_PHOTOS, HELD_OUT_PHOTOS, opencv_photos  # noqa: E402

PROMPTS = ("a red car", "a sunflower", "a butterfly", "a teddy bear", "an apple", "a dog")
SMALL_SHORT_SIDE = 200  # the small photo's short side; the large one is 3x
SCALE = 3
DETAILS = ("off", "fast", "best")


def crispness(out, scale: int = 1) -> float:
    """95th percentile of the grey gradient magnitude over the painted object and its outline (its
    predicted mask grown by 2 px at the small scale), where it is pasted; not the pasted background
    around it, whose grain is the photo's own and changes with the photo's scale."""
    image, alpha = np.asarray(out.images[0].convert("RGB")), np.asarray(out.alphas[0])
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    magnitude = np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))
    painted = np.asarray(
        ndimage.binary_dilation(np.asarray(out.masks[0]) >= 128, iterations=2 * scale), bool
    )
    region = painted & (alpha >= 128)
    return float(np.percentile(magnitude[region], 95)) if region.any() else float("nan")


def box_for_crop(pipe, shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(box side, padding) of a centred square box whose context crop is `side` px."""
    height, width = shape
    for box in range(side, 8, -1):
        padding = max(4, (side - box) // 2)
        mask = np.zeros(shape, np.uint8)
        x, y = (width - box) // 2, (height - box) // 2
        mask[y : y + box, x : x + box] = 255
        x1, y1, x2, y2 = pipe.crop_region(mask, padding)
        if x2 - x1 <= side and y2 - y1 <= side:
            return box, padding
    raise ValueError("no box fits")


def detail_cases(names: list[str], per_photo: int, seed: int):
    folder = opencv_photos()
    rng = np.random.default_rng(seed)
    for name in names:
        photo = PIL.Image.open(folder / name).convert("RGB")
        scale = SMALL_SHORT_SIDE / min(photo.size)
        small_size = (round(photo.width * scale), round(photo.height * scale))
        small = photo.resize(small_size, PIL.Image.Resampling.LANCZOS)
        large = photo.resize(
            (small_size[0] * SCALE, small_size[1] * SCALE), PIL.Image.Resampling.LANCZOS
        )
        for prompt in rng.choice(PROMPTS, per_photo, replace=False):
            yield Path(name).stem, str(prompt), np.asarray(small), np.asarray(large)


def square_mask(shape: tuple[int, int], side: int) -> np.ndarray:
    height, width = shape
    mask = np.zeros(shape, np.uint8)
    x, y = (width - side) // 2, (height - side) // 2
    mask[y : y + side, x : x + side] = 255
    return mask


def around_box(image, box: int, scale: int = 1) -> np.ndarray:
    """The centred box (square_mask's) with a quarter of its side around it, at `scale`."""
    image = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    height, width = image.shape[:2]
    side, margin = box * scale, box * scale // 4
    x, y = (width - side) // 2 - margin, (height - side) // 2 - margin
    return image[max(0, y) : y + side + 2 * margin, max(0, x) : x + side + 2 * margin]


def run_detail(pipe, names: list[str], per_photo: int, steps: int, seed: int, figure: list) -> dict:
    rows = []
    for photo, prompt, small, large in detail_cases(names, per_photo, seed):
        box, padding = box_for_crop(pipe, small.shape[:2], pipe.resolution)
        small_mask = square_mask(small.shape[:2], box)
        large_mask = square_mask(large.shape[:2], box * SCALE)
        common = {"precision": 1.0, "seed": seed, "num_inference_steps": steps}
        small_out = pipe(small, small_mask, prompt, padding_mask_crop=padding, **common)
        base = crispness(small_out)
        row = {"photo": photo, "prompt": prompt, "box": box, "small_crispness": base}
        small_tile = PIL.Image.fromarray(around_box(small_out.images[0], box))
        tiles = [np.asarray(small_tile.resize((small_tile.width * SCALE, small_tile.height * SCALE),
                                              PIL.Image.Resampling.NEAREST))]  # fmt: skip
        for detail in DETAILS:
            out = pipe(large, large_mask, prompt, padding_mask_crop=padding * SCALE,
                       detail=detail, **common)  # fmt: skip
            row[detail] = crispness(out, SCALE) / base
            tiles.append(around_box(out.images[0], box, SCALE))
        if len(figure) < 2:  # the model's own pixels (3x, nearest), then off / fast / best at 100 %
            figure.append(tiles)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        d: {
            "median": statistics.median(r[d] for r in rows),
            "mean": statistics.fmean(r[d] for r in rows),
        }
        for d in DETAILS
    }
    return {"rows": rows, "retention": summary}


def run_timing(pipe, steps: int, seed: int) -> dict:
    (_, prompt, small, large), *_ = detail_cases([HELD_OUT_PHOTOS[0]], 1, seed)
    box, padding = box_for_crop(pipe, small.shape[:2], pipe.resolution)
    mask = square_mask(large.shape[:2], box * SCALE)
    seconds = {}
    for _ in range(2):  # interleaved, so load on the machine falls on every level alike
        for detail in DETAILS:
            start = time.perf_counter()
            pipe(large, mask, prompt, precision=1.0, seed=seed, num_inference_steps=steps,
                 padding_mask_crop=padding * SCALE, detail=detail)  # fmt: skip
            spent = time.perf_counter() - start
            seconds[detail] = min(seconds.get(detail, spent), spent)
    return {
        "case": f"{large.shape[1]}x{large.shape[0]} photo, {box * SCALE}-px box, {steps} steps",
        "seconds": seconds,
        "added": {d: seconds[d] - seconds["off"] for d in DETAILS},
    }


def outline(image: np.ndarray, mask: np.ndarray, colour=(255, 0, 255)) -> np.ndarray:
    edge = mask & ~np.asarray(ndimage.binary_erosion(mask), bool)
    out = np.array(image)
    out[np.asarray(ndimage.binary_dilation(edge), bool)] = colour
    return out


def run_masks(pipe, n: int, start: int, sizes: list[int], steps: int, figure: list) -> dict:
    from smartbrush.method.masks import box_mask
    from smartbrush.research.evaluation import iou
    from smartbrush.research.objects import ObjectsWorld
    from smartbrush.research.objects_eval import changed_pixels

    world = ObjectsWorld()
    results, shown = {}, []
    for size in sizes:
        ious = {(mode, pixel): [] for mode in ("box", "exact") for pixel in (False, True)}
        for index in range(start, start + n):
            scene = world.scene("test", index, size=size)
            boxed = box_mask(scene.mask)
            for mode, mask, precision in (("box", boxed, 1.0), ("exact", scene.mask, 0.0)):
                for pixel in (False, True):
                    out = pipe(scene.background, mask, f"a {scene.label}", precision=precision,
                               seed=index, num_inference_steps=steps,
                               pixel_precise_mask=pixel)  # fmt: skip
                    after = np.asarray(out.images[0].convert("RGB"))
                    generated = changed_pixels(after, scene.background) & boxed
                    predicted = np.asarray(out.masks[0]) >= 128
                    ious[mode, pixel].append(iou(predicted, generated))
                    if size == max(sizes) and mode == "box" and index < start + 2:
                        shown.append(outline(after, predicted))  # cells, then to the pixel
                        if pixel:
                            figure.append(shown[-2:])
        results[str(size)] = {
            f"{mode} {'pixel' if pixel else 'cells'}": statistics.fmean(values)
            for (mode, pixel), values in ious.items()
        }
        print(size, json.dumps(results[str(size)]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--photos", choices=("held-out", "dev"), default="held-out")
    parser.add_argument("--per-photo", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--scene-start", type=int, default=0)
    parser.add_argument("--sizes", default="128,512")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="detail,timing,masks")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--figure", type=Path, help="PNG of detail crops (and NAME-masks.png: the masks' outlines)"
    )
    args = parser.parse_args()

    import torch

    import smartbrush

    torch.set_num_threads(2)
    pipe = smartbrush.load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    names: list[str] = list(HELD_OUT_PHOTOS if args.photos == "held-out" else DEV_PHOTOS)
    parts = args.parts.split(",")
    report: dict = {"model": args.model, "photos": args.photos}
    figure, mask_figure = [], []
    if "detail" in parts:
        report["detail"] = run_detail(pipe, names, args.per_photo, args.steps, args.seed, figure)
        print("retention", json.dumps(report["detail"]["retention"]))
    if "timing" in parts:
        report["timing"] = run_timing(pipe, args.steps, args.seed)
        print("timing", json.dumps(report["timing"]))
    if "masks" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        report["masks"] = run_masks(
            pipe, args.scenes, args.scene_start, sizes, args.steps, mask_figure
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.figure:
        from smartbrush.research.world import render_grid

        if figure:
            render_grid(figure, scale=1).save(args.figure)
        if mask_figure:
            masks_path = args.figure.with_name(f"{args.figure.stem}-masks{args.figure.suffix}")
            render_grid(mask_figure, scale=1).save(masks_path)


if __name__ == "__main__":
    main()

"""`smartbrush demo -o DIR`: real fills with the shipped demo model, before/after PNGs and a grid.

The demo model (objects world) fills held-out photos shipped in smartbrush/demo_assets: each with an
exact mask (precision 0) and its bounding box (precision 1), and erases a pasted object (empty prompt):

    before.png, mask.png, after.png (exact), after-box.png, box-mask.png, predicted-mask.png (box fill),
    predicted-mask-exact.png, removal-before.png, removal-mask.png, removal-after.png,
    large-after.png, large-after-off.png (a box larger than the model's 128 px: its fill with the
    detail stage, and resampled)
    grid.png          every case: photo | mask | fill | predicted mask | box | fill | predicted mask,
                      the large box: photo | box | resampled fill | detail fill | its predicted mask,
                      and the removal: photo with the object | lasso | erased

With `--model shapes` (the 32 x 32 shapes world) the PNGs are enlarged (nearest neighbour, --scale) so the
pixels are visible. Files written:

    before.png        the test image (no object where the mask is)
    mask.png          the exact mask given to the model
    after.png         the fill with the exact mask (precision 0)
    after-box.png     the fill with the mask's bounding box (precision 1)
    predicted-mask.png  the object mask the model predicted for the box fill
    grid.png          several scenes and prompts: before | mask | fill | predicted mask, exact and box
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import PIL.Image

from smartbrush.method.detail import DEFAULT_DETAIL
from smartbrush.research import world

# (test scene, prompt): mostly the mask's own shape in another colour; the last rows ask for another
# shape than the mask has (exact masks keep their shape, boxes take the prompt's) or use looser words
GRID_CASES = [
    (7, "a yellow star"),
    (3, "a red heart"),
    (5, "a blue circle"),
    (4, "an orange triangle"),
    (29, "a purple cross"),
    (14, "a white square"),
    (19, "a black heart"),
    (0, "a red star"),
    (6, "a green heart"),
    (13, "bright blue star shape"),
]


def fill_pair(pipe, scene: world.Scene, prompt: str, seed: int, steps: int):
    """Fills of the scene's hole with its exact mask and with its bounding box."""
    from smartbrush.method.masks import box_mask

    exact = pipe(
        scene.background, scene.mask, prompt, precision=0.0, seed=seed, num_inference_steps=steps
    )
    box = pipe(scene.background, box_mask(scene.mask), prompt, precision=1.0, seed=seed,
               num_inference_steps=steps)  # fmt: skip
    return exact, box


def save_scaled(array: np.ndarray, path: Path, scale: int) -> None:
    image = PIL.Image.fromarray(np.asarray(array, dtype=np.uint8) if np.asarray(array).dtype != bool
                                else np.asarray(array, dtype=np.uint8) * 255)  # fmt: skip
    size = (image.width * scale, image.height * scale)
    image.resize(size, PIL.Image.Resampling.NEAREST).save(path)


def make_grid(pipe, cases=GRID_CASES, steps: int = 20, scale: int = 4) -> PIL.Image.Image:
    """One row per (scene, prompt): before, exact mask, fill, predicted mask, box mask, fill, predicted."""
    from smartbrush.method.masks import box_mask

    rows = []
    for index, prompt in cases:
        scene = world.make_scene("test", index)
        exact, box = fill_pair(pipe, scene, prompt, seed=index, steps=steps)
        rows.append([
            scene.background,
            scene.mask,
            np.asarray(exact.images[0]),
            np.asarray(exact.masks[0]),
            box_mask(scene.mask),
            np.asarray(box.images[0]),
            np.asarray(box.masks[0]),
        ])  # fmt: skip
    return world.render_grid(rows, scale=scale)


# -- the objects world: real photos -------------------------------------------------------------------

ASSETS = Path(__file__).resolve().parents[1] / "demo_assets"  # made by scripts/make_demo_assets.py


def photo_cases() -> dict:
    import json

    return json.loads((ASSETS / "cases.json").read_text())


def _load(name: str, mode: str) -> np.ndarray:
    with PIL.Image.open(ASSETS / name) as image:
        return np.asarray(image.convert(mode))


# a box about 1.6x the model's resolution, whose context crop is about 2.5x: fills at canvas scale
LARGE_FILL = {"image": "photo-2.jpg", "box": (92, 28, 200, 200), "prompt": "a sunflower"}


def large_fill(pipe, out: Path, seed: int, steps: int) -> list[np.ndarray]:
    """The large box filled with the detail stage (the default) and resampled (detail="off")."""
    image = _load(LARGE_FILL["image"], "RGB")
    x, y, width, height = LARGE_FILL["box"]
    box = np.zeros(image.shape[:2], bool)
    box[y : y + height, x : x + width] = True
    fills = {
        detail: pipe(image, box, LARGE_FILL["prompt"], precision=1.0, seed=seed,
                     num_inference_steps=steps, detail=detail)
        for detail in ("off", DEFAULT_DETAIL)
    }  # fmt: skip
    save_scaled(np.asarray(fills["off"].images[0]), out / "large-after-off.png", 1)
    detailed = fills[DEFAULT_DETAIL]
    save_scaled(np.asarray(detailed.images[0]), out / "large-after.png", 1)
    return [image, box, np.asarray(fills["off"].images[0]), np.asarray(detailed.images[0]),
            np.asarray(detailed.masks[0])]  # fmt: skip


def photo_demo(pipe, out: Path, prompt: str | None, seed: int, steps: int, grid: bool) -> list[str]:
    """Fills on held-out photos (exact mask and box) and a removal; returns the files written."""
    from smartbrush.method.masks import box_mask

    cases = photo_cases()
    rows = []
    for k, case in enumerate(cases["fills"] if grid else cases["fills"][:1]):
        image, mask = _load(case["image"], "RGB"), _load(case["mask"], "L") >= 128
        text = prompt if (prompt is not None and k == 0) else case["prompt"]
        exact = pipe(image, mask, text, precision=0.0, seed=seed, num_inference_steps=steps)
        box = pipe(image, box_mask(mask), text, precision=1.0, seed=seed, num_inference_steps=steps)
        row = [image, mask, np.asarray(exact.images[0]), np.asarray(exact.masks[0]),
               box_mask(mask), np.asarray(box.images[0]), np.asarray(box.masks[0])]  # fmt: skip
        if k == 0:
            names = ["before", "mask", "after", "predicted-mask-exact", "box-mask", "after-box",
                     "predicted-mask"]  # fmt: skip
            for name, array in zip(names, row, strict=True):
                save_scaled(array, out / f"{name}.png", 1)
            first_prompt = text
        rows.append(row)
    rows.append(large_fill(pipe, out, seed, steps))
    case = cases["removal"]
    image, lasso = _load(case["image"], "RGB"), _load(case["mask"], "L") >= 128
    removed = pipe(image, lasso, "", precision=0.0, seed=seed, num_inference_steps=steps)
    save_scaled(image, out / "removal-before.png", 1)
    save_scaled(lasso, out / "removal-mask.png", 1)
    save_scaled(np.asarray(removed.images[0]), out / "removal-after.png", 1)
    rows.append([image, lasso, np.asarray(removed.images[0])])
    files = ["before.png", "mask.png", "after.png", "after-box.png", "predicted-mask.png",
             "large-after.png", "removal-after.png"]  # fmt: skip
    if grid:
        world.render_grid(rows, scale=1).save(out / "grid.png")
        files.append("grid.png")
    return [f'"{first_prompt}" on {cases["fills"][0]["source"]}', *files]


def run(args: argparse.Namespace) -> int:
    from smartbrush.method.masks import box_mask
    from smartbrush.research.evaluation import world_of
    from smartbrush.runtime.loading import load_pipeline

    if args.scale < 1:
        raise ValueError("--scale must be at least 1")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    if world_of(pipe, "auto") == "objects":
        what, *files = photo_demo(pipe, out, args.prompt, args.seed, args.steps, not args.no_grid)
        print(
            f"filled a held-out photo with {what} (seed {args.seed}), exact mask and box, and erased "
            f"an object, in {time.monotonic() - started:.1f} s: "
            + ", ".join(f"{out}/{name}" for name in files)
        )
        return 0
    args.prompt = args.prompt or "a yellow heart"
    scene = world.make_scene("test", args.scene)
    exact, box = fill_pair(pipe, scene, args.prompt, args.seed, args.steps)
    save_scaled(scene.background, out / "before.png", args.scale)
    save_scaled(scene.mask, out / "mask.png", args.scale)
    save_scaled(np.asarray(exact.images[0]), out / "after.png", args.scale)
    save_scaled(np.asarray(box.images[0]), out / "after-box.png", args.scale)
    save_scaled(box_mask(scene.mask), out / "box-mask.png", args.scale)
    save_scaled(np.asarray(box.masks[0]), out / "predicted-mask.png", args.scale)
    if not args.no_grid:
        make_grid(pipe, steps=args.steps).save(out / "grid.png")
    print(
        f'filled test scene {args.scene} with "{args.prompt}" (seed {args.seed}) in '
        f"{time.monotonic() - started:.1f} s: {out}/before.png, after.png (exact mask), after-box.png "
        f"(box mask), predicted-mask.png{'' if args.no_grid else ', grid.png'} "
        f"(32 x 32 model, shown {args.scale}x)"
    )
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="smartbrush-demo", help="folder for the PNGs")
    parser.add_argument(
        "--model", default="demo", help='"demo" or a SmartBrush folder trained on the world'
    )
    parser.add_argument(
        "--prompt", help="what to paint into the first hole (default: the case's own prompt)"
    )
    parser.add_argument("--scene", type=int, default=3, help="shapes models: test scene to fill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20, help="denoising steps")
    parser.add_argument(
        "--scale", type=int, default=8, help="shapes models: enlarge the PNGs this many times"
    )
    parser.add_argument("--no-grid", action="store_true", help="skip the grid of several fills")

"""`smartbrush demo -o DIR`: a real fill with the shipped demo model, before/after PNGs and a grid.

The demo model works on 32 x 32 shapes-world images; the PNGs are enlarged (nearest neighbour, --scale)
so the pixels are visible. Files written:

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

from smartbrush import world

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
    from smartbrush.masks import box_mask

    exact = pipe(
        scene.background, scene.mask, prompt, precision=0.0, seed=seed, num_inference_steps=steps
    )
    box = pipe(scene.background, box_mask(scene.mask), prompt, precision=1.0, seed=seed,
               num_inference_steps=steps)  # fmt: skip
    return exact, box


def save_scaled(array: np.ndarray, path: Path, scale: int) -> None:
    image = PIL.Image.fromarray(np.asarray(array, dtype=np.uint8) if np.asarray(array).dtype != bool
                                else np.asarray(array, dtype=np.uint8) * 255)  # fmt: skip
    image.resize((image.width * scale, image.height * scale), PIL.Image.NEAREST).save(path)


def make_grid(pipe, cases=GRID_CASES, steps: int = 20, scale: int = 4) -> PIL.Image.Image:
    """One row per (scene, prompt): before, exact mask, fill, predicted mask, box mask, fill, predicted."""
    from smartbrush.masks import box_mask

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


def demo_command(args: argparse.Namespace) -> int:
    from smartbrush.loading import load_pipeline
    from smartbrush.masks import box_mask

    if args.scale < 1:
        raise ValueError("--scale must be at least 1")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
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


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run a real fill with the demo model and write before/after PNGs",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("-o", "--output", default="smartbrush-demo", help="folder for the PNGs")
    parser.add_argument(
        "--model", default="demo", help='"demo" or a SmartBrush folder trained on the world'
    )
    parser.add_argument("--prompt", default="a yellow heart", help="what to paint into the hole")
    parser.add_argument("--scene", type=int, default=3, help="shapes-world test scene to fill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20, help="denoising steps")
    parser.add_argument("--scale", type=int, default=8, help="enlarge the PNGs this many times")
    parser.add_argument("--no-grid", action="store_true", help="skip the grid of several fills")
    parser.set_defaults(func=demo_command)

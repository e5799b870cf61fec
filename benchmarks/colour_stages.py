"""Where does blue get lost? The hue error of each stage of a fill, in CIELAB (issue 32, part 1).

    python benchmarks/colour_stages.py [--model demo] [--seeds 2] [--scenes 2] [--json out.json]

Stages, each measured against the colour the training data shows for the word (the emoji sprite's mean
colour over its opaque pixels, e.g. "blue heart": RGB 28, 115, 205):

1. autoencoder   a 56-px patch of the colour on mid grey, encoded and decoded (no model): what the
                 autoencoder alone does to it (also pure sRGB blue, cyan and purple);
2. model         "a <colour> <shape>" filled into a box on mid grey and on held-out test scenes; the
                 model's final latents decoded directly (no paste), mean colour over the predicted object;
3. pasted        the same fill as the pipeline returns it (after the paste);
4. clip range    stage 2 again with the sampler's clip_sample_range at 1, 2, 4 (shipped) and 8.

Hue error = |h(measured) - h(target)| in degrees (CIELAB LCh); dE = CIEDE2000. A teal instead of blue
shows as a hue error of about 30-40 degrees.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from skimage import color

COLOUR_SHAPES = [("blue", "heart"), ("blue", "circle"), ("blue", "square"), ("purple", "heart"),
                 ("green", "heart"), ("red", "heart"), ("orange", "circle")]  # fmt: skip
EXTRA_PATCHES = {"pure blue": (0, 0, 255), "cyan": (0, 200, 220), "pure purple": (128, 0, 255)}
GREY = 128


def lab(rgb) -> np.ndarray:
    return color.rgb2lab(np.asarray(rgb, dtype=np.float64).reshape(1, 1, 3) / 255)[0, 0]


def hue_error(measured, target) -> tuple[float, float]:
    """(hue angle difference in degrees, CIEDE2000) of two RGB colours."""
    from smartbrush.research import objects_eval

    a, b = lab(measured), lab(target)
    return objects_eval.hue_error(a, b), float(color.deltaE_ciede2000(a, b))


def sprite_colours() -> dict[str, np.ndarray]:
    from smartbrush.research import objects

    with np.load(objects.prepare() / "sprites.npz") as data:
        return {
            f"{c} {s}": data[f"{c} {s}"][data[f"{c} {s}"][..., 3] > 128][:, :3].mean(0)
            for c, s in COLOUR_SHAPES
        }


@torch.no_grad()
def round_trip(pipe, rgb) -> np.ndarray:
    image = np.full((128, 128, 3), GREY, np.uint8)
    image[36:92, 36:92] = rgb
    pixels = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1)
    out = pipe.decode_image(pipe.encode_image(pixels.to(pipe.unet.dtype)))
    decoded = (out[0].float().numpy().transpose(1, 2, 0) + 1) * 127.5
    return decoded[44:84, 44:84].reshape(-1, 3).mean(0)  # the patch, away from its edge


@torch.no_grad()
def model_fill(pipe, background: np.ndarray, prompt: str, seed: int, steps: int):
    """(mean colour of the model's own decoded output over its predicted object, the same over the
    pasted result), or None where it predicted no object."""
    side = background.shape[0]
    mask = np.zeros(background.shape[:2], np.uint8)
    mask[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 255
    captured = {}

    def keep(pipeline, step, timestep, tensors):
        captured["latents"], captured["mask"] = tensors["latents"], tensors["object_mask"]
        return tensors

    out = pipe(background, mask, prompt, precision=1.0, seed=seed, num_inference_steps=steps,
               callback_on_step_end=keep, padding_mask_crop=None)  # fmt: skip
    raw = (pipe.decode_image(captured["latents"])[0].float().numpy().transpose(1, 2, 0) + 1) * 127.5
    res = raw.shape[0]
    cells = captured["mask"][0, 0].float()[None, None]
    inside = torch.nn.functional.interpolate(cells, size=(res, res))[0, 0].numpy() > 0.5
    predicted = np.asarray(out.masks[0]) >= 128
    if not inside.any() or not predicted.any():
        return None
    pasted = np.asarray(out.images[0].convert("RGB"), dtype=np.float64)[predicted].mean(0)
    return raw[inside].mean(0), pasted


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=2, help="held-out test scenes as backgrounds")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--clip-ranges", default="1,2,4,8")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import smartbrush
    from smartbrush.research.objects import ObjectsWorld

    torch.set_num_threads(2)
    pipe = smartbrush.load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    targets = sprite_colours()
    report: dict = {"targets": {k: v.round().tolist() for k, v in targets.items()}}

    rows = {}
    for name, rgb in [*targets.items(), *EXTRA_PATCHES.items()]:
        rows[name] = hue_error(round_trip(pipe, np.round(rgb)), rgb)
    report["autoencoder"] = rows
    print("1. autoencoder round trip: hue error / dE")
    for name, (hue, delta) in rows.items():
        print(f"   {name:14s} {hue:5.1f} deg  dE {delta:5.1f}")

    world = ObjectsWorld()
    backgrounds = [np.full((128, 128, 3), GREY, np.uint8)] + [
        world.scene("test", index).background for index in range(args.scenes)
    ]
    shipped = pipe.scheduler.config.get("clip_sample_range")
    for clip in [float(c) for c in args.clip_ranges.split(",")]:
        pipe.scheduler.register_to_config(clip_sample_range=clip)
        stage = {}
        for name, target in targets.items():
            model_errors, pasted_errors = [], []
            for background in backgrounds:
                for seed in range(args.seeds):
                    got = model_fill(pipe, background, f"a {name}", seed, args.steps)
                    if got is not None:
                        model_errors.append(hue_error(got[0], target))
                        pasted_errors.append(hue_error(got[1], target))
            stage[name] = {
                "n": len(model_errors),
                "model_hue": statistics.median(e[0] for e in model_errors),
                "model_dE": statistics.median(e[1] for e in model_errors),
                "pasted_hue": statistics.median(e[0] for e in pasted_errors),
                "pasted_dE": statistics.median(e[1] for e in pasted_errors),
            }
        report[f"clip {clip:g}"] = stage
        print(f"2/3. model output (clip range {clip:g}{', shipped' if clip == shipped else ''}): "
              "median hue error / dE, model's own decode | pasted")  # fmt: skip
        for name, s in stage.items():
            print(f"   {name:14s} n={s['n']:2d}  {s['model_hue']:5.1f} deg dE {s['model_dE']:5.1f}"
                  f" | {s['pasted_hue']:5.1f} deg dE {s['pasted_dE']:5.1f}")  # fmt: skip
    pipe.scheduler.register_to_config(clip_sample_range=shipped)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Measure removal's start strength: the objects evaluation's removal part, once per strength.

    python scripts/removal_strength_probe.py --n 24 1.0 0.8 0.6 0.4
    python scripts/removal_strength_probe.py --n 6 --pictures docs/removal-strength.png 1.0 0.6 0.4 0.25

Strength 1 starts the hole from pure noise; below 1 from the blur-filled hole noised part way
(pipeline.prepare_start). Prints PSNR / SSIM inside the lasso against the true background, beside the
blur fill itself (docs/results.md). --pictures writes a grid, one row per scene, 2x: the scene, the
lasso, the blur fill, a removal per strength, the true background.
"""

import argparse

import numpy as np
import PIL.Image
import torch

from smartbrush.method import masks
from smartbrush.research import objects_eval
from smartbrush.research.objects import ObjectsWorld
from smartbrush.runtime.loading import load_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description="removal's start strength, measured")
    parser.add_argument("strengths", nargs="+", type=float)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pictures", help="also write the removals as a grid PNG here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    scenes = list(objects_eval.test_scenes(ObjectsWorld(), args.n))
    blur = objects_eval.Pool()
    rows = []
    for _, scene in scenes:
        lasso = objects_eval.removal_lasso(scene.mask)
        blurred = masks.blur_fill(scene.image, lasso)
        blur.add(blurred, scene.background, lasso)
        rows.append([scene.image, np.repeat(lasso[..., None] * np.uint8(255), 3, -1), blurred])
    print(f"blur fill | {blur.psnr():.1f} dB / {blur.mean_ssim():.3f}", flush=True)
    for strength in args.strengths:
        pool = objects_eval.Pool()
        for row, (index, scene) in zip(rows, scenes, strict=True):
            lasso = objects_eval.removal_lasso(scene.mask)
            out = pipe(scene.image, lasso, "", precision=0.0, seed=index, strength=strength)
            removed = np.asarray(out.images[0].convert("RGB"))
            pool.add(removed, scene.background, lasso)
            row.append(removed)
        print(f"{strength} | {pool.psnr():.1f} dB / {pool.mean_ssim():.3f}", flush=True)
    if args.pictures:
        grid = np.concatenate(
            [
                np.concatenate([*row, scene.background], 1)
                for row, (_, scene) in zip(rows, scenes, strict=True)
            ]
        )
        picture = PIL.Image.fromarray(grid)
        picture.resize((picture.width * 2, picture.height * 2), PIL.Image.Resampling.NEAREST).save(
            args.pictures
        )
        print(f"wrote {args.pictures}")


if __name__ == "__main__":
    main()

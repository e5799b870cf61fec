"""Removal's start strength on the objects world: the objects evaluation's removal part, once per strength.

    python benchmarks/removal_strength.py --n 24 1.0 0.8 0.6 0.4
    python benchmarks/removal_strength.py --n 6 --pictures docs/removal-strength.png 1.0 0.6 0.4 0.25

Each test scene (held-out photos, seed = scene index) with its object, a lasso around it (the object grown
by 8 %, smartbrush.research.objects_eval.removal_lasso), empty prompt, precision 0, the pipeline's
`strength` argument: 1 starts the hole from pure noise; below 1 from the blur-filled hole noised part way
(pipeline.prepare_start). Prints PSNR / SSIM inside the lasso against the true background (pooled over
the scenes, as `smartbrush eval` does), beside the blur fill itself. --pictures writes a grid, one row per
scene, 2x: the scene, the lasso, the blur fill, a removal per strength, the true background.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def measure(pipe, world, n: int, strengths: list[float], steps: int = 20) -> tuple[dict, list]:
    """({"blur fill" or strength: (PSNR, SSIM)}, rows of pictures: scene, lasso, blur fill, removals)."""
    from smartbrush.method import masks
    from smartbrush.research.evaluation import Pool
    from smartbrush.research.objects_eval import removal_lasso, test_scenes

    scenes = list(test_scenes(world, n))
    blur = Pool()
    rows = []
    for _, scene in scenes:
        lasso = removal_lasso(scene.mask)
        blurred = masks.blur_fill(scene.image, lasso)
        blur.add(blurred, scene.background, lasso)
        rows.append([scene.image, np.repeat(lasso[..., None] * np.uint8(255), 3, -1), blurred])
    results: dict = {"blur fill": (blur.psnr(), blur.mean_ssim())}
    for strength in strengths:
        pool = Pool()
        for row, (index, scene) in zip(rows, scenes, strict=True):
            lasso = removal_lasso(scene.mask)
            out = pipe(scene.image, lasso, "", precision=0.0, seed=index, strength=strength,
                       num_inference_steps=steps)  # fmt: skip
            removed = np.asarray(out.images[0].convert("RGB"))
            pool.add(removed, scene.background, lasso)
            row.append(removed)
        results[strength] = (pool.psnr(), pool.mean_ssim())
    for row, (_, scene) in zip(rows, scenes, strict=True):
        row.append(scene.background)
    return results, rows


def main() -> None:
    parser = argparse.ArgumentParser(description="removal's start strength, measured")
    parser.add_argument("strengths", nargs="+", type=float)
    parser.add_argument("--n", type=int, default=24, help="test scenes")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps (at strength 1)")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pictures", help="also write the removals as a grid PNG here")
    args = parser.parse_args()

    import PIL.Image
    import torch

    from smartbrush.research.objects import ObjectsWorld
    from smartbrush.runtime.loading import load_pipeline

    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    results, rows = measure(pipe, ObjectsWorld(), args.n, args.strengths, args.steps)
    for name, (psnr, ssim) in results.items():
        print(f"{name} | {psnr:.1f} dB / {ssim:.3f}")
    if args.pictures:
        grid = np.concatenate([np.concatenate(row, 1) for row in rows])
        picture = PIL.Image.fromarray(grid)
        picture.resize((picture.width * 2, picture.height * 2), PIL.Image.Resampling.NEAREST).save(
            args.pictures
        )
        print(f"wrote {args.pictures}")


if __name__ == "__main__":
    main()

"""Compat mode on the shapes world: a model without a mask head, box masks, background preservation on/off.

    python benchmarks/compat_mode.py [--model runs/ablation/stable_inpainting/pipeline] [--n 100]

A model without a mask head (a stock SD-inpainting checkpoint, or the ablation's "Stable-Inpainting-style"
baseline) cannot say where its object is, so the pipeline estimates it training-free: DiffEdit's
|eps(prompt) - eps(negative)| from the guidance pass, thresholded inside the coarse mask
(smartbrush.method.pipeline.diffedit_mask). With preserve_background on, only that estimate (dilated) is
regenerated after the first steps; off, the whole box is. For each test scene (seed = scene index) the
model fills the target's bounding box (precision 1) with the target's prompt, both ways, and this reports,
with `smartbrush eval`'s definitions (smartbrush.research.evaluation):

    background PSNR      inside the box but outside the generated object, vs the object-free background
    predicted-mask IoU   the pipeline's object mask (here the DiffEdit estimate) vs the generated object
    repainted fraction   share of the box the result was pasted over (alpha > 0): what could change

--drop-mask-head takes a model *with* a mask head and ignores that head (its conv_out row is cut), so the
same trained denoiser is measured three ways: with its learned mask head (reference), in compat mode with
preservation on, and off. That isolates how much the training-free estimate costs against a learned one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import cast

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

DEFAULT_MODEL = ROOT / "runs" / "ablation" / "stable_inpainting" / "pipeline"


def measure(rows: dict, n: int, steps: int, guidance: float, start: int = 0) -> dict:
    """Box-mode metrics over test scenes start .. start + n - 1 for each row: name -> (pipe, preserve)."""
    from smartbrush.method.masks import box_mask
    from smartbrush.research import world
    from smartbrush.research.evaluation import iou, psnr  # eval's pooled PSNR, the same definition

    report = {"n": n, "steps": steps, "guidance_scale": guidance}
    for name, (pipe, preserve) in rows.items():
        sq_error, count, ious, repainted = 0.0, 0, [], []
        for index in range(start, start + n):
            scene = world.make_scene("test", index)
            target = scene.target
            assert target is not None  # make_scene places a target unless target=False
            box = box_mask(target.mask)
            out = pipe(scene.background, box, target.short_caption, precision=1.0, seed=index,
                       num_inference_steps=steps, guidance_scale=guidance,
                       preserve_background=preserve)  # fmt: skip
            after = np.asarray(out.images[0].convert("RGB"))
            generated = world.object_pixels(after, scene.background) & box
            outside = box & ~generated
            sq_error += float(
                ((after[outside].astype(np.float64) - scene.background[outside]) ** 2).sum()
            )
            count += int(outside.sum()) * 3
            ious.append(iou(np.asarray(out.masks[0]) >= 128, generated))
            repainted.append(float(((np.asarray(out.alphas[0]) > 0) & box).sum() / box.sum()))
        report[name] = {
            "background_psnr": psnr(sq_error, count),
            "predicted_mask_iou": float(np.mean(ious)),
            "repainted_fraction": float(np.mean(repainted)),
        }
    return report


def load_model(model: str):
    from smartbrush.runtime.loading import load_pipeline
    from smartbrush.wire.errors import UserError

    if not (Path(model) / "model_index.json").is_file():
        raise UserError(
            f"no model at {model}: train the ablation's stable_inpainting row "
            "(python benchmarks/ablation.py) or pass --model FOLDER (a SmartBrush folder without a mask "
            "head, e.g. `smartbrush convert --no-mask-head`)"
        )
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def without_mask_head(pipe):
    """The same pipeline with the UNet's mask-logit output cut off: compat mode on a trained denoiser."""
    from diffusers import UNet2DConditionModel

    from smartbrush.method.pipeline import SmartBrushPipeline

    c = pipe.image_channels
    # from_config's union return type includes the (model, unused kwargs) tuple of
    # return_unused_kwargs=True, not asked for here
    unet = cast(
        UNet2DConditionModel,
        UNet2DConditionModel.from_config({**pipe.unet.config, "out_channels": c}),
    )
    state = pipe.unet.state_dict()
    state["conv_out.weight"], state["conv_out.bias"] = (
        state["conv_out.weight"][:c],
        state["conv_out.bias"][:c],
    )
    unet.load_state_dict(state)
    compat = SmartBrushPipeline(unet.eval(), pipe.scheduler, pipe.text_encoder, pipe.tokenizer,
                                vae=pipe.vae, num_precision_levels=pipe.num_levels)  # fmt: skip
    compat.set_progress_bar_config(disable=True)
    return compat


def rows_for(pipe, drop_mask_head: bool) -> dict:
    from smartbrush.method.model import has_mask_head
    from smartbrush.wire.errors import UserError

    rows = {}
    if has_mask_head(pipe.unet):
        if not drop_mask_head:
            raise UserError(
                "the model has a mask head; compat mode is for models without one "
                "(--drop-mask-head measures it on this model with the head ignored)"
            )
        rows["mask head"] = (pipe, True)
        pipe = without_mask_head(pipe)
    rows["compat, preservation on"] = (pipe, True)
    rows["compat, preservation off"] = (pipe, False)
    return rows


def format_report(report: dict, rows: list[str]) -> str:
    lines = [
        f"compat mode, {report['model']}: {report['n']} test scenes, box masks, "
        f"{report['steps']} steps, guidance {report['guidance_scale']}"
    ]
    width = max(map(len, rows))
    for name in rows:
        m = report[name]
        lines.append(
            f"  {name:{width}s}  background PSNR {m['background_psnr']:.1f} dB, "
            f"predicted-mask IoU {m['predicted_mask_iou']:.3f}, "
            f"repainted {100 * m['repainted_fraction']:.0f} % of the box"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from smartbrush.wire.errors import UserError

    # __doc__ is None under python -OO
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument(
        "--model", default=str(DEFAULT_MODEL), help="a SmartBrush folder, no mask head"
    )
    parser.add_argument("--n", type=int, default=100, help="test scenes")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=4.0, help="> 1: the estimate needs it")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument(
        "--drop-mask-head", action="store_true", help="a model with a mask head: ignore the head"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        if args.n < 1:
            raise UserError("--n must be at least 1")
        if args.guidance <= 1:
            raise UserError(
                "--guidance must be above 1: the mask estimate comes from the guidance pass"
            )
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        rows = rows_for(load_model(args.model), args.drop_mask_head)
    except (UserError, ValueError, FileNotFoundError) as error:
        print(f"compat_mode: error: {error}", file=sys.stderr)
        return 2
    started = time.monotonic()
    report = {"model": args.model, **measure(rows, args.n, args.steps, args.guidance)}
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2) if args.json else format_report(report, list(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

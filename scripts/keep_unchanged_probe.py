"""Measure the paste's "keep unchanged pixels" tolerances: the objects evaluation, once per setting.

    python scripts/keep_unchanged_probe.py --n 16 off 0.02,0.06 0.04,0.12 0.08,0.2

Each setting is pipeline.UNCHANGED_BELOW,CHANGED_ABOVE ("off": the fill is pasted wherever the
predicted mask allows, as before). Prints the box-mode background measures (docs/results.md).
"""

import argparse

import torch

from smartbrush.method import pipeline
from smartbrush.research import objects_eval
from smartbrush.research.evaluation import default_classifier_path
from smartbrush.research.objects import ObjectsWorld
from smartbrush.runtime.loading import load_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description="the keep-unchanged tolerances, measured")
    parser.add_argument("settings", nargs="+", help='"off" or LOW,HIGH')
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    classifier = objects_eval.load_classifier(default_classifier_path("objects"))
    print(
        "setting | background PSNR / SSIM | ring share | predicted-mask IoU | repainted | exact IoU"
    )
    for setting in args.settings:
        # "off": every difference counts as changed
        low, high = (-1.0, 0.0) if setting == "off" else map(float, setting.split(","))
        pipeline.UNCHANGED_BELOW, pipeline.CHANGED_ABOVE = low, high
        report = objects_eval.evaluate(pipe, ObjectsWorld(), classifier, n=args.n)
        box, exact = report["box"], report["exact"]
        print(
            f"{setting} | {box['background_psnr']:.1f} dB / {box['background_ssim']:.3f} | "
            f"{box['ring_share_of_background']:.2f} | {box['predicted_mask_iou']:.3f} | "
            f"{box['repainted_share']:.2f} | {exact['exact_mask_iou']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

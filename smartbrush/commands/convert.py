"""`smartbrush convert SRC OUT`: a Stable Diffusion 1.x checkpoint -> a SmartBrush pipeline folder.

SRC is one of
    - a diffusers folder (StableDiffusionPipeline or StableDiffusionInpaintPipeline layout),
    - a hub id (loaded from the local Hugging Face cache, or downloaded when online),
    - a single .safetensors / .ckpt file in the original (LDM) layout, read with diffusers'
      `from_single_file`. That needs the diffusers configs of the architecture: `--config FOLDER` (any
      diffusers folder of the same architecture; configs and tokenizer are enough, no weights), else the
      matching hub repo's configs from the local cache or the hub.

The UNet goes through `smartbrush_unet_from` (new weights zero-initialised, so the result predicts exactly
the noise its parent predicts); VAE, CLIP text encoder and tokenizer are kept; the scheduler becomes DDIM
with the source's noise schedule. OUT loads with `SmartBrushPipeline.from_pretrained(OUT)` (daemon) and
trains with `model.init = OUT`.
"""

from __future__ import annotations

import argparse

from smartbrush.runtime.conversion import convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="diffusers folder, hub id, or .safetensors/.ckpt file")
    parser.add_argument("out", help="the SmartBrush pipeline folder to write")
    parser.add_argument(
        "--config",
        metavar="FOLDER",
        help="for a single file: a diffusers folder of the same architecture (configs + tokenizer)",
    )
    parser.add_argument(
        "--no-mask-head",
        action="store_true",
        help="no object-mask output channel (compat mode estimates the mask training-free)",
    )
    parser.add_argument(
        "--no-precision", action="store_true", help="no precision-level conditioning"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    out = convert(
        args.src,
        args.out,
        mask_head=not args.no_mask_head,
        precision_conditioning=not args.no_precision,
        config=args.config,
        overwrite=args.overwrite,
    )
    print(f"wrote a SmartBrush pipeline to {out}")
    return 0

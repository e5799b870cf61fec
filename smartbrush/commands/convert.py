"""`smartbrush convert`: a Stable Diffusion 1.x model -> a SmartBrush pipeline folder."""

from __future__ import annotations

import argparse

from smartbrush.runtime import conversion
from smartbrush.runtime.conversion import convert

DESCRIPTION = conversion.__doc__  # the long help lives with the code it describes


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

"""Fill a region of IMAGE with an object described by --prompt. Runs on the daemon (`smartbrush serve`)
when one answers, in this process with --local."""

from __future__ import annotations

import argparse
from pathlib import Path

from smartbrush.commands import filling


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="input image")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image path")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", type=Path, help="mask image (8-bit gray, white = fill, soft ok)")
    where.add_argument("--box", type=filling.parse_box, help="rectangle to fill: X,Y,W,H in pixels")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="what to put there")
    what.add_argument(
        "--remove",
        action="store_const",
        const="",
        dest="prompt",
        help="erase the object under the mask and continue the background (same as --prompt '')",
    )
    parser.add_argument("--save-mask", type=Path, help="also write the predicted object mask here")
    filling.add_fill_options(parser)
    filling.add_option_argument(parser, "variations")


def run(args: argparse.Namespace) -> int:
    filling.check_writable_image_path(args.output)
    if args.save_mask is not None:
        filling.check_writable_image_path(args.save_mask)
    request = filling.build_request(
        args.image,
        args.prompt,
        mask_path=args.mask,
        box=args.box,
        negative_prompt=args.negative_prompt,
        precision=args.precision,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        detail=args.detail,
        variations=args.variations,
    )
    backend = filling.open_backend(args)
    try:
        result = filling.run_one(backend, request)
    finally:
        backend.close()
    count = len(result["images"])
    for index in range(count):
        output = filling.numbered(args.output, index, count)
        filling.save_atomically(filling.wire_to_pil(result["images"][index]), output)
        line = (
            f"wrote {output} (seed {result['seeds'][index]}, precision {result['precision']:.2f})"
        )
        if args.save_mask is not None:
            mask_path = filling.numbered(args.save_mask, index, count)
            filling.save_atomically(filling.wire_to_pil(result["masks"][index]), mask_path)
            line += f", mask {mask_path}"
        print(line)
    return 0

"""`smartbrush caption COCO_JSON --model BLIP_PATH -o CAPTIONS`: a caption per instance, with BLIP.

The paper trains on BLIP captions of each object instead of bare class names. This writes one caption per
usable instance of a COCO-format set -- BLIP looking at the instance's context crop (the same crop the
training loader uses), prompted with "a photo of a <category>" -- as JSON {annotation id: caption}, the
captions file `smartbrush train` reads (data.captions). BLIP weights are the user's: a local folder saved
by transformers (e.g. Salesforce/blip-image-captioning-base); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smartbrush.research.caption import caption_instances


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("annotations", help="COCO instances JSON")
    parser.add_argument(
        "--model", required=True, help="local BLIP captioning folder (transformers)"
    )
    parser.add_argument("--images", help="image folder (default: next to the JSON)")
    parser.add_argument("-o", "--output", required=True, help="captions JSON to write")
    parser.add_argument("--limit", type=int, help="caption only the first N instances")


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    captions = caption_instances(args.annotations, args.model, args.images, limit=args.limit)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({str(k): v for k, v in captions.items()}, indent=1))
    print(f"wrote {len(captions)} captions to {output}")
    return 0

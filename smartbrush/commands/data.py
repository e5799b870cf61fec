"""The objects world: real object drawings with exact masks, pasted on crops of real photos.

Objects are the colour bitmaps of Noto Color Emoji (Debian's fonts-noto-color-emoji; 136 x 128 RGBA in
the font's CBDT table, read with fontTools), named from their Unicode names ("red apple", "dog face").
Backgrounds are Debian's wallpaper photos (mate-backgrounds, ukui-wallpapers, gnome-backgrounds) and
Krita's paper patterns, as random crops, scales and flips, plus the shapes world's procedural backgrounds.

A scene pastes one target object (random scale, position, rotation, mirror, sometimes a soft shadow) and
sometimes a smaller distractor. Its exact mask is the pasted alpha (>= 0.5); the scene without the target
is kept, for removal training and for evaluation. Splits: whole background images are held out for
"test" (TEST_BACKGROUNDS) and scene seeds are disjoint, as in the shapes world. The emoji font has one
drawing per class, so test objects are the training drawings in unseen poses and on unseen photos.

`smartbrush data install` apt-installs the packages; `smartbrush data prepare` (also run on first use)
reads them into a cache of small arrays, so training never decodes a 4096-px wallpaper.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smartbrush.research.objects import CLASSES, install_packages, prepare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=("install", "prepare"),
        help="install: apt-get install the packages, then prepare; prepare: read them into the cache",
    )  # fmt: skip
    parser.add_argument("--cache-dir", help="where the prepared data goes (default: user cache)")


def run(args: argparse.Namespace) -> int:
    if args.action == "install":
        command = install_packages()
        print(f"installed: {' '.join(command)}")
    cache = prepare(args.cache_dir and Path(args.cache_dir))
    index = json.loads((cache / "index.json").read_text())
    counts = {split: len(names) for split, names in index["backgrounds"].items()}
    print(
        f"objects world ready in {cache}: {len(CLASSES)} object classes, "
        f"{counts['train']} training and {counts['test']} test backgrounds"
    )
    return 0

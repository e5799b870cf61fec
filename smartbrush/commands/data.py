"""`smartbrush data install|prepare`: the objects world's packages and cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from smartbrush.research import objects
from smartbrush.research.objects import CLASSES, install_packages, prepare

DESCRIPTION = objects.__doc__  # the long help lives with the code it describes


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

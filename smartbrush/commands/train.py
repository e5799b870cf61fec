"""`smartbrush train CONFIG` (also `accelerate launch -m smartbrush.commands.train CONFIG`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smartbrush.research import training
from smartbrush.research.training import train
from smartbrush.research.training_config import DEFAULTS
from smartbrush.runtime.config import load_config
from smartbrush.wire.errors import UserError

DESCRIPTION = training.__doc__  # the long help lives with the code it describes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a TOML or YAML training config (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=200 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue from this checkpoint folder (default: the newest in the output folder, if any)",
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides, defaults=DEFAULTS)
    if args.resume and not (Path(args.resume) / "checkpoint.safetensors").is_file():
        raise FileNotFoundError(f"no checkpoint.safetensors in {args.resume}")
    state = train(config, args.resume)
    print(
        f"trained to step {state['step']} in {state['elapsed'] / 60:.1f} min: {config['run']['output_dir']}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`accelerate launch -m smartbrush.commands.train CONFIG [...]`: the same as `smartbrush train`."""
    parser = argparse.ArgumentParser(prog="smartbrush.commands.train", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (UserError, ValueError, FileNotFoundError) as error:
        print(f"smartbrush train: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

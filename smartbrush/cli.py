"""`smartbrush` command line: one subcommand per module, each module registers its own parser."""

from __future__ import annotations

import argparse
import importlib
import sys

from smartbrush.wire.errors import UserError

__all__ = ["UserError", "build_parser", "main"]

# Each module defines `register(subparsers)`, adding parsers whose `func(args) -> int` runs the command.
COMMAND_MODULES = [
    "smartbrush.research.convert",
    "smartbrush.commands.fill",
    "smartbrush.commands.install_plugin",
    "smartbrush.research.training",
    "smartbrush.research.autoencoder",
    "smartbrush.research.evaluation",
    "smartbrush.commands.demo",
    "smartbrush.research.caption",
    "smartbrush.research.objects",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smartbrush", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as error:
        print(f"smartbrush {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

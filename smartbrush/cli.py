"""`smartbrush` command line: the table of subcommands.

Each command is a module in smartbrush.commands that defines `add_arguments(parser)` and
`run(args) -> int`; its description is its DESCRIPTION (where the long help lives with the code it
describes) or else its docstring. Heavy imports (torch, diffusers) happen inside
`run`, so `smartbrush --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from smartbrush.wire.errors import UserError

__all__ = ["COMMANDS", "build_parser", "main"]

# name: (module in smartbrush.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fill": ("fill", "fill a masked region of an image with an object described by a prompt"),
    "batch": ("batch", "run many fills from a JSON-lines manifest (resumable)"),
    "serve": ("serve", "start the SmartBrush daemon (same as `smartbrushd`)"),
    "info": ("info", "show the daemon's status, model, device, endpoint"),
    "keys": ("keys", "create CURVE keys for a daemon reachable over the network"),
    "install-plugin": ("install_plugin", "install the Krita or GIMP plugin for this user"),
    "demo": ("demo", "run a real fill with the demo model and write before/after PNGs"),
    "convert": (
        "convert",
        "convert a Stable Diffusion 1.x model (folder, hub id or .safetensors/.ckpt) to SmartBrush",
    ),
    "train": ("train", "train a SmartBrush model (shapes world or COCO-format data)"),
    "train-autoencoder": (
        "train_autoencoder",
        "train the small AutoencoderKL of a latent model (objects world)",
    ),
    "eval": ("eval", "evaluate a model on the test split of its world (shapes or objects)"),
    "train-classifier": ("train_classifier", "train the classifier `smartbrush eval` uses"),
    "caption": ("caption", "caption the instances of a COCO-format set with a local BLIP model"),
    "data": ("data", "install and prepare the objects world (Debian's emoji font and wallpapers)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartbrush", description="SmartBrush: text and shape guided object inpainting."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command = importlib.import_module(f"smartbrush.commands.{module_name}")
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=getattr(command, "DESCRIPTION", command.__doc__),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(func=command.run)
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

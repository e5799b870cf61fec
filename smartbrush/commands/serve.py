"""Start the SmartBrush daemon (the same as `smartbrushd`)."""

from __future__ import annotations

import argparse

from smartbrushd import server


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = server.__doc__
    server.build_parser(parser)


def run(args: argparse.Namespace) -> int:
    return server.serve(args)

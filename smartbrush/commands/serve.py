"""Start the SmartBrush daemon (the same as `smartbrushd`)."""

from __future__ import annotations

import argparse

from smartbrushd import server

DESCRIPTION = server.__doc__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    server.build_parser(parser)


def run(args: argparse.Namespace) -> int:
    return server.serve(args)

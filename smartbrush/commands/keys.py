"""Create CURVE keys for a daemon reachable over the network: DIR/server.key(_secret),
DIR/client.key(_secret) and DIR/authorized_clients/. The daemon uses --curve-dir DIR; clients need a copy
of DIR without server.key_secret (SMARTBRUSH_CURVE_DIR or --curve-dir)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from smartbrush.wire import protocol
from smartbrush.wire.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path)


def run(args: argparse.Namespace) -> int:
    import zmq.auth

    folder: Path = args.directory
    if (folder / "server.key_secret").exists():
        raise UserError(f"{folder} already holds keys; remove it first or choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for name in ("server", "client"):
        public, secret = zmq.auth.create_certificates(folder, name)
        Path(secret).chmod(0o600)
    authorized = folder / "authorized_clients"
    authorized.mkdir(exist_ok=True)
    shutil.copy(folder / "client.key", authorized / "client.key")
    print(f"created CURVE keys in {folder}")
    print(
        f"  daemon:  smartbrush serve --endpoint tcp://0.0.0.0:{protocol.DEFAULT_PORT} --curve-dir {folder}"
    )
    print(
        f"  clients: copy {folder} without server.key_secret, then set "
        f"{protocol.CURVE_DIR_ENV}=<copy> (or --curve-dir) and {protocol.ENDPOINT_ENV}=tcp://HOST:{protocol.DEFAULT_PORT}"
    )
    print(f"  more clients: put their public .key files into {authorized}")
    return 0

"""Shared by the daemon tests: real daemons (in a thread or a subprocess) on loopback, test images."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from smartbrushd.server import Daemon

from smartbrush.testing import free_port
from smartbrush.wire import protocol
from smartbrush.wire.client import Client, DaemonUnavailable

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def running_daemon(pipeline, **kwargs) -> Iterator[Daemon]:
    """An in-process daemon on a free loopback port, serving from a thread."""
    endpoint = kwargs.pop("endpoint", "tcp://127.0.0.1:*")
    daemon = Daemon(pipeline, endpoint, model_name="tiny", **kwargs)
    daemon.bind()
    thread = threading.Thread(target=daemon.run, name="test-daemon", daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the daemon did not stop"


def daemon_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess daemon: this checkout on the path, config/logs under tmp_path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTBRUSH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["HF_HUB_OFFLINE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


DAEMON_COMMAND = [sys.executable, "-m", "smartbrushd"]  # what `smartbrushd` runs
# the `smartbrush` command (`python -m smartbrush.cli` would import the CLI twice)
CLI_COMMAND = [
    sys.executable,
    "-c",
    "import sys; from smartbrush.cli import main; sys.exit(main())",
]
SERVE_COMMAND = [*CLI_COMMAND, "serve"]


def start_daemon_process(
    endpoint: str,
    tmp_path: Path,
    *args: str,
    model: str,
    command: list[str] = DAEMON_COMMAND,
    curve_dir: Path | None = None,
) -> subprocess.Popen:
    """A daemon serving `model` as a subprocess (logging to stderr unless args say otherwise);
    waits until it answers hello (with the client keys in `curve_dir` for a CURVE daemon)."""
    if "--log-file" not in args:
        args = (*args, "--log-file", "-")
    log = open(tmp_path / f"daemon-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 (lives with the process)
    process = subprocess.Popen(
        [*command, "--model", model, "--threads", "1", "--endpoint", endpoint, *args],
        cwd=tmp_path,
        env=daemon_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_until_answering(endpoint, process, log.name, curve_dir=curve_dir)
    return process


def wait_until_answering(
    endpoint: str,
    process: subprocess.Popen,
    log_name: str,
    limit: float = 120,
    curve_dir: Path | None = None,
) -> None:
    deadline = time.monotonic() + limit
    client = Client(endpoint, timeout=1.0, curve_dir=curve_dir)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {process.returncode}: {Path(log_name).read_text()}"
                )
            try:
                client.hello()
                return
            except DaemonUnavailable:
                continue
    finally:
        client.close()
    process.kill()
    raise AssertionError(f"daemon did not answer within {limit} s: {Path(log_name).read_text()}")


def make_keys(folder: Path, knows_server: Path | None = None) -> Path:
    """`smartbrush keys folder`; with `knows_server` (another key folder) the client also holds
    that daemon's public key: a stranger that daemon rejects, as a client with the wrong key is."""
    subprocess.run(
        [*CLI_COMMAND, "keys", str(folder)],
        check=True,
        capture_output=True,
        env=daemon_env(folder.parent),
    )
    if knows_server is not None:
        shutil.copy(knows_server / "server.key", folder / "server.key")
    return folder


@contextlib.contextmanager
def curve_daemon_process(tmp_path: Path, model: str) -> Iterator[tuple[str, Path]]:
    """A daemon serving `model` (the tiny_model_dir fixture's folder) on loopback under CURVE:
    (endpoint, a client key folder it rejects)."""
    keys = make_keys(tmp_path / "daemon-keys")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    process = start_daemon_process(
        endpoint, tmp_path, "--curve-dir", str(keys), model=model, curve_dir=keys
    )
    try:
        yield endpoint, make_keys(tmp_path / "wrong-keys", knows_server=keys)
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def sample_image(width: int = 64, height: int = 48, mode: str = "RGB") -> dict:
    """A raw wire image with a smooth pattern (different pixels everywhere)."""
    channels = protocol.CHANNELS[mode]
    data = bytes(
        (x * 4 + y * 3 + c * 80) % 256
        for y in range(height)
        for x in range(width)
        for c in range(channels)
    )
    return protocol.raw_image(width, height, mode, data)


def ellipse_mask(width: int = 64, height: int = 48) -> dict:
    """An L wire mask: a filled ellipse in the middle."""
    cx, cy, rx, ry = width / 2, height / 2, width / 4, height / 4
    data = bytes(
        255 if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1 else 0
        for y in range(height)
        for x in range(width)
    )
    return protocol.raw_image(width, height, "L", data)


def box_request(steps: int = 2, **fields) -> dict:
    return {
        "image": sample_image(),
        "box": [16, 12, 24, 20],
        "prompt": "a red ball",
        "steps": steps,
        **fields,
    }

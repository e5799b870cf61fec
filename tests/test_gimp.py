"""The GIMP 3 plug-in in real GIMP 3 (Debian trixie chroot) against a real daemon on loopback.

The chroot is built (or reused) by tests/gimp/build_chroot.sh; the plug-in is installed with
`smartbrush install-plugin gimp --dest CHROOT/root/prof/plug-ins`; tests/gimp/batch_fill.py runs the
procedure NON-INTERACTIVE in gimp-console and records the outcome, which these tests check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.editor

REPO = Path(__file__).resolve().parents[1]
GIMP_TESTS = REPO / "tests" / "gimp"
PROFILE = "/root/prof"  # GIMP3_DIRECTORY inside the chroot
GIMP_TIMEOUT = 300  # seconds for one gimp-console run (a first run scans plug-ins: ~11 s)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gimp_root() -> Path:
    """The trixie chroot with GIMP 3, built on first use and cached between runs."""
    if os.geteuid() != 0:
        pytest.skip("the GIMP tests need root (debootstrap and chroot)")
    done = subprocess.run(
        ["bash", str(GIMP_TESTS / "build_chroot.sh")], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        pytest.fail(f"building the GIMP chroot failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def daemon_endpoint(tmp_path_factory):
    """A real daemon with the tiny random model, on the host's loopback (the chroot shares it)."""
    from smartbrush.client import Client, DaemonUnavailable

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    log = (tmp_path_factory.mktemp("daemon") / "daemon.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon.server", "--model", "tiny", "--endpoint", endpoint,
         "--device", "cpu", "--log-file", "-"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"the daemon exited: {Path(log.name).read_text()[-2000:]}")
            try:
                Client(endpoint, timeout=1.0).hello()
                break
            except DaemonUnavailable:
                if time.monotonic() > deadline:
                    pytest.fail("the daemon did not answer within 180 s")
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def installed_plugin(gimp_root: Path, tmp_path_factory) -> Path:
    """`smartbrush install-plugin gimp` into the chroot's GIMP profile, checked with GIMP's Python."""
    # install-plugin runs the editor's Python to check pyzmq/msgpack: here that is the chroot's.
    chroot_python = tmp_path_factory.mktemp("bin") / "gimp-python3"
    chroot_python.write_text(f'#!/bin/sh\nexec chroot "{gimp_root}" /usr/bin/python3 "$@"\n')
    chroot_python.chmod(0o755)
    plug_ins = gimp_root / PROFILE.lstrip("/") / "plug-ins"
    done = subprocess.run(
        [sys.executable, "-m", "smartbrush.cli", "install-plugin", "gimp", "--dest", str(plug_ins),
         "--editor-python", str(chroot_python)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "already importable" in done.stdout, done.stdout  # trixie's python3-zmq/-msgpack
    folder = plug_ins / "smartbrush-fill"
    return folder


def run_gimp(gimp_root: Path, script: Path, env: dict[str, str], timeout: int = GIMP_TIMEOUT):
    """gimp-console-3.0 in the chroot running `script` (a path inside the chroot) in batch mode."""
    command = [
        "timeout", str(timeout), "chroot", str(gimp_root), "env", "HOME=/root",
        f"GIMP3_DIRECTORY={PROFILE}", *(f"{key}={value}" for key, value in env.items()),
        "gimp-console-3.0", "-i", "-d", "-f", "--batch-interpreter", "python-fu-eval",
        "-b", f'exec(open("{script}").read())', "--quit",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture
def chroot_workdir(gimp_root: Path):
    """A fresh folder inside the chroot: (host path, chroot path)."""
    host = Path(tempfile.mkdtemp(prefix="smartbrush-", dir=gimp_root / "tmp"))
    yield host, "/tmp/" + host.name
    shutil.rmtree(host, ignore_errors=True)


@pytest.fixture(scope="module")
def batch(gimp_root, installed_plugin, daemon_endpoint):
    """Run tests/gimp/batch_fill.py once: every case's outcome, with a pixel reader."""
    host = Path(tempfile.mkdtemp(prefix="smartbrush-", dir=gimp_root / "tmp"))
    inside = "/tmp/" + host.name
    try:
        shutil.copy(GIMP_TESTS / "batch_fill.py", host)
        job = {"endpoint": daemon_endpoint, "down_endpoint": f"tcp://127.0.0.1:{free_port()}",
               "out": inside}  # fmt: skip
        (host / "job.json").write_text(json.dumps(job))
        done = run_gimp(
            gimp_root, f"{inside}/batch_fill.py", {"SMARTBRUSH_GIMP_JOB": f"{inside}/job.json"}
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads((host / "result.json").read_text())
        yield Outcome(host, result)
    finally:
        shutil.rmtree(host, ignore_errors=True)


class Outcome:
    def __init__(self, folder: Path, result: dict):
        self.folder, self.result = folder, result

    def __getitem__(self, case: str) -> dict:
        return self.result[case]

    def names(self, case: str, when: str = "after") -> list[str]:
        return [layer["name"] for layer in self.result[case][when]]

    def canvas(self, case: str, layer: dict) -> np.ndarray:
        """A layer's RGBA pixels placed on the image canvas (transparent where the layer isn't)."""
        record = self.result[case]
        pixels = np.fromfile(self.folder / layer["pixels"], np.uint8)
        pixels = pixels.reshape(layer["height"], layer["width"], 4)
        canvas = np.zeros((record["height"], record["width"], 4), np.uint8)
        x, y = layer["x"], layer["y"]
        canvas[y : y + layer["height"], x : x + layer["width"]] = pixels
        return canvas

    def selection(self, case: str) -> np.ndarray:
        record = self.result[case]
        data = np.fromfile(self.folder / record["selection"], np.uint8)
        return data.reshape(record["height"], record["width"])

    def layer(self, case: str, name: str) -> dict:
        return next(layer for layer in self.result[case]["after"] if layer["name"] == name)


# --- tests ---------------------------------------------------------------------------------------


def test_rectangle_fill_adds_one_named_layer_directly_above_the_active_layer(batch):
    answer = batch["rectangle"]["answer"]
    assert answer["status"] == "success", answer
    name = "SmartBrush: a red ball (seed 7)"
    assert batch.names("rectangle", "before") == ["Top", "Background"]
    assert batch.names("rectangle") == ["Top", name, "Background"]  # Background was active
    assert answer["layer"] == name and answer["seed"] == 7  # the procedure's return values
    assert batch.layer("rectangle", name)["visible"]


@pytest.mark.parametrize("case", ["rectangle", "ellipse"])
def test_new_layers_are_transparent_outside_the_selection_and_painted_inside(batch, case):
    selected = batch.selection(case) > 0
    new_layers = [layer for layer in batch[case]["after"] if layer["name"].startswith("SmartBrush")]
    assert new_layers
    for layer in new_layers:
        alpha = batch.canvas(case, layer)[..., 3]
        assert not alpha[~selected].any(), f"{layer['name']} paints outside the selection"
        painted = np.count_nonzero(alpha[selected])
        assert painted >= 0.05 * selected.sum(), f"{layer['name']} paints almost nothing"


def test_feathered_ellipse_is_a_soft_mask(batch):
    selection = batch.selection("ellipse")
    soft = np.count_nonzero((selection > 0) & (selection < 255))
    assert (
        soft > 50
    )  # the feather survived into what the plug-in read (checked above: no paint outside)


def test_variations_become_hidden_layers_above_the_first(batch):
    answer = batch["ellipse"]["answer"]
    assert answer["status"] == "success", answer
    names = batch.names("ellipse")
    assert names == [
        "Top",
        "SmartBrush: a red ball (seed 12)",
        "SmartBrush: a red ball (seed 11)",
        "Background",
    ]
    visible = {layer["name"]: layer["visible"] for layer in batch["ellipse"]["after"]}
    assert visible["SmartBrush: a red ball (seed 11)"] is True
    assert visible["SmartBrush: a red ball (seed 12)"] is False
    first, second = (batch.layer("ellipse", name) for name in names[2:0:-1])
    assert first["sha256"] != second["sha256"]  # different seeds, different pictures


@pytest.mark.parametrize(
    "case", ["rectangle", "ellipse", "no-selection", "daemon-down", "empty-prompt"]
)
def test_existing_layers_are_never_modified(batch, case):
    before = {layer["name"]: layer for layer in batch[case]["before"]}
    after = {layer["name"]: layer for layer in batch[case]["after"]}
    for name, layer in before.items():
        assert after[name] == {**layer, "pixels": after[name]["pixels"]}, name


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("no-selection", "calling-error", "Nothing is selected"),
        ("daemon-down", "execution-error", "daemon is not answering at tcp://127.0.0.1:"),
        ("empty-prompt", "calling-error", "Describe what to paint"),
    ],
)
def test_failures_are_a_clear_message_and_change_nothing(batch, case, status, words):
    answer = batch[case]["answer"]
    assert answer["status"] == status, answer
    assert words in answer["message"]
    assert "Traceback" not in answer["message"]
    assert batch.names(case) == batch.names(case, "before")

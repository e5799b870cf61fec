"""The GIMP 3 plug-in in real GIMP 3 (Debian trixie chroot) against a real daemon on loopback.

The chroot is built (or reused) by tests/gimp/build_chroot.sh; the plug-in is installed with
`smartbrush install-plugin gimp --dest CHROOT/root/prof/plug-ins`; tests/gimp/batch_fill.py runs the
procedure NON-INTERACTIVE in gimp-console and records the outcome, which these tests check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from daemon_helpers import curve_daemon_process
from PIL import Image

from smartbrush.testing import free_port

pytestmark = pytest.mark.editor

REPO = Path(__file__).resolve().parents[1]
# The `smartbrush` command (not `python -m smartbrush.cli`, which would import the CLI twice).
SMARTBRUSH = [sys.executable, "-c", "import sys; from smartbrush.cli import main; sys.exit(main())"]
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


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, tiny_model_dir):
    """A real daemon with the tiny random model, on the host's loopback (the chroot shares it)."""
    from smartbrush.wire.client import Client, DaemonUnavailable

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    log = (tmp_path_factory.mktemp("daemon") / "daemon.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "smartbrushd.server", "--model", tiny_model_dir, "--endpoint", endpoint,
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
        yield SimpleNamespace(endpoint=endpoint, log=Path(log.name))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def daemon_endpoint(daemon) -> str:
    return daemon.endpoint


@pytest.fixture(scope="module")
def installed_plugin(gimp_root: Path, tmp_path_factory) -> Path:
    """`smartbrush install-plugin gimp` into the chroot's GIMP profile, checked with GIMP's Python."""
    # install-plugin runs the editor's Python to check pyzmq/msgpack: here that is the chroot's.
    chroot_python = tmp_path_factory.mktemp("bin") / "gimp-python3"
    chroot_python.write_text(
        f'#!/bin/sh\nexec chroot "{gimp_root}" /usr/bin/env -i /usr/bin/python3 "$@"\n'
    )
    chroot_python.chmod(0o755)
    plug_ins = gimp_root / PROFILE.lstrip("/") / "plug-ins"
    done = subprocess.run(
        [*SMARTBRUSH, "install-plugin", "gimp", "--dest", str(plug_ins),
         "--editor-python", str(chroot_python)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "already importable" in done.stdout, done.stdout  # trixie's python3-zmq/-msgpack
    folder = plug_ins / "smartbrush-fill"
    return folder


def in_chroot(gimp_root: Path, env: dict[str, str], *command: str, timeout: int = GIMP_TIMEOUT):
    """`command` in the chroot with a clean environment (none of the host's Python settings)."""
    return [
        "timeout", "-k", "10", str(timeout), "chroot", str(gimp_root), "/usr/bin/env", "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
        f"GIMP3_DIRECTORY={PROFILE}", *(f"{key}={value}" for key, value in env.items()), *command,
    ]  # fmt: skip


def gimp_batch(gimp_root: Path, script: str, env: dict[str, str]) -> list[str]:
    """gimp-console-3.0 in the chroot running `script` (a path inside the chroot) in batch mode."""
    return in_chroot(
        gimp_root, env, "gimp-console-3.0", "-i", "-d", "-f",
        "--batch-interpreter", "python-fu-eval", "-b", f'exec(open("{script}").read())', "--quit",
    )  # fmt: skip


def batch_job(workdir, daemon_endpoint: str, cases: list[str]) -> dict[str, str]:
    """Write the job file for batch_fill.py; returns the environment that points GIMP at it."""
    host, inside = workdir
    shutil.copy(GIMP_TESTS / "batch_fill.py", host)
    job = {"endpoint": daemon_endpoint, "down_endpoint": f"tcp://127.0.0.1:{free_port()}",
           "out": inside, "cases": cases}  # fmt: skip
    (host / "job.json").write_text(json.dumps(job))
    return {"SMARTBRUSH_GIMP_JOB": f"{inside}/job.json"}


def make_workdir(gimp_root: Path) -> tuple[Path, str]:
    """A fresh folder inside the chroot: (host path, chroot path)."""
    host = Path(tempfile.mkdtemp(prefix="smartbrush-", dir=gimp_root / "tmp"))
    return host, "/tmp/" + host.name


@pytest.fixture
def chroot_workdir(gimp_root: Path):
    workdir = make_workdir(gimp_root)
    yield workdir
    shutil.rmtree(workdir[0], ignore_errors=True)


BATCH_CASES = [
    "rectangle", "ellipse", "gray", "grouped",
    "no-selection", "daemon-down", "bad-endpoint", "empty-prompt", "remove", "remove-no-selection",
]  # fmt: skip


@pytest.fixture(scope="module")
def batch(gimp_root, installed_plugin, daemon_endpoint):
    """Run tests/gimp/batch_fill.py once for BATCH_CASES: every case's outcome, with pixel readers."""
    workdir = make_workdir(gimp_root)
    try:
        env = batch_job(workdir, daemon_endpoint, BATCH_CASES)
        done = subprocess.run(gimp_batch(gimp_root, f"{workdir[1]}/batch_fill.py", env),
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        yield Outcome(workdir[0], json.loads((workdir[0] / "result.json").read_text()))
    finally:
        shutil.rmtree(workdir[0], ignore_errors=True)


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


def test_the_procedure_is_registered_with_menus_and_every_option_as_an_argument(batch):
    procedure = batch["procedure"]
    assert procedure["menu_label"] == "SmartBrush _Fill..."
    assert sorted(procedure["menu_paths"]) == ["<Image>/Edit", "<Image>/Filters"]
    assert procedure["image_types"] == "RGB*, GRAY*"
    assert procedure["arguments"] == [
        "run-mode", "image", "drawables",
        "prompt", "negative-prompt", "auto-precision", "precision", "steps", "guidance", "seed",
        "variations", "detail", "endpoint",
    ]  # fmt: skip


def test_rectangle_fill_adds_one_named_layer_directly_above_the_active_layer(batch):
    answer = batch["rectangle"]["answer"]
    assert answer["status"] == "success", answer
    name = "SmartBrush: a red ball (seed 7)"
    assert batch.names("rectangle", "before") == ["Top", "Background"]
    assert batch.names("rectangle") == ["Top", name, "Background"]  # Background was active
    assert answer["layer"] == name and answer["seed"] == 7  # the procedure's return values
    assert batch.layer("rectangle", name)["visible"]


@pytest.mark.parametrize("case", ["rectangle", "ellipse", "gray"])
def test_new_layers_are_transparent_outside_the_selection_and_painted_inside(batch, case):
    selected = batch.selection(case) > 0
    new_layers = [layer for layer in batch[case]["after"] if layer["name"].startswith("SmartBrush")]
    assert new_layers
    for layer in new_layers:
        alpha = batch.canvas(case, layer)[..., 3]
        assert not alpha[~selected].any(), f"{layer['name']} paints outside the selection"
        painted = np.count_nonzero(alpha[selected])
        assert painted >= 0.05 * selected.sum(), f"{layer['name']} paints almost nothing"


def test_gimp_fills_what_the_whole_image_fills_with_the_same_selection_and_seed(
    batch, tiny_pixel_pipeline
):
    """Issue 33, item 12: one context rule. GIMP sends only the context around the selection; the
    pipeline given the whole image (as `smartbrush fill` gives it) crops the same pixels: the same fill,
    alpha and colour, where the daemon is the same model (conftest's daemon serves this pipeline)."""
    record = batch["rectangle"]
    y, x = np.mgrid[: record["height"], : record["width"]]
    background = np.dstack([x * 2 % 256, y * 3 % 256, np.full_like(x, 90)]).astype(np.uint8)
    out = tiny_pixel_pipeline(background, batch.selection("rectangle"), "a red ball",
                              precision="auto", seed=7, num_inference_steps=2)  # fmt: skip
    layer = batch.canvas("rectangle", batch.layer("rectangle", "SmartBrush: a red ball (seed 7)"))
    alpha = np.asarray(out.alphas[0]).astype(int)
    assert np.abs(layer[..., 3].astype(int) - alpha).max() <= 1
    opaque = alpha == 255
    assert opaque.sum() > 100
    rgb = np.asarray(out.images[0]).astype(int)
    assert np.abs(layer[..., :3][opaque].astype(int) - rgb[opaque]).max() <= 1


def test_the_new_layer_covers_what_was_painted_not_the_whole_context(batch):
    layer = batch.layer("rectangle", "SmartBrush: a red ball (seed 7)")
    # the selection is 40x30 at (20, 16); the context sent to the daemon is larger
    assert 20 <= layer["x"] and 16 <= layer["y"]
    assert layer["x"] + layer["width"] <= 60 and layer["y"] + layer["height"] <= 46
    alpha = batch.canvas("rectangle", layer)[..., 3]
    box = alpha[layer["y"] : layer["y"] + layer["height"], layer["x"] : layer["x"] + layer["width"]]
    assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()


def test_the_painted_object_is_a_hidden_channel_to_select_it_by(batch):
    [channel] = batch["rectangle"]["channels"]
    assert channel["name"] == "SmartBrush: a red ball (seed 7): object"
    assert channel["visible"] is False  # it does not tint the image
    record = batch["rectangle"]
    shape = np.fromfile(batch.folder / channel["pixels"], np.uint8)
    shape = shape.reshape(record["height"], record["width"])
    layer = batch.canvas("rectangle", batch.layer("rectangle", "SmartBrush: a red ball (seed 7)"))
    assert (
        shape.any() and not shape[layer[..., 3] == 0].any()
    )  # the object, inside what was painted
    assert not batch["no-selection"]["channels"]


def test_remove_is_its_own_procedure_and_erases_with_any_model(batch):
    """The tiny test model was never trained for removal: the hole is filled from its surroundings."""
    answer = batch["remove"]["answer"]
    assert answer["status"] == "success", answer
    before, after = batch.names("remove", "before"), batch.names("remove")
    [added] = [name for name in after if name not in before]
    assert added.startswith("SmartBrush: removed (seed ")
    layer = batch.canvas("remove", batch.layer("remove", added))
    assert not (
        layer[..., 3][batch.selection("remove") == 0] > 0
    ).any()  # only inside the selection
    assert (layer[..., 3] == 255).sum() > 0


def test_the_model_sees_what_the_result_sits_on_not_the_layers_above(batch):
    # Background is opaque, a half-transparent Top lies above it: filling above Background reads
    # Background alone (Top stays above the result, so it is not painted twice), in a group too
    expected = {"below_background_is_background": True, "top_changes_pixels": True,
                "top_still_visible": True}  # fmt: skip
    assert batch["reads"] == {"flat": expected, "grouped": expected}


def test_a_grayscale_image_gets_a_grayscale_layer(batch):
    answer = batch["gray"]["answer"]
    assert answer["status"] == "success", answer
    assert batch.names("gray") == ["Top", "SmartBrush: a red ball (seed 5)", "Background"]
    layer = batch.canvas("gray", batch.layer("gray", "SmartBrush: a red ball (seed 5)"))
    painted = layer[..., 3] > 0
    red, green, blue = (layer[..., channel][painted] for channel in range(3))
    assert (red == green).all() and (green == blue).all()  # read back as RGBA: gray means R = G = B


def test_inside_a_layer_group_the_new_layer_joins_the_group(batch):
    answer = batch["grouped"]["answer"]
    assert answer["status"] == "success", answer
    assert batch.names("grouped", "before") == ["Top", "Group", "Group/Background"]
    assert batch.names("grouped") == [
        "Top",
        "Group",
        "Group/SmartBrush: a red ball (seed 3)",
        "Group/Background",
    ]


def test_feathered_ellipse_is_a_soft_mask(batch):
    selection = batch.selection("ellipse")
    soft = np.count_nonzero((selection > 0) & (selection < 255))
    assert (
        soft > 50
    )  # the feather survived into what the plug-in read (checked above: no paint outside)


def test_variations_go_into_one_group_directly_above_the_active_layer(batch):
    answer = batch["ellipse"]["answer"]
    assert answer["status"] == "success", answer
    group = "SmartBrush: a red ball (2 variations)"
    first, second = (f"{group}/SmartBrush: a red ball (seed {seed})" for seed in (11, 12))
    # as in Krita: one group, the first variation on top and visible, the others hidden
    assert batch.names("ellipse") == ["Top", group, first, second, "Background"]
    layers = {layer["name"]: layer for layer in batch["ellipse"]["after"]}
    assert layers[group]["group"] and layers[group]["visible"]
    assert layers[first]["visible"] is True and layers[second]["visible"] is False
    assert answer["layer"] == "SmartBrush: a red ball (seed 11)"  # the first is returned
    assert layers[first]["sha256"] != layers[second]["sha256"]  # different seeds, pictures


def test_the_dialog_says_the_daemon_is_down_once(batch):
    """After OK with the daemon stopped: the reason in bold, not again as a plain line below it."""
    down = batch["dialog_down"]
    assert down["problem"].startswith("The SmartBrush daemon is not answering at")
    assert down["markup"].count("is not answering") == 1
    assert down["markup"].startswith("<b>The SmartBrush daemon is not answering")
    assert down["markup"].endswith("Auto precision for this selection: box.")


def test_every_variation_gets_its_object_channel(batch):
    """Whichever variation the user keeps, its object can be selected (Channel to Selection)."""
    names = [channel["name"] for channel in batch["ellipse"]["channels"]]
    assert names == [f"SmartBrush: a red ball (seed {seed}): object" for seed in (11, 12)]
    assert not any(channel["visible"] for channel in batch["ellipse"]["channels"])


def test_after_variations_the_group_is_active_so_the_next_fill_goes_above_it(batch):
    assert batch["ellipse"]["selected_after"] == ["SmartBrush: a red ball (2 variations)"]
    assert batch["rectangle"]["selected_after"] == ["SmartBrush: a red ball (seed 7)"]


@pytest.mark.parametrize("case", BATCH_CASES)
def test_existing_layers_are_never_modified(batch, case):
    before = {layer["name"]: layer for layer in batch[case]["before"]}
    after = {layer["name"]: layer for layer in batch[case]["after"]}
    for name, layer in before.items():
        if layer["group"]:  # a group's pixels are its children's, new layer included
            continue
        assert after[name] == {**layer, "pixels": after[name]["pixels"]}, name


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("no-selection", "calling-error", "Nothing is selected. Select the area to fill first"),
        ("remove-no-selection", "calling-error", "Select the object to remove first"),
        ("daemon-down", "execution-error", "daemon is not answering at tcp://127.0.0.1:"),
        ("empty-prompt", "calling-error", "Describe what to paint"),
        ("bad-endpoint", "execution-error", "endpoint: 'localhost:5737' is not a daemon endpoint"),
    ],
)
def test_failures_are_a_clear_message_and_change_nothing(batch, case, status, words):
    answer = batch[case]["answer"]
    assert answer["status"] == status, answer
    assert words in answer["message"]
    assert "Traceback" not in answer["message"]
    assert batch.names(case) == batch.names(case, "before")


def test_a_daemon_that_rejects_the_key_is_said_to_be_an_authentication_problem(
    gimp_root, installed_plugin, chroot_workdir, tmp_path, tiny_model_dir
):
    host, inside = chroot_workdir
    with curve_daemon_process(tmp_path, tiny_model_dir) as (endpoint, wrong_keys):
        shutil.copytree(wrong_keys, host / "keys")
        env = batch_job(chroot_workdir, endpoint, ["curve-wrong-keys"])
        env["SMARTBRUSH_CURVE_DIR"] = f"{inside}/keys"  # what the plug-in's client loads
        done = subprocess.run(gimp_batch(gimp_root, f"{inside}/batch_fill.py", env),
                              capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = Outcome(host, json.loads((host / "result.json").read_text()))
    answer = outcome["curve-wrong-keys"]["answer"]
    assert answer["status"] == "execution-error", answer
    assert answer["message"].startswith(f"The SmartBrush daemon is not answering at {endpoint}")
    assert "authentication may be the cause" in answer["message"], answer["message"]
    assert outcome.names("curve-wrong-keys") == outcome.names("curve-wrong-keys", "before")


def test_the_dialog_builds_and_a_user_can_fill_through_it(
    gimp_root, installed_plugin, daemon_endpoint, chroot_workdir
):
    """Under Xvfb: the GimpUi dialog opens; OK without a prompt brings it back with the problem
    and the daemon's status; typing a prompt and pressing OK adds the layer."""
    host, inside = chroot_workdir
    for name in ("batch_dialog.py", "dialog_session.sh"):
        shutil.copy(GIMP_TESTS / name, host)
    # A first-time user: no values remembered from an earlier dialog.
    remembered = gimp_root / PROFILE.lstrip("/") / "plug-in-settings"
    (remembered / "GimpProcedureConfigRun-plug-in-smartbrush-fill.last").unlink(missing_ok=True)
    command = in_chroot(
        gimp_root, {"SMARTBRUSH_ENDPOINT": daemon_endpoint},
        "xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "sh", f"{inside}/dialog_session.sh", inside,
        timeout=240,
    )  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    gimp_log = (host / "gimp.log").read_text() if (host / "gimp.log").exists() else ""
    assert done.returncode == 0, done.stderr[-2000:] + gimp_log[-2000:]
    # OK with no prompt did not close the dialog for good: it came back (saying what is missing)
    assert (host / "dialogs").read_text().strip() == "2"
    record = json.loads((host / "dialog.json").read_text())
    assert record["status"] == "success", record
    assert len(record["layers"]) == 2 and record["layers"][1] == "Background"
    assert re.fullmatch(r"SmartBrush: a red ball \(seed \d+\)", record["layers"][0])

    with Image.open(host / "dialog.png") as shot:
        assert shot.width >= 300 and shot.height >= 300
        low, high = shot.convert("L").getextrema()
        assert high - low > 100  # drawn widgets and text, not a blank window
    if os.environ.get("SMARTBRUSH_UPDATE_SCREENSHOTS"):
        shutil.copy(host / "dialog.png", REPO / "docs" / "gimp-dialog.png")


def chroot_processes(gimp_root: Path, needle: str) -> list[int]:
    """Pids of processes running inside this chroot whose command line contains `needle`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "root")) != gimp_root.resolve():
                continue
            if needle.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_killing_the_plug_in_mid_fill_cancels_the_daemon_job(
    gimp_root, installed_plugin, daemon, daemon_endpoint, chroot_workdir
):
    """GIMP's progress Cancel kills the plug-in (SIGKILL): the daemon job must stop, the image stay."""
    from smartbrush.wire.client import Client

    host, inside = chroot_workdir
    env = batch_job(chroot_workdir, daemon_endpoint, ["killed"])
    gimp = subprocess.Popen(
        gimp_batch(gimp_root, f"{inside}/batch_fill.py", env),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = Client(daemon_endpoint, timeout=10)
    try:
        deadline = time.monotonic() + 120
        while not (running := client.status()["running"]):  # the 200-step fill has started
            assert gimp.poll() is None, gimp.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the fill never started"
            time.sleep(0.2)
        job_id = running[0]["job_id"]
        plug_ins = chroot_processes(gimp_root, "smartbrush-fill.py")
        assert len(plug_ins) == 1, plug_ins
        killed_at = time.monotonic()
        os.kill(plug_ins[0], signal.SIGKILL)
        # 200 steps x 8 variations take minutes on a CPU; cancelled, the job stops at the next step.
        while client.status()["running"]:
            assert time.monotonic() - killed_at < 20, "the daemon kept working for a dead plug-in"
            time.sleep(0.2)
        _, stderr = gimp.communicate(timeout=120)
    finally:
        if gimp.poll() is None:
            gimp.kill()
        client.close()
    assert gimp.returncode == 0, stderr[-2000:]
    # It stopped because it was cancelled (the watchdog's message), not because it finished.
    log = daemon.log.read_text().splitlines()
    assert any(job_id in line and "cancel" in line for line in log), log[-20:]
    record = json.loads((host / "result.json").read_text())["killed"]
    assert record["answer"]["status"] != "success"
    assert [layer["sha256"] for layer in record["after"]] == [
        layer["sha256"] for layer in record["before"]
    ]


def test_the_documented_batch_example_works(
    gimp_root, installed_plugin, daemon_endpoint, chroot_workdir
):
    """docs/gimp.md's script and command line, verbatim, on a PNG: a filled .xcf comes out."""
    host, inside = chroot_workdir
    docs = (REPO / "docs" / "gimp.md").read_text()
    (host / "fill.py").write_text(re.search(r"```python\n(.*?)```", docs, re.S).group(1))
    command_line = re.search(r"```sh\n(gimp-console-3\.0 .*?)\n```", docs, re.S).group(1)
    Image.new("RGB", (128, 96), (40, 120, 200)).save(host / "photo.png")
    command = in_chroot(
        gimp_root, {"SMARTBRUSH_ENDPOINT": daemon_endpoint}, "sh", "-c", f"cd {inside} && {command_line}"
    )  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "added SmartBrush: a red ball (seed 42)" in done.stdout
    assert (host / "photo-filled.xcf").read_bytes().startswith(b"gimp xcf")

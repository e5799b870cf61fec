"""The Krita plugin in real Krita 5 against a real daemon (tiny random model) on loopback.

1. kritarunner (offscreen): the plugin installed by `smartbrush install-plugin krita --dest DIR` fills
   selections through its scripting function; tests/krita/kritarunner_fill.py writes what it saw.
2. Full Krita under Xvfb: the plugin installed into a test HOME the way a user does it, loaded by Krita,
   driven by tests/krita/smartbrush_krita_driver (a test-only plugin) with Qt calls and, for the
   mouse and keyboard, xdotool on an Xvfb display.

Krita runs with HOME=.cache/krita-test-home, kept between runs: the first run builds Krita's resource
database (about 20 s). kritarunner always exits 0, so the result files are what counts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import curve_daemon_process
from needs import needs, skip_unless_ci
from PIL import Image

from smartbrush.commands.install_plugin import enable_krita_plugin
from smartbrush.testing import free_port

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "krita"
KRITA_HOME = REPO / ".cache" / "krita-test-home"
W, H = 160, 120  # the documents the scripts make
# both packages of this checkout (smartbrush, daemon/smartbrushd) before any installed copy
CHECKOUT_PATH = os.pathsep.join([str(REPO), str(REPO / "daemon")])

pytestmark = [
    pytest.mark.editor,
    needs(
        shutil.which("kritarunner") is not None and shutil.which("krita") is not None,
        "Krita is not installed (apt-get install krita python3-pyqt5 python3-zmq python3-msgpack)",
    ),
]


def repo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SMARTBRUSH_"))}
    env.update(extra)
    return env


def krita_env(pythonpath: str = "", **extra: str) -> dict[str, str]:
    """Krita's environment: the test HOME, and no path to this checkout (only the vendored copy).

    Krita's embedded Python finds its home through the first `python3` on PATH: one from pyenv or a
    virtualenv makes it miss the system's PyQt5 ("Cannot load the PyKrita module"), so PATH keeps
    only folders whose python3, if any, is the system one.
    """
    env = repo_env(HOME=str(KRITA_HOME), PYTHONPATH=pythonpath, **extra)
    env.pop("PYTHONHOME", None)
    system_python = Path("/usr/bin/python3").resolve()
    env["PATH"] = os.pathsep.join(
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if not (Path(folder) / "python3").exists()
        or (Path(folder) / "python3").resolve() == system_python
    )
    return env


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory) -> Path:
    """The user's session folder ($XDG_RUNTIME_DIR) shared by the daemon and Krita, as a desktop
    session gives both: the daemon's default socket is in it."""
    folder = tmp_path_factory.mktemp("run")
    folder.chmod(0o700)
    return folder


@pytest.fixture(scope="module")
def daemon(tiny_model_dir, runtime_dir):
    """A daemon on its default endpoint (the user's own socket, no --endpoint): what Krita reaches
    with no setting at all; the kritarunner tests name it."""
    from smartbrush.wire.client import Client, DaemonUnavailable

    endpoint = f"ipc://{runtime_dir}/smartbrush/smartbrushd.sock"
    command = [sys.executable, "-m", "smartbrushd", "--model", tiny_model_dir]
    process = subprocess.Popen(
        [*command, "--log-file", "-"],
        cwd=REPO,
        env=repo_env(PYTHONPATH=CHECKOUT_PATH, XDG_RUNTIME_DIR=str(runtime_dir)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with Client(endpoint, timeout=2.0) as client:
            deadline = time.monotonic() + 240
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the daemon exited: {process.stderr.read().decode()[-2000:]}")
                try:
                    client.hello()
                    break
                except DaemonUnavailable:
                    if time.monotonic() > deadline:
                        pytest.fail("the daemon did not answer within 240 s")
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def curve_daemon(tmp_path_factory, tiny_model_dir):
    """(endpoint of a daemon under CURVE, a client key folder it rejects)."""
    folder = tmp_path_factory.mktemp("curve")
    with curve_daemon_process(folder, tiny_model_dir) as endpoint_and_keys:
        yield endpoint_and_keys


def install_plugin(*args: str) -> subprocess.CompletedProcess:
    KRITA_HOME.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "smartbrush.cli", "install-plugin", "krita", *args],
        cwd=REPO,
        env=repo_env(HOME=str(KRITA_HOME), PYTHONPATH=CHECKOUT_PATH),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def drop_group(kritarc: Path, group: str) -> None:
    """Remove one [group] from a kritarc (KConfig INI) file."""
    lines, keep = [], True
    for line in kritarc.read_text().splitlines():
        if line.startswith("["):
            keep = line != f"[{group}]"
        if keep:
            lines.append(line)
    kritarc.write_text("\n".join(lines) + "\n")


def pid_alive(pid: int, wait: float = 5.0) -> bool:
    """Whether process `pid` still runs after up to `wait` seconds (a zombie counts as gone)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.1)
    return True


def unpack(b64: str, channels: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(H, W, channels)


def alpha_of(layer: dict) -> np.ndarray:
    return unpack(layer["pixels"], 4)[..., 3]  # B, G, R, A


def unchanged_except(case: dict, new_names: set[str]) -> None:
    """Every node that existed before is still there, in order, with the same pixels."""
    after = [node for node in case["after"] if node[1] not in new_names]
    assert after == case["before"]


def check_inside(layer: dict, selection: np.ndarray, min_opaque: int = 50) -> None:
    alpha = alpha_of(layer)
    assert not (alpha[selection == 0] > 0).any(), "the result paints outside the selection"
    # Something is painted. How much depends on the object shape the (random tiny) model predicts:
    # the daemon pastes only there, so the rest of the selection keeps the original.
    assert (alpha == 255).sum() >= min_opaque


# --- 1. kritarunner: the scripting function --------------------------------------------------------


def test_fill_selection_in_kritarunner(daemon, curve_daemon, tmp_path):
    pykrita = tmp_path / "pykrita"
    install_plugin("--dest", str(pykrita))
    result_file = tmp_path / "result.json"
    down = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    run = subprocess.run(
        ["timeout", "240", "kritarunner", "-s", "kritarunner_fill"]
        + [str(result_file), daemon, down, *map(str, curve_daemon)],
        env=krita_env(f"{pykrita}:{SCRIPTS}", QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
    )
    assert result_file.exists(), f"kritarunner wrote no result (rc {run.returncode}):\n{run.stderr}"
    result = json.loads(result_file.read_text())
    assert "crash" not in result, result["crash"]
    # the plugin ran on its vendored copy of smartbrush, not on this checkout
    assert result["smartbrush_file"].startswith(str(pykrita / "smartbrush_krita" / "vendor"))
    cases = result["cases"]

    no_selection = cases["no_selection"]
    assert no_selection["error_type"] == "NoSelection"
    assert no_selection["message"].startswith("Nothing is selected")
    unchanged_except(no_selection, set())
    remove_without = cases["remove_no_selection"]  # Remove says what to select: the object
    assert remove_without["error_type"] == "NoSelection"
    assert remove_without["message"].startswith("Nothing is selected. Select the object to remove")
    unchanged_except(remove_without, set())

    down_case = cases["daemon_down"]
    assert down_case["error_type"] == "DaemonUnavailable"
    assert down_case["message"] == f"The SmartBrush daemon is not answering at {down}."
    unchanged_except(down_case, set())

    rectangle = cases["rectangle"]
    [layer] = rectangle["layers"]
    assert layer["name"] == "SmartBrush: a red ball (seed 11)"
    assert layer["type"] == "paintlayer" and layer["visible"]
    assert layer["parent_type"] == "grouplayer"  # the root
    assert layer["siblings"][layer["index"] - 1] == "Middle"  # directly above the chosen layer
    unchanged_except(rectangle, {layer["name"]})
    check_inside(layer, unpack(rectangle["selection"], 1)[..., 0])

    ellipse = cases["ellipse_variations"]
    first, second = ellipse["layers"]
    group = first["parent"]
    assert group == second["parent"] == "SmartBrush: a cat (2 variations)"
    # each variation's own seed (the one that reproduces it alone) is in its name
    assert (first["name"], second["name"]) == (
        "SmartBrush: a cat (seed 3)",
        "SmartBrush: a cat (seed 4)",
    )
    assert first["visible"] and not second["visible"]
    assert first["index"] > second["index"]  # the first variation is on top
    names = [node[1] for node in ellipse["after"] if node[0] == 0]
    assert names[names.index(group) - 1] == "Middle"
    unchanged_except(ellipse, {group, first["name"], second["name"]})
    selection = unpack(ellipse["selection"], 1)[..., 0]
    assert 0.7 < (selection > 0).sum() / (70 * 50) < 0.85  # really an ellipse, not its box
    for layer in (first, second):
        check_inside(layer, selection)

    # the new layer covers what was painted, not the whole context area sent to the daemon
    x, y, w, h = rectangle["layers"][0]["bounds"]
    assert 40 <= x and 30 <= y and x + w <= 90 and y + h <= 70, rectangle["layers"][0]["bounds"]

    # a 16-bit document is filled (not refused) and keeps its depth; the layer is 16-bit
    deep = result["deep"]
    assert deep["depth"] == "U16" and deep["bytes_per_pixel"] == 8
    assert deep["name"] == "SmartBrush: a red ball (seed 11)" and deep["opaque_pixels"] > 0
    assert deep["all_v_times_257"]  # 8-bit results widened exactly (255 -> 65535)

    # the model sees what the result will sit on: a half-transparent layer above is not baked in
    assert result["reads"] == {
        "below_middle_is_without_top": True,
        "top_changes_pixels": True,
        "below_top_is_everything": True,
        "top_visible_again": True,
        "projection_restored": True,
    }

    # select_object=True: the object the model predicted becomes the selection, inside the fill
    picked = cases["select_object"]
    [layer] = picked["layers"]
    selected = unpack(picked["selection_after"], 1)[..., 0]
    assert selected.any() and not selected[alpha_of(layer) == 0].any()
    # Remove on the tiny model (never trained for removal): the hole filled from around it
    removal = cases["remove"]
    [layer] = removal["layers"]
    assert layer["name"].startswith("SmartBrush: removed (seed ")
    unchanged_except(removal, {layer["name"]})
    check_inside(layer, unpack(removal["selection"], 1)[..., 0])

    # a daemon that rejects this client's CURVE key looks like no daemon: the message says why
    curve = cases["curve_wrong_keys"]
    assert curve["error_type"] == "DaemonUnavailable"
    assert curve["message"].startswith(
        f"The SmartBrush daemon is not answering at {curve_daemon[0]}"
    )
    assert "authentication may be the cause" in curve["message"], curve["message"]
    unchanged_except(curve, set())

    masked = cases["mask_as_reference"]
    [layer] = masked["layers"]
    assert layer["parent_type"] == "grouplayer"  # the root, not inside "Middle"
    assert layer["siblings"][layer["index"] - 1] == "Middle"
    unchanged_except(masked, {layer["name"]})

    # a feathered selection reaches the daemon as it is, and the result keeps its soft edge
    soft = cases["soft_ellipse"]
    [layer] = soft["layers"]
    assert layer["siblings"][layer["index"] - 1] == "Middle"
    unchanged_except(soft, {layer["name"]})
    selection = unpack(soft["selection"], 1)[..., 0].astype(int)
    alpha = alpha_of(layer).astype(int)
    assert ((selection > 0) & (selection < 255)).sum() > 300  # really soft
    assert not (alpha[selection == 0] > 0).any()
    assert (alpha <= selection + 1).all()  # never more opaque than the selection
    # not cut hard: where the model paints fully, the opacity is the selection's own soft value
    feathered = (selection > 0) & (selection < 250)
    assert (feathered & (np.abs(alpha - selection) <= 1)).sum() > 50


# --- 2. full Krita under Xvfb: install, load, the action ---------------------------------------


@contextlib.contextmanager
def virtual_display(screen: str = "1600x1000x24"):
    """An Xvfb server on a display it picks itself once it can bind it (-displayfd), which does not
    reset when its last client leaves (-noreset): under `xvfb-run -a` Krita at times could not
    connect to its display."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", screen, "-nolisten", "tcp"]
        + ["-noreset"],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()  # written once the server accepts connections
    try:
        if not number:
            pytest.fail(f"Xvfb did not start (exit code {server.wait(timeout=10)})")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_fill_action_in_krita_under_xvfb(daemon, runtime_dir, tmp_path, tiny_model_dir):
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        skip_unless_ci("Xvfb or xdotool is not installed (apt-get install xvfb xdotool)")
    install_plugin()  # the user's way: the default pykrita folder of (the test) HOME, enabled
    pykrita = KRITA_HOME / ".local/share/krita/pykrita"
    assert (pykrita / "smartbrush_krita" / "vendor" / "smartbrush" / "wire" / "client.py").exists()
    # the test-only driver plugin, enabled the same way
    driver = pykrita / "smartbrush_krita_driver"
    shutil.rmtree(driver, ignore_errors=True)
    shutil.copytree(SCRIPTS / "smartbrush_krita_driver", driver)
    shutil.copy2(SCRIPTS / "smartbrush_krita_driver.desktop", pykrita)
    kritarc = KRITA_HOME / ".config" / "kritarc"
    enable_krita_plugin(kritarc, "smartbrush_krita_driver")
    assert "enable_smartbrush_krita=true" in kritarc.read_text()

    drop_group(kritarc, "SmartBrush")  # the docker's remembered settings from earlier runs

    # For the "Start daemon" button: a command that starts a second daemon on a free port and
    # adds its process id to a file, where the driver and this test look for it.
    start_endpoint = f"tcp://127.0.0.1:{free_port()}"
    pid_file = tmp_path / "started-daemon.pids"
    start_command = shlex.join(
        [
            "sh",
            "-c",
            f'echo $$ >> "{pid_file}"; cd "{REPO}"; PYTHONPATH="{CHECKOUT_PATH}" exec "$0" "$@"',
            sys.executable,
        ]
        + [
            "-m",
            "smartbrushd",
            "--model",
            tiny_model_dir,
            "--endpoint",
            start_endpoint,
            "--log-file",
            "-",
        ]
    )
    result_file = tmp_path / "driver.json"
    screenshot = os.environ.get("SMARTBRUSH_KRITA_SCREENSHOT", "")  # for docs/krita-docker.png
    with virtual_display() as display:
        try:
            run = subprocess.run(
                ["timeout", "400", "krita", "--nosplash"],
                env=krita_env(
                    DISPLAY=display,
                    XDG_RUNTIME_DIR=str(runtime_dir),  # no endpoint set: the user's own daemon
                    SMARTBRUSH_KRITA_DRIVER_RESULT=str(result_file),
                    SMARTBRUSH_KRITA_DRIVER_START=start_command,
                    SMARTBRUSH_KRITA_DRIVER_START_ENDPOINT=start_endpoint,
                    SMARTBRUSH_KRITA_DRIVER_PID_FILE=str(pid_file),
                    SMARTBRUSH_KRITA_SCREENSHOT=screenshot,
                ),
                capture_output=True,
                text=True,
            )
        finally:
            started_pids = (
                [int(pid) for pid in pid_file.read_text().split()] if pid_file.exists() else []
            )
            still_running = [pid for pid in started_pids if pid_alive(pid)]
            for pid in still_running:  # if Stop daemon or the stop on quit failed: do not leave it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
    assert result_file.exists(), (
        f"Krita wrote no result (rc {run.returncode}):\n{run.stderr[-3000:]}"
    )
    result = json.loads(result_file.read_text())
    assert result["problem"] is None, result["problem"]
    assert run.returncode == 0, f"Krita did not quit by itself (rc {run.returncode})"
    # the plugin was loaded by Krita: its action (with the .action file's shortcut) and docker exist
    assert result["action"] == {"text": "SmartBrush fill", "shortcut": "Ctrl+Alt+B"}
    assert result["remove_action"] == "SmartBrush remove"
    assert result["docker_found"]
    # kritarc may hold a user's choice; a fresh test home has none, so the default shows
    assert result["detail"]["choices"] == ["off", "fast", "best"]
    assert result["active_before"] == "Middle"
    assert result["no_selection"]["message"].startswith("Nothing is selected")
    assert result["no_selection"]["unchanged"]
    assert result["no_selection"]["message_after_selecting"] == ""  # not stale once selected
    # auto precision is shown, with why, before the fill
    assert result["precision_shown"] == "auto: 1.00, a rectangle: anywhere in the box"
    # ... and it wraps: the dock column keeps its width (it went past the screen's edge; issue 33,
    # item 5). More settings scrolls inside the docker: opened, the Layers docker keeps its rows
    # and the docker stays on the screen; closed, all is as before
    layout = result["layout"]
    assert layout["auto_text"]["SmartBrush"][2] == layout["before"]["SmartBrush"][2], layout
    for state in ("more_open", "more_closed"):
        assert layout[state]["Layers"] == layout["auto_text"]["Layers"], (state, layout)
        _, top, _, height = layout[state]["SmartBrush"]
        assert top + height <= layout[state]["window"][3], (state, layout)

    selection = unpack(result["selection"], 1)[..., 0]
    single = result["single"]
    [layer] = single["layers"]
    assert single["node"]["type"] == "paintlayer"
    assert layer["name"] == "SmartBrush: a red ball (seed 7)"
    assert single["siblings"][single["node"]["index"] - 1] == "Middle"  # above the active layer
    unchanged_except(single, {layer["name"]})
    check_inside(layer, selection)
    # after a mouse click on Fill the keyboard is the canvas's, not a text field's: the keys "b"
    # and Ctrl+Z, typed through the X server, undid the fill and left the endpoint alone
    assert single["focus_on_canvas"], single["focus_after_fill"]
    assert single["endpoint_before_keys"] == single["endpoint_after_undo"] == ""
    # auto precision is not invisible: a rectangle selection meant the box (1.00)
    assert single["message"].startswith(
        f"Added “{layer['name']}”. Auto precision: 1.00, from the selection's shape."
    )
    # the tiny model works at 32 px: the docker says how much it had to upscale this area
    assert "The model works at 32 px" in single["message"], single["message"]
    assert single["after_undo"] == single["before"]  # Ctrl+Z removes the result, nothing else
    # ... and the docker no longer speaks of it
    assert single["message_after_undo"] == "" and not single["select_enabled_after_undo"]

    variations = result["variations"]
    assert variations["node"]["type"] == "grouplayer"
    assert variations["node"]["name"] == "SmartBrush: a red ball (2 variations)"
    assert variations["siblings"][variations["node"]["index"] - 1] == "Middle"
    first, second = variations["layers"]
    assert first["visible"] and not second["visible"]
    unchanged_except(variations, {variations["node"]["name"], first["name"], second["name"]})
    for layer in (first, second):
        check_inside(layer, selection)
    assert variations["after_undo"] == variations["before"]
    assert not variations["select_enabled_after_undo"]
    # Ctrl+Shift+Z: the layers are back, and with them what the docker says of them
    after_redo = variations["after_redo"]
    assert after_redo["select_enabled"] and after_redo["message"].startswith("Added ")
    assert after_redo["bar"]["value"] == after_redo["bar"]["maximum"] == 1
    # another image shows nothing of this fill; back in this one, all of it again
    assert variations["in_other_image"] == {
        "select_enabled": False, "message": "", "bar": {"value": 0, "maximum": 1, "text": False},
        "preview": False,
    }  # fmt: skip
    assert variations["back_in_first_image"] == after_redo

    # Select painted object draws marching ants round the object (issue 33, item 1): the canvas with
    # that selection differs from the canvas without any (before, it had no ants: no difference)
    picked = result["select_object"]
    assert picked["message"] == "The painted object is now the selection." and picked["selected"]
    with_ants, without = (
        np.asarray(Image.open(picked[k]).convert("RGB")) for k in ("with", "without")
    )
    assert (with_ants != without).any(axis=2).sum() >= 30, "no marching ants round the object"

    # Fill clicked right after a rectangle is dragged with the mouse, before Krita has set that
    # selection (issue 33, item 6): the click waits for it and fills, it is not lost
    quick = result["quick_click"]
    assert quick["selection"] and quick["selection"][2] >= 10, quick  # the rectangle dragged
    assert len(quick["layers"]) == 1 and quick["message"].startswith("Added "), quick

    # Cancel: the job stops early, nothing is added
    cancel = result["cancel"]
    assert cancel["message_while_running"].startswith("Step ")
    assert cancel["message"] == "Cancelled."
    assert cancel["after"] == cancel["before"]

    # Daemon down: the docker says so and offers to start it; Start daemon runs the configured
    # command, waits for the daemon's hello and then fills
    started = result["start_daemon"]
    assert started["message_down"] == (
        f"The SmartBrush daemon is not answering at {start_endpoint}. "
        f"Press Start daemon to run `{start_command}`."
    )
    assert started["start_button_visible"]
    assert started["message_starting"].startswith("Starting the daemon")
    [layer] = started["layers"]
    assert re.fullmatch(r"SmartBrush: a red ball \(seed \d+\)", layer["name"])
    unchanged_except(started, {layer["name"]})
    check_inside(layer, selection, min_opaque=1)  # a random seed: any predicted shape
    # Stop daemon, pressed while a fill runs, stops the daemon the docker started; that fill fails
    # with the reason, and neither a full bar nor its noise preview stays behind
    assert started["stop_button_visible"]
    assert started["message_stopped"] == "Stopped the daemon that SmartBrush started."
    stop = result["stop_mid_fill"]
    assert stop["bar_while_running"]["value"] > 0 and stop["bar_while_running"]["text"]
    assert "shutting down" in stop["message"], stop["message"]
    assert stop["bar"] == {"value": 0, "maximum": 1, "text": False}
    assert stop["preview_after"] is False
    assert stop["after"] == stop["before"] and stop["daemon_gone"]

    # started again from the docker, it fills
    restart = result["restart"]
    assert restart["message_starting"].startswith("Starting the daemon")
    [layer] = restart["layers"]
    unchanged_except(restart, {layer["name"]})

    # closing the image cancels its job at the daemon (it had 200 steps to go)
    closed = result["close_image"]
    assert closed["running_before"] == 1 and closed["step_at_close"].startswith("Step ")
    assert closed["message"] == "The image was closed; its fill was cancelled."
    assert closed["running_after"] == 0 and closed["seconds_to_stop"] < 10, closed
    assert closed["bar"]["text"] is False

    # that daemon killed from outside: reaped (no zombie), Stop gone, Start offered, and said
    killed = result["killed_outside"]
    assert killed["reaped"] and not killed["stop_visible"] and killed["start_visible"]
    assert killed["message"].startswith("The daemon SmartBrush started was killed (signal 9)")

    # Krita quit (File > Quit): the daemon its docker started stopped with it
    assert len(started_pids) == 2, started_pids
    assert not still_running, f"started daemons still running after Krita quit: {still_running}"

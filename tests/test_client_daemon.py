"""Client <-> daemon over real loopback sockets with a real tiny model."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import zmq
from daemon_helpers import (
    REPO,
    SERVE_COMMAND,
    box_request,
    daemon_env,
    ellipse_mask,
    running_daemon,
    start_daemon_process,
    stop_process,
)
from PIL import Image
from smartbrushd.server import Daemon

from smartbrush.cli import main as cli_main
from smartbrush.runtime.jobs import accept_job, run_job
from smartbrush.testing import free_port
from smartbrush.wire import protocol
from smartbrush.wire.client import (
    Client,
    ClientError,
    DaemonError,
    DaemonUnavailable,
    FillCancelled,
    VersionMismatch,
)
from smartbrush.wire.protocol import ProtocolError


@pytest.fixture
def client(daemon):  # daemon (conftest.py): in-process, serving tiny_pixel_pipeline as model "tiny"
    with Client(daemon.endpoint, timeout=20) as client:
        yield client


def pixels(image: dict) -> Image.Image:
    return Image.frombytes(image["mode"], (image["width"], image["height"]), image["data"])


def max_difference(a: dict, b: dict) -> int:
    return max(abs(x - y) for x, y in zip(a["data"], b["data"], strict=True))


def wait_idle(client: Client, limit: float = 20) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = client.status()
        if not status["running"] and not status["queued"]:
            return status
        time.sleep(0.05)
    raise AssertionError(f"daemon still busy: {status}")


def test_hello_reports_model_device_levels_and_limits(client):
    info = client.hello()
    assert info["protocol_version"] == protocol.PROTOCOL_VERSION
    assert info["model"] == "tiny" and info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["num_precision_levels"] == 5 and info["resolution"] == 32
    assert info["limits"]["max_pixels"] == protocol.MAX_PIXELS
    assert info["curve"] is False


def test_version_mismatch_is_a_clear_error(daemon):
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.connect(daemon.endpoint)
    socket.send(protocol.encode({"type": "hello", "protocol_version": 99, "request_id": 1}))
    assert socket.poll(10_000)
    reply = protocol.decode(socket.recv())
    socket.close(linger=0)
    assert reply["type"] == "error" and reply["code"] == protocol.VERSION_MISMATCH
    assert reply["request_id"] == 1 and "99" in reply["message"]
    assert issubclass(VersionMismatch, DaemonError)


def test_fill_returns_full_size_results_and_keeps_the_background(client):
    request = box_request(steps=3, seed=11, variations=2)
    result = client.fill(request)
    assert result["seeds"] == [11, 12]
    assert len(result["images"]) == len(result["alphas"]) == len(result["masks"]) == 2
    assert result["precision"] == 1.0  # a box means "anywhere in the box"
    original = pixels(request["image"])
    x, y, w, h = request["box"]
    for image, alpha in zip(result["images"], result["alphas"], strict=True):
        assert (image["width"], image["height"], image["mode"]) == (64, 48, "RGB")
        out, alpha = pixels(image), pixels(alpha)
        for px, py in [(0, 0), (63, 47), (x - 1, y), (x + w, y + h - 1)]:  # outside the box
            assert out.getpixel((px, py)) == original.getpixel((px, py))
            assert alpha.getpixel((px, py)) == 0
        assert (
            out.crop((x, y, x + w, y + h)).tobytes()
            != original.crop((x, y, x + w, y + h)).tobytes()
        )
    assert set(result["timings"]) >= {"queued", "run", "decode", "encode"}


def test_seed_reproduces_a_variation_and_matches_in_process_run(client, tiny_pixel_pipeline):
    first = client.fill(box_request(variations=2))
    again = client.fill(box_request(seed=first["seeds"][1]))
    # batched and single runs differ in float rounding only: at most a step of 8-bit
    assert max_difference(again["images"][0], first["images"][1]) <= 1
    assert max_difference(again["images"][0], first["images"][0]) > 10
    local = run_job(
        tiny_pixel_pipeline, accept_job({"type": "fill", **box_request(seed=first["seeds"][1])})
    )
    assert local["images"][0]["data"] == again["images"][0]["data"]


def test_png_input_gives_the_same_result_as_raw(client):
    raw = box_request(seed=3)
    buffer = io.BytesIO()
    pixels(raw["image"]).save(buffer, format="PNG")
    from_png = client.fill({**raw, "image": {"png": buffer.getvalue()}})
    assert from_png["images"][0]["data"] == client.fill(raw)["images"][0]["data"]


def test_masks_with_auto_precision(client):
    mask = ellipse_mask()
    result = client.fill({**box_request(), "box": None, "mask": mask, "precision": "auto"})
    assert result["precision"] == 0.0  # a hard-edged ellipse: follow its shape
    alpha = pixels(result["alphas"][0]).tobytes()
    assert all(a == 0 for a, m in zip(alpha, mask["data"], strict=True) if m == 0)

    from PIL import ImageFilter

    feathered = pixels(mask).filter(ImageFilter.GaussianBlur(1))
    soft = protocol.raw_image(64, 48, "L", feathered.tobytes())
    result = client.fill({**box_request(), "box": None, "mask": soft, "precision": "auto"})
    assert 0.0 < result["precision"] < 1.0  # a feathered selection: looser


def test_progress_and_previews(client):
    messages = []
    client.fill(box_request(steps=4, preview_interval=2), on_progress=messages.append)
    assert messages[0]["type"] == "accepted" and messages[0]["queue_position"] == 0
    progress = [m for m in messages if m["type"] == "progress"]
    assert [m["step"] for m in progress] == [1, 2, 3, 4] and {m["total"] for m in progress} == {4}
    previews = [m["preview"] for m in progress if m["preview"] is not None]
    assert len(previews) == 2
    for preview in previews:
        assert preview["mode"] == "RGB" and max(preview["width"], preview["height"]) <= 256
        assert len(preview["data"]) == preview["width"] * preview["height"] * 3


def test_bad_requests_get_errors_and_lose_nothing(client):
    # the daemon checks what arrives (once, when it arrives); the client sends it as it is
    with pytest.raises(DaemonError, match="precision must be a number") as error:
        client.fill(box_request(precision=float("nan")))
    assert error.value.code == protocol.BAD_REQUEST
    empty = ellipse_mask()
    empty["data"] = bytes(len(empty["data"]))
    with pytest.raises(DaemonError, match="mask is empty") as error:  # answered on arrival
        client.fill({**box_request(), "box": None, "mask": empty})
    assert error.value.code == protocol.BAD_REQUEST
    with pytest.raises(ProtocolError, match="mask is empty"):  # fill --local: the same check
        accept_job({"type": "fill", **box_request(), "box": None, "mask": empty})
    with pytest.raises(ClientError, match="cannot be sent"):  # not msgpack: said before sending
        client.fill(box_request(seed={1, 2}))
    # a PNG mask is only known empty once decoded, on the daemon's worker
    png = io.BytesIO()
    Image.new("L", (empty["width"], empty["height"]), 0).save(png, format="PNG")
    with pytest.raises(DaemonError, match="mask is empty") as error:
        client.fill({**box_request(), "box": None, "mask": {"png": png.getvalue()}})
    assert error.value.code == protocol.BAD_REQUEST
    assert client.fill(box_request())["images"]  # and the daemon still serves


def test_cancel_mid_job_stops_at_the_next_step(client):
    steps_seen = []

    def stop_after_two(message):
        if message["type"] == "progress":
            steps_seen.append(message["step"])
            return message["step"] < 2

    with pytest.raises(FillCancelled):
        client.fill(box_request(steps=150), on_progress=stop_after_two)
    assert max(steps_seen) < 10  # stopped long before the end
    status = wait_idle(client)
    assert status["running"] == []
    assert client.fill(box_request())["images"]


def test_cancel_a_queued_job_from_another_client(daemon, client):
    job_ids, outcomes = {}, {}

    def run(name, steps):
        with Client(daemon.endpoint, timeout=20) as own:

            def remember(message):
                if message["type"] == "accepted":
                    job_ids[name] = message["job_id"]

            try:
                outcomes[name] = own.fill(box_request(steps=steps), on_progress=remember)
            except FillCancelled:
                outcomes[name] = "cancelled"

    long = threading.Thread(target=run, args=("long", 120))
    long.start()
    while "long" not in job_ids:
        time.sleep(0.01)
    queued = threading.Thread(target=run, args=("queued", 2))
    queued.start()
    while "queued" not in job_ids:
        time.sleep(0.01)
    assert client.status()["queued"] == [job_ids["queued"]]
    client.cancel(job_ids["queued"])
    queued.join(timeout=20)
    assert outcomes["queued"] == "cancelled"
    client.cancel(job_ids["long"])
    long.join(timeout=20)
    assert outcomes["long"] == "cancelled"
    with pytest.raises(DaemonError) as error:
        client.cancel(job_ids["long"])  # finished jobs are unknown
    assert error.value.code == protocol.UNKNOWN_JOB


def test_client_vanishing_mid_job_does_not_wedge_the_worker(daemon, client):
    done_before = client.status()["jobs_done"]
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.connect(daemon.endpoint)
    request = protocol.validate_fill({"type": "fill", **box_request(steps=10)})
    socket.send(protocol.encode(request))
    kinds = []
    while "progress" not in kinds:
        assert socket.poll(10_000)
        kinds.append(protocol.decode(socket.recv())["type"])
    socket.close(linger=0)  # gone, with its job running
    assert client.fill(box_request())["images"]  # served after the orphan finished
    assert wait_idle(client)["jobs_done"] >= done_before + 2


def test_oversized_messages_are_refused_without_harm(daemon, client):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, format="PNG")
    bloated = buffer.getvalue() + bytes(protocol.MAX_MESSAGE_BYTES)  # a small PNG, a huge message
    with pytest.raises(ClientError, match="byte limit"):
        client.fill({**box_request(), "image": {"png": bloated}})
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.connect(daemon.endpoint)
    socket.send(b"\x00" * (protocol.MAX_MESSAGE_BYTES + 1))  # ZMQ_MAXMSGSIZE drops the connection
    assert not socket.poll(1000)
    socket.close(linger=0)
    assert client.hello()["model"] == "tiny"


def test_unreachable_daemon_raises_within_the_timeout():
    client = Client(f"tcp://127.0.0.1:{free_port()}", timeout=0.5)
    start = time.monotonic()
    with pytest.raises(DaemonUnavailable, match="smartbrush serve"):
        client.hello()
    assert time.monotonic() - start < 2


def test_endpoint_from_environment(monkeypatch):
    monkeypatch.setenv("SMARTBRUSH_ENDPOINT", "tcp://127.0.0.1:1234")
    assert Client().endpoint == "tcp://127.0.0.1:1234"
    assert Client("ipc:///tmp/x").endpoint == "ipc:///tmp/x"
    monkeypatch.delenv("SMARTBRUSH_ENDPOINT")
    assert Client().endpoint == protocol.default_endpoint()


# --- security -------------------------------------------------------------------------------------
def test_loopback_detection():  # the rule itself: test_protocol.py's test_the_one_loopback_rule
    assert protocol.is_local_endpoint("tcp://127.0.0.1:5737")
    assert protocol.is_local_endpoint("tcp://[::1]:5737")
    assert protocol.is_local_endpoint("tcp://localhost:5737")
    assert protocol.is_local_endpoint("ipc:///tmp/sb")
    for endpoint in (
        "tcp://*:5737",
        "tcp://0.0.0.0:5737",
        "tcp://192.168.1.4:5737",
        "tcp://eth0:1",
    ):
        assert not protocol.is_local_endpoint(endpoint)


def test_non_loopback_bind_is_refused_without_curve(tiny_pixel_pipeline):
    with pytest.raises(ValueError, match="refusing to listen on tcp://0.0.0.0"):
        Daemon(tiny_pixel_pipeline, "tcp://0.0.0.0:5737")


def test_smartbrushd_refuses_a_public_address_before_loading_a_model(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "smartbrushd",
            "--endpoint",
            "tcp://*:5737",
            "--log-file",
            "-",
        ],
        cwd=tmp_path,
        env=daemon_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to listen on tcp://*:5737" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys") / "curve"
    assert cli_main(["keys", str(folder)]) == 0
    return folder


def test_keys_command_creates_a_complete_key_folder(keys, capsys):
    for name in ("server.key", "server.key_secret", "client.key", "client.key_secret"):
        assert (keys / name).is_file()
    assert (keys / "authorized_clients" / "client.key").is_file()
    assert oct((keys / "server.key_secret").stat().st_mode & 0o777) == "0o600"
    assert cli_main(["keys", str(keys)]) == 2  # never overwrites keys
    assert "already holds keys" in capsys.readouterr().err


def test_curve_accepts_authorised_clients_and_rejects_others(tiny_pixel_pipeline, keys, tmp_path):
    with running_daemon(tiny_pixel_pipeline, endpoint="tcp://0.0.0.0:*", curve_dir=keys) as daemon:
        port = daemon.endpoint.rsplit(":", 1)[1]
        endpoint = f"tcp://127.0.0.1:{port}"
        with Client(endpoint, timeout=10, curve_dir=keys) as trusted:
            assert trusted.hello()["curve"] is True
            assert trusted.fill(box_request())["images"]
        with Client(endpoint, timeout=1) as plain, pytest.raises(DaemonUnavailable):
            plain.hello()  # no encryption at all
        stranger = tmp_path / "stranger"
        assert cli_main(["keys", str(stranger)]) == 0
        shutil.copy(
            keys / "server.key", stranger / "server.key"
        )  # knows the server, not authorised
        with (
            Client(endpoint, timeout=1, curve_dir=stranger) as unknown,
            pytest.raises(DaemonUnavailable),
        ):
            unknown.hello()
        with Client(endpoint, timeout=10, curve_dir=keys) as trusted:
            assert trusted.hello()["model"] == "tiny"  # still serving


def test_bad_key_folder_is_a_client_error(tmp_path):
    with pytest.raises(ClientError, match="cannot read CURVE keys"):
        Client("tcp://127.0.0.1:5737", curve_dir=tmp_path)


# --- a real daemon process ------------------------------------------------------------------------
def test_daemon_process_killed_mid_job_then_restarted(tmp_path, tiny_model_dir):
    """SIGKILL mid-job: the client fails within its timeout, then works with the restarted daemon.
    SIGTERM mid-job: the job's client hears "shutting_down" and the daemon exits cleanly."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    process = start_daemon_process(endpoint, tmp_path, model=tiny_model_dir)
    client = Client(endpoint, timeout=3)
    try:
        assert client.hello()["model"] == tiny_model_dir

        killed_at = []

        def kill_at_first_step(message):
            if message["type"] == "progress" and not killed_at:
                os.kill(process.pid, signal.SIGKILL)
                killed_at.append(time.monotonic())

        with pytest.raises(DaemonUnavailable, match="no SmartBrush daemon answered"):
            client.fill(box_request(steps=200), on_progress=kill_at_first_step)
        # the timeout is the longest silence: the client gives up that long after the last message
        assert time.monotonic() - killed_at[0] < 3 + 2
        process.wait(timeout=10)

        # restarted through the CLI this time, logging to the default platformdirs log file
        process = start_daemon_process(
            endpoint, tmp_path, "--log-file", "", model=tiny_model_dir, command=SERVE_COMMAND
        )
        assert client.fill(box_request())["images"]  # same Client object, new daemon

        def terminate_at_first_step(message):
            if message["type"] == "progress":
                process.send_signal(signal.SIGTERM)

        with pytest.raises(DaemonError) as error:
            client.fill(box_request(steps=200), on_progress=terminate_at_first_step)
        assert error.value.code == protocol.SHUTTING_DOWN
        assert process.wait(timeout=30) == 0
        log = (tmp_path / "state" / "smartbrush" / "log" / "smartbrushd.log").read_text()
        assert "listening on" in log and "accepted" in log and "stopped" in log
    finally:
        client.close()
        stop_process(process)


def test_systemd_unit_starts_smartbrushd():
    unit = (REPO / "daemon" / "smartbrushd" / "smartbrushd.service").read_text()
    assert "ExecStart=" in unit and "smartbrushd" in unit
    assert "WantedBy=default.target" in unit


def test_one_worker_per_pipeline_runs_jobs_side_by_side(tiny_pixel_pipeline):
    """Several devices = several pipelines = several workers sharing one FIFO queue."""
    from smartbrush.testing import tiny_pipeline

    second = tiny_pipeline()
    second.set_progress_bar_config(disable=True)
    with running_daemon([tiny_pixel_pipeline, second]) as daemon:
        running = threading.Event()
        outcomes = []

        def long_fill():
            with Client(daemon.endpoint, timeout=20) as own:
                try:
                    own.fill(box_request(steps=150), on_progress=lambda m: not running.is_set())
                except FillCancelled:
                    outcomes.append("cancelled")

        threads = [threading.Thread(target=long_fill) for _ in range(2)]
        for thread in threads:
            thread.start()
        with Client(daemon.endpoint, timeout=20) as client:
            assert client.hello()["devices"] == ["cpu", "cpu"]
            deadline = time.monotonic() + 20
            while len(client.status()["running"]) < 2:
                assert time.monotonic() < deadline, client.status()
                time.sleep(0.05)
            running.set()  # both ran at once; now the callbacks cancel them
        for thread in threads:
            thread.join(timeout=20)
        assert outcomes == ["cancelled", "cancelled"]


def test_incomplete_key_folder_and_busy_port_are_clear_errors(
    tiny_pixel_pipeline, tmp_path, daemon
):
    (tmp_path / "server.key_secret").write_text("not a certificate")
    with pytest.raises(ValueError, match="cannot read the server key"):
        Daemon(tiny_pixel_pipeline, "tcp://127.0.0.1:*", curve_dir=tmp_path).bind()
    with pytest.raises(ValueError, match="cannot listen on .*in use"):
        Daemon(tiny_pixel_pipeline, daemon.endpoint).bind()


def test_the_daemon_answers_while_its_model_loads_and_fills_once_loaded(tiny_pixel_pipeline):
    release = threading.Event()

    def slow_load():
        release.wait(30)
        return [tiny_pixel_pipeline]

    daemon = Daemon(load=slow_load, endpoint="tcp://127.0.0.1:*", model_name="tiny")
    endpoint = daemon.bind()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        with Client(endpoint, timeout=20) as client:
            info = client.hello()
            assert info["loading"] is True and info["model"] == "tiny"
            assert info["resolution"] is None and info["devices"] == []
            seen = []
            result = {}
            filler = threading.Thread(
                target=lambda: result.update(
                    client.fill(box_request(), on_progress=lambda m: seen.append(m["type"]))
                )
            )
            filler.start()
            with Client(endpoint, timeout=5) as other:
                deadline = time.monotonic() + 10
                while not seen and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert seen[:1] == ["accepted"]  # queued while the model loads
                assert other.status()["queued"]
                release.set()
                filler.join(30)
                assert result["images"]
                assert other.hello()["loading"] is False
    finally:
        release.set()
        daemon.stop()
        thread.join(30)


def test_a_model_that_fails_to_load_stops_the_daemon_and_tells_waiting_clients():
    def broken_load():
        time.sleep(0.5)
        raise ValueError("no model 'nope' (no such file or folder)")

    daemon = Daemon(load=broken_load, endpoint="tcp://127.0.0.1:*", model_name="nope")
    endpoint = daemon.bind()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    with Client(endpoint, timeout=20) as client:
        with pytest.raises(DaemonError, match="cannot load model nope") as error:
            client.fill(box_request())
    assert error.value.code == protocol.SHUTTING_DOWN
    thread.join(30)
    assert not thread.is_alive() and daemon.load_error.startswith("no model 'nope'")


def test_the_daemon_is_smartbrush_daemon_and_nothing_imports_a_top_level_daemon(tmp_path):
    # from a folder without the checkout's daemon/ on the path: what an installed package sees
    code = (
        "import sys, smartbrush.cli, smartbrushd.server, smartbrush.commands.fill\n"
        "smartbrush.cli.build_parser()\n"
        "assert 'daemon' not in sys.modules, sys.modules['daemon']\n"
        "print(smartbrushd.server.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "smartbrushd.server"

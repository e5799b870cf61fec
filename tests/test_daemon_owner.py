"""A local daemon answers only its own user (issue 33, item 14): by default it listens on a Unix socket
in a folder only its user can enter, and a client tells its user when the daemon it reaches is another
user's. The second OS user is real: made with useradd for this module, removed with userdel -r."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from daemon_helpers import CLI_COMMAND, REPO, box_request, daemon_env, running_daemon
from needs import skip_unless_ci
from smartbrushd.server import Daemon

from smartbrush.testing import free_port
from smartbrush.wire import protocol
from smartbrush.wire.client import Client, DaemonUnavailable, NotYourDaemon
from smartbrush.wire.editing import user_message


@pytest.fixture
def own_runtime_dir(monkeypatch, tmp_path) -> Path:
    """This user's session folder ($XDG_RUNTIME_DIR, 0700 as logind makes it), and no endpoint set."""
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.delenv(protocol.ENDPOINT_ENV, raising=False)
    monkeypatch.delenv(protocol.CURVE_DIR_ENV, raising=False)
    return folder


# --- one user -------------------------------------------------------------------------------------
def test_the_default_endpoint_is_a_socket_in_the_users_own_folder(own_runtime_dir, monkeypatch):
    expected = f"ipc://{own_runtime_dir}/smartbrush/smartbrushd.sock"
    assert protocol.default_endpoint() == expected
    assert Client().endpoint == expected
    monkeypatch.delenv("XDG_RUNTIME_DIR")  # no session folder: /run/user/UID, else the temp folder
    folder = protocol.default_socket_dir()
    assert folder in (
        f"/run/user/{os.getuid()}/smartbrush",
        os.path.join(tempfile.gettempdir(), f"smartbrush-{os.getuid()}"),
    )


def test_a_daemon_on_the_default_endpoint_is_owner_only(tiny_pixel_pipeline, own_runtime_dir):
    with running_daemon(tiny_pixel_pipeline, endpoint=None) as daemon:
        assert daemon.endpoint == protocol.default_endpoint()
        socket_file = Path(protocol.ipc_path(daemon.endpoint) or "")
        for path in (socket_file.parent, socket_file):
            assert path.stat().st_uid == os.getuid()
            assert path.stat().st_mode & 0o077 == 0, f"{path} is open to others"
        assert stat.S_ISSOCK(socket_file.stat().st_mode)
        with Client(timeout=30) as client:  # zero setup: the same default on both ends
            info = client.hello()
            assert (info["uid"], info["host"]) == (os.getuid(), os.uname().nodename)
            assert client.fill(box_request())["images"]
        # a second daemon does not take the socket over (ZeroMQ alone would, silently)
        with pytest.raises(ValueError, match="a daemon is already listening there"):
            Daemon(tiny_pixel_pipeline).bind()
        with Client(timeout=30) as client:
            assert client.hello()["model"] == "tiny"  # the first one still answers
    assert not socket_file.exists()  # removed at shutdown: no stale socket


def test_a_socket_folder_made_by_another_user_is_refused(tiny_pixel_pipeline, own_runtime_dir):
    if os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    folder = own_runtime_dir / "smartbrush"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody's: as another user could make it in a shared /tmp
    with pytest.raises(ValueError, match=f"refusing the socket folder {folder}: it belongs to"):
        Daemon(tiny_pixel_pipeline).bind()


# --- a second OS user ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def other_user() -> Iterator[SimpleNamespace]:
    """A throwaway OS user (useradd), with a home, a session folder and a way to run commands as it."""
    if os.getuid() != 0:
        pytest.skip("making a second OS user needs root")
    tools = ("useradd", "userdel", "setpriv")
    if not all(shutil.which(tool) for tool in tools):
        skip_unless_ci(f"a second OS user needs {', '.join(tools)}")
    base = Path(tempfile.mkdtemp(prefix="smartbrush-other-user-"))
    base.chmod(0o755)
    name = f"sbtest{uuid.uuid4().hex[:8]}"
    home = base / "home"
    subprocess.run(
        ["useradd", "--create-home", "--home-dir", str(home), "--shell", "/usr/sbin/nologin",
         "--user-group", name],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        import pwd

        entry = pwd.getpwnam(name)
        run = home / "run"
        run.mkdir(mode=0o700)
        os.chown(run, entry.pw_uid, entry.pw_gid)
        as_user = [
            "setpriv",
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--clear-groups",
        ]
        yield SimpleNamespace(
            name=name, uid=entry.pw_uid, home=home, run=run, base=base, as_user=as_user,
            python=_python_for(as_user, base),
        )  # fmt: skip
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _python_for(as_user: list[str], base: Path) -> str:
    """A Python the other user can run with pyzmq and msgpack (the system's, or this one where it
    can read it), and smartbrush.wire copied where it can read it: a client with no powers of ours."""
    shutil.copytree(REPO / "smartbrush" / "wire", base / "client" / "smartbrush" / "wire")
    (base / "client" / "smartbrush" / "__init__.py").write_text("")
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            [*as_user, python, "-c", "import zmq, msgpack"], capture_output=True, cwd=base
        )
        if probe.returncode == 0:
            return python
    skip_unless_ci("no Python with pyzmq and msgpack that another user may run")
    raise AssertionError  # not reached


def _as_daemon_user(other: SimpleNamespace) -> list[str]:
    """How to run this checkout's daemon as the other user. It must read this Python, the checkout
    and the model, which may sit in root's home: then it gets CAP_DAC_READ_SEARCH (read, no more)."""
    probe = [sys.executable, "-c", "import torch, smartbrushd.server"]
    env = {**daemon_env(other.home), "HOME": str(other.home)}
    if subprocess.run([*other.as_user, *probe], env=env, capture_output=True).returncode == 0:
        return other.as_user
    reader = [*other.as_user, "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    if subprocess.run([*reader, *probe], env=env, capture_output=True).returncode == 0:
        return reader
    skip_unless_ci("the other user cannot run this checkout's Python")
    raise AssertionError  # not reached


@contextlib.contextmanager
def others_daemon(other: SimpleNamespace, model: str, *args: str) -> Iterator[str]:
    """A real daemon process run by the other user on its own default endpoint, or `args`'
    --endpoint; yields the endpoint it listens on, read from its first line."""
    env = {
        **daemon_env(other.home),
        "HOME": str(other.home),
        "XDG_RUNTIME_DIR": str(other.run),
        "USER": other.name,
    }
    log_path = other.base / f"daemon-{uuid.uuid4().hex[:6]}.log"
    command = [sys.executable, "-m", "smartbrushd", "--model", model, "--threads", "1"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*_as_daemon_user(other), *command, "--log-file", "-", *args],
            cwd=other.home, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        marker = "listening on "
        deadline = time.monotonic() + 120
        while marker not in log_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, f"the daemon exited: {log_path.read_text()}"
            time.sleep(0.1)
        text = log_path.read_text()
        assert marker in text, f"the daemon did not start: {text}"
        yield text.split(marker, 1)[1].split()[0]
    finally:
        process.kill()
        process.wait(timeout=30)
        other.last_log = log_path.read_text()


def test_another_users_daemon_is_not_used_by_default(other_user, own_runtime_dir, tiny_model_dir):
    model = shutil.copytree(tiny_model_dir, other_user.base / "model")
    with others_daemon(other_user, str(model)) as theirs:
        socket_file = Path(theirs.removeprefix("ipc://"))
        assert socket_file.is_relative_to(other_user.run)  # their own folder, not ours
        assert socket_file.stat().st_uid == other_user.uid
        # this user's plugins and CLI, with no setting, look for this user's daemon: not up
        with Client(timeout=1) as mine, pytest.raises(DaemonUnavailable):
            mine.hello()
        # pointed at their socket, the client says whose it is and sends nothing (root may enter)
        with Client(theirs, timeout=5) as pointed, pytest.raises(NotYourDaemon) as refused:
            pointed.fill(box_request())
        said = user_message(refused.value, theirs)
        assert f"is not yours (its socket belongs to user {other_user.name}" in said
        assert "Start your own with `smartbrush serve`" in said
    assert "accepted" not in other_user.last_log


def test_another_users_daemon_on_a_tcp_port_is_named(other_user, own_runtime_dir, tiny_model_dir):
    """Where the other user's daemon listens on loopback TCP (the old default, anyone can connect),
    its hello says who runs it: the client refuses to send it a fill, the CLI says why."""
    model = shutil.copytree(tiny_model_dir, other_user.base / "model-tcp")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with others_daemon(other_user, str(model), "--endpoint", endpoint) as theirs:
        assert theirs == endpoint
        with Client(endpoint, timeout=30) as client, pytest.raises(NotYourDaemon) as refused:
            client.fill(box_request())
        assert f"it runs as user {other_user.name}" in str(refused.value)
        info = subprocess.run(
            [*CLI_COMMAND, "info", "--endpoint", endpoint],
            env=daemon_env(own_runtime_dir), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert info.returncode == 2
        assert f"is not yours (it runs as user {other_user.name}" in info.stderr
        assert len(info.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert "accepted" not in other_user.last_log


OTHER_USERS_CLIENT = """
import socket, sys
from smartbrush.wire.client import Client
from smartbrush.wire.editing import user_message
endpoint = sys.argv[1]
probe = socket.socket(socket.AF_UNIX)
try:
    probe.connect(endpoint.removeprefix("ipc://"))
    print("raw connect: connected")
except OSError as error:
    print(f"raw connect: {type(error).__name__}")
try:
    with Client(endpoint, timeout=2) as client:
        client.fill({"image": {"width": 8, "height": 8, "mode": "L", "data": bytes(64)},
                     "box": [0, 0, 4, 4], "prompt": "x", "steps": 1})
    print("fill: done")
except Exception as error:
    print("fill:", user_message(error, endpoint))
"""


def test_another_user_cannot_queue_work_on_this_users_daemon(
    other_user, own_runtime_dir, tiny_pixel_pipeline
):
    own_runtime_dir.chmod(0o700)
    with running_daemon(tiny_pixel_pipeline, endpoint=None) as mine:
        done = subprocess.run(
            [*other_user.as_user, other_user.python, "-c", OTHER_USERS_CLIENT, mine.endpoint],
            cwd=other_user.base, capture_output=True, text=True, timeout=60,
            env={"PATH": os.environ["PATH"], "HOME": str(other_user.home),
                 "PYTHONPATH": str(other_user.base / "client")},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        # the kernel keeps it out of the folder, and its client says why instead of waiting
        assert "raw connect: PermissionError" in done.stdout
        assert "fill: The daemon at" in done.stdout
        assert "is not yours (its socket is in a folder you cannot enter" in done.stdout
        status = mine.status()
        assert (status["queued"], status["running"], status["jobs_done"]) == ([], [], 0)

"""Start daemon: run the configured command in the background and wait until the daemon answers.

No Qt here: the docker runs `wait_until_ready` on a worker thread and shows what it returns.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time

from smartbrush.wire.client import Client, DaemonUnavailable
from smartbrush.wire.editing import user_message

START_WAIT_SECONDS = 300.0  # loading a big model on a slow disk takes a while
LOG = os.path.join(tempfile.gettempdir(), "smartbrush-daemon-from-krita.log")


STARTED: list[subprocess.Popen] = []  # what start() ran, for stop_all() when Krita quits


def start(command: str) -> subprocess.Popen:
    """Run `command` detached, output to LOG. Raises OSError or ValueError (a bad command line)."""
    with open(LOG, "ab") as output:
        process = subprocess.Popen(
            shlex.split(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # not killed by a Ctrl+C in Krita's terminal; stop_all() is
        )
    STARTED.append(process)
    return process


def stop(process: subprocess.Popen) -> bool:
    """SIGTERM (the daemon cancels its jobs and exits at once); False if it had already exited."""
    if process in STARTED:
        STARTED.remove(process)
    if process.poll() is not None:
        return False
    process.terminate()
    return True


def ended(process: subprocess.Popen) -> str | None:
    """None while it runs; once it has exited (killed from outside, say), what to tell the user.
    Asking reaps it: no zombie is left under Krita."""
    code = process.poll()
    if code is None:
        return None
    if process in STARTED:
        STARTED.remove(process)
    how = f"was killed (signal {-code})" if code < 0 else f"exited (code {code})"
    return f"The daemon SmartBrush started {how}. Press Start daemon to start it again."


def stop_all() -> None:
    """Stop every daemon this plugin started: connected to Krita's quit (the dockers are gone by
    then, so this lives here, not in a docker)."""
    for process in list(STARTED):
        stop(process)


def wait_until_ready(
    process: subprocess.Popen, endpoint: str | None, client_name: str
) -> tuple[bool, str]:
    """(True, "ready" message) once the daemon says hello; (False, why) when it exits or is slow."""
    deadline = time.monotonic() + START_WAIT_SECONDS
    with Client(endpoint, timeout=2.0, client_name=client_name) as client:
        while time.monotonic() < deadline:
            try:
                info = client.hello()
            except DaemonUnavailable:
                if process.poll() is not None:
                    return False, (
                        f"The daemon command exited with code {process.returncode}: "
                        f"{last_line(LOG)} (log: {LOG})"
                    )
                continue
            except Exception as error:  # noqa: BLE001 (said in the docker instead)
                return False, user_message(error)
            loading = (
                " (it is still loading the model: the fill waits for it)"
                if info.get("loading")
                else ""
            )
            return True, f"The daemon is ready (model {info.get('model', '?')}){loading}."
    return False, f"The daemon did not answer within {START_WAIT_SECONDS:g} s (log: {LOG})."


def last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            lines = [line.strip() for line in log if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"

"""Cancels the daemon job when GIMP kills the plug-in mid-fill (GIMP's way of cancelling)."""

import os
import subprocess
import sys

VENDOR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
# Run in a child process while a fill runs. GIMP cancels a plug-in's progress by killing the
# plug-in outright (SIGKILL), so the plug-in cannot tell the daemon itself: this watchdog sees its
# stdin close without the word "done" and cancels the job, so the daemon stops working for nothing.
WATCHDOG_SCRIPT = """
import sys
from smartbrush.wire.client import Client
endpoint, job_id = sys.argv[1:3]
if sys.stdin.read() != "done":
    try:
        Client(endpoint, timeout=5.0).cancel(job_id)
    except Exception:
        pass
"""


class CancelWatchdog:
    """Cancels the daemon job if this process dies mid-fill (how GIMP cancels a plug-in)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.process = None

    def watch(self, job_id):
        if self.process is not None:
            return
        env = dict(os.environ, PYTHONPATH=VENDOR_DIR)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WATCHDOG_SCRIPT, self.endpoint, job_id],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # outlives us when GIMP kills the plug-in
            )
        except OSError:
            self.process = None  # no watchdog: a GIMP-side cancel then only drops the result

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.process is not None and self.process.stdin is not None:
            # Finished (or failed) normally: nothing to cancel. Closing without "done" cancels.
            word = b"done" if exc_info[0] is None else b"cancel"
            try:
                self.process.stdin.write(word)
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return False

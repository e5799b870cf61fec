"""How fast the daemon starts and stops, and whether a big PNG stalls it (issue: start and stop fast).

Each round starts `python -m smartbrushd --model M` as its own process for the demo and the
shapes model in turn and reports, from the moment the process is started:
- hello: the first answer (the daemon listens before it loads the model);
- loaded: info says the model is loaded;
- first fill: a 20-step fill sent right after hello comes back (it waits in the queue while loading);
- SIGTERM idle / mid-fill: from the signal to the process's exit, idle and during a 200-step fill.
Then, on one daemon, the longest hello round trip from a second client while a 16-megapixel PNG fill
(4096 x 4096, sent by a third process) arrives and runs, beside the round trip when nothing else
happens; and the longest time the ROUTER thread is busy then, beside the PNG's decode time: a decode
on the ROUTER thread would stall every client for that long.

    python benchmarks/daemon_start_stop.py [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image

from smartbrush.testing import free_port, save_tiny_pipeline
from smartbrush.wire import protocol
from smartbrush.wire.client import Client, DaemonUnavailable

MODELS = ("demo", "shapes")
GOALS = {"hello": 3.0, "sigterm_idle": 1.0, "sigterm_mid_fill": 1.0}


def start(model: str, threads: int) -> tuple[subprocess.Popen, str, float]:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "smartbrushd", "--model", model, "--device", "cpu",
         "--threads", str(threads), "--endpoint", endpoint, "--log-file", "-"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    return process, endpoint, started


def wait_for_hello(endpoint: str) -> None:
    with Client(endpoint, timeout=0.2) as client:
        while True:
            try:
                client.hello()
                return
            except DaemonUnavailable:
                continue


def request(steps: int, size: int = 256) -> dict:
    image = Image.new("RGB", (size, size), (90, 140, 200))
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return {
        "image": protocol.raw_image(size, size, "RGB", image.tobytes()),
        "mask": protocol.raw_image(size, size, "L", mask.tobytes()),
        "prompt": "a red apple",
        "steps": steps,
        "seed": 1,
    }


def stop_time(process: subprocess.Popen) -> float:
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return time.monotonic() - signalled


def one_round(model: str, threads: int) -> dict[str, float]:
    times = {}
    process, endpoint, started = start(model, threads)
    wait_for_hello(endpoint)
    times["hello"] = time.monotonic() - started
    with Client(endpoint, timeout=120) as client:
        loaded = threading.Event()

        def watch_loading() -> None:
            with Client(endpoint, timeout=5) as watcher:
                while watcher.info()["loading"]:
                    time.sleep(0.02)
            times["loaded"] = time.monotonic() - started
            loaded.set()

        threading.Thread(target=watch_loading, daemon=True).start()
        client.fill(request(20))
        times["first_fill"] = time.monotonic() - started
        loaded.wait(10)
    times["sigterm_idle"] = stop_time(process)

    process, endpoint, _ = start(model, threads)
    wait_for_hello(endpoint)
    running = threading.Event()

    def long_fill() -> None:
        with Client(endpoint, timeout=120) as client:
            try:
                client.fill(
                    request(200),
                    on_progress=lambda m: running.set() if m["type"] == "progress" else None,
                )
            except Exception:
                pass  # the daemon goes away mid-fill: that is the point

    threading.Thread(target=long_fill, daemon=True).start()
    running.wait(120)
    times["sigterm_mid_fill"] = stop_time(process)
    return times


BIG_PNG_SENDER = """
import io, sys
import numpy as np
from PIL import Image
from smartbrush.wire.client import Client
side = 4096
rng = np.random.default_rng(0)
png = io.BytesIO()
Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(png, format="PNG")
print(len(png.getvalue()), flush=True)  # ready: the probe starts timing
sys.stdin.readline()
with Client(sys.argv[1], timeout=120) as client:
    client.fill({"image": {"png": png.getvalue()}, "box": [1000, 1000, 600, 600],
                 "prompt": "a ball", "steps": 1, "seed": 1})
"""


def big_png_sender(endpoint: str) -> subprocess.Popen:
    """A process that has made the 16 MP PNG and sends its fill when told to (`go`)."""
    sender = subprocess.Popen(
        [sys.executable, "-c", BIG_PNG_SENDER, endpoint],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sender.stdout is not None
    sender.stdout.readline()  # the PNG is ready
    return sender


def go(sender: subprocess.Popen) -> None:
    assert sender.stdin is not None
    sender.stdin.write("go\n")
    sender.stdin.flush()


def png_stall(threads: int) -> tuple[float, float, tuple[float, float]]:
    """(typical hello round trip, longest one while a 16 MP PNG fill (sent by another process)
    arrives and runs, router_busy()) on the tiny random model (smartbrush.testing), saved to a folder."""
    with tempfile.TemporaryDirectory(prefix="smartbrush-tiny-") as folder:
        process, endpoint, _ = start(str(save_tiny_pipeline(folder)), threads)
        return _png_stall(process, endpoint)


def _png_stall(
    process: subprocess.Popen, endpoint: str
) -> tuple[float, float, tuple[float, float]]:
    wait_for_hello(endpoint)
    sender = big_png_sender(endpoint)
    with Client(endpoint, timeout=30) as probe:
        quiet = []
        for _ in range(20):
            t = time.monotonic()
            probe.hello()
            quiet.append(time.monotonic() - t)
        go(sender)
        longest = 0.0
        while sender.poll() is None:
            t = time.monotonic()
            probe.hello()
            longest = max(longest, time.monotonic() - t)
    stop_time(process)
    return statistics.median(quiet), longest, router_busy()


def router_busy() -> tuple[float, float]:
    """(longest time the ROUTER thread spends on one batch of messages while the 16 MP PNG fill
    arrives, the PNG's decode time): the daemon in this process, its request handler timed."""
    from smartbrushd import server

    from smartbrush.runtime import images
    from smartbrush.testing import tiny_pipeline

    busy: list[float] = []
    handle = server.Daemon._handle_requests

    def timed(self: server.Daemon, router: object, budget: int = 256) -> None:
        started = time.monotonic()
        handle(self, router, budget)  # type: ignore[arg-type]
        busy.append(time.monotonic() - started)

    server.Daemon._handle_requests = timed  # type: ignore[method-assign]
    daemon = server.Daemon(tiny_pipeline(), "tcp://127.0.0.1:*", model_name="tiny")
    endpoint = daemon.bind()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    sender = big_png_sender(endpoint)
    busy.clear()
    go(sender)
    sender.wait()
    daemon.stop()
    thread.join(30)
    server.Daemon._handle_requests = handle  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (4096, 4096, 3), dtype=np.uint8))
    png = io.BytesIO()
    noisy.save(png, format="PNG")
    t = time.monotonic()
    images.to_pil({"png": png.getvalue()}, "RGB")  # what a decode on the ROUTER thread stalls for
    return max(busy), time.monotonic() - t


def main() -> None:
    # __doc__ is None under python -OO
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {model: [] for model in MODELS}
    for _ in range(args.rounds):
        for model in MODELS:  # interleaved: both see the same machine load
            results[model].append(one_round(model, args.threads))
    print(f"median of {args.rounds} rounds, seconds ({args.threads} torch threads, CPU)")
    keys = ("hello", "loaded", "first_fill", "sigterm_idle", "sigterm_mid_fill")
    print(f"{'model':<8}" + "".join(f"{key:>18}" for key in keys))
    for model in MODELS:
        row = [statistics.median(r[key] for r in results[model]) for key in keys]
        print(f"{model:<8}" + "".join(f"{value:>18.2f}" for value in row))
    demo = {key: statistics.median(r[key] for r in results["demo"]) for key in keys}
    for key, goal in GOALS.items():
        verdict = "met" if demo[key] <= goal else "NOT met"
        print(f"goal demo {key} <= {goal:g} s: {demo[key]:.2f} s, {verdict}")
    print(f"demo first fill / hello: {demo['first_fill'] / demo['hello']:.1f}x")
    quiet, longest, (busy, decode) = png_stall(args.threads)
    print(
        f"hello round trip: {quiet * 1000:.1f} ms idle, longest {longest * 1000:.0f} ms while a "
        f"16 MP PNG fill arrives and runs (the daemon's threads share 2 cores and the GIL)"
    )
    print(
        f"ROUTER thread: longest {busy * 1000:.0f} ms on one batch of messages then; decoding "
        f"that PNG takes {decode * 1000:.0f} ms, which it no longer does ({decode / busy:.1f}x)"
    )


if __name__ == "__main__":
    main()

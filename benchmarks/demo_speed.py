"""A 20-step fill through the daemon: the demo model (latent, 128 px) beside the shapes model (32 px).

Both daemons run as their own processes (`python -m smartbrushd`) on loopback with the same thread count; the
same request (a 384 x 256 photo-sized image, an exact mask of an object, fixed seed) goes to each in
turn, round after round, so both see the same machine load. Reported: the client's wall time per fill
(median and min over the rounds), the pipeline's own time inside it, and demo / shapes.

    python benchmarks/demo_speed.py [--steps 20] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from smartbrush.commands.demo import ASSETS, photo_cases
from smartbrush.testing import free_port
from smartbrush.wire import protocol
from smartbrush.wire.client import Client

MODELS = ("demo", "shapes")


def main() -> None:
    # __doc__ is None under python -OO
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    case = photo_cases()["fills"][0]
    image = Image.open(ASSETS / case["image"]).convert("RGB")
    mask = Image.open(ASSETS / case["mask"]).convert("L")
    request = {
        "image": protocol.raw_image(image.width, image.height, "RGB", image.tobytes()),
        "mask": protocol.raw_image(mask.width, mask.height, "L", np.asarray(mask).tobytes()),
        "prompt": case["prompt"],
        "precision": 0.0,
        "steps": args.steps,
        "seed": 1,
    }
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    daemons, clients = [], {}
    for model in MODELS:
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        daemons.append(subprocess.Popen(
            [sys.executable, "-m", "smartbrushd", "--model", model, "--device", "cpu", "--dtype", "float32",
             "--threads", str(args.threads), "--endpoint", endpoint, "--log-file", "-",
             "--log-level", "warning"],
            env=env,
        ))  # fmt: skip
        clients[model] = Client(endpoint, timeout=600)
    try:
        for client in clients.values():
            deadline = time.monotonic() + 300
            while True:
                try:
                    client.hello()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            client.fill(request)  # warm-up
        wall = {m: [] for m in MODELS}
        run = {m: [] for m in MODELS}
        for _ in range(args.rounds):
            for model, client in clients.items():
                start = time.perf_counter()
                result = client.fill(request)
                wall[model].append(time.perf_counter() - start)
                run[model].append(result["timings"]["run"])
    finally:
        for client in clients.values():
            client.close()
        for daemon in daemons:
            daemon.terminate()
            daemon.wait()

    print(
        f"{args.steps}-step fill of a {image.width}x{image.height} image through the daemon, "
        f"{args.rounds} rounds, {args.threads} torch threads"
    )
    print("| model | wall per fill, median (min) | pipeline inside it, median |")
    print("|---|---|---|")
    for model in MODELS:
        print(
            f"| {model} | {statistics.median(wall[model]):.2f} s ({min(wall[model]):.2f} s) "
            f"| {statistics.median(run[model]):.2f} s |"
        )
    ratio = statistics.median(wall["demo"]) / statistics.median(wall["shapes"])
    print(f"demo / shapes: {ratio:.2f}x")


if __name__ == "__main__":
    main()

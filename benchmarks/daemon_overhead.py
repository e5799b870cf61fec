"""What the daemon costs: the same fill in-process, through smartbrushd on loopback, and over HTTP+base64 PNG.

For each image size the same request (box in the middle, fixed seed) runs
  - in-process: `pipeline(...)` on PIL images, the floor;
  - daemon: `Client.fill()` against a `Daemon` on tcp://127.0.0.1 (raw 8-bit buffers in msgpack, what
    the editor plugins send); the overhead is the client's wall time minus the pipeline time the daemon
    measured for that very call (`timings["run"]`), so the model's own jitter does not enter it;
  - HTTP: the same payload as JSON with base64 PNGs to an http.server on loopback that decodes, runs the
    pipeline and answers with base64 PNGs (how ComfyUI-style backends do it); overhead measured the same way.
  - floor: a bare ZeroMQ round trip carrying the same number of bytes (request and reply) on the same
    kind of endpoint, with no msgpack, no checks and no pixels touched: what the transport alone costs.
The median over the rounds is reported. Model: the demo model, or `--model tiny`: the tiny random test model
(smartbrush.testing), saved to a temporary folder that the daemon and the HTTP server load.

    python benchmarks/daemon_overhead.py [--sizes 512 1024] [--steps 20] [--rounds 5] [--model demo|tiny]
                                         [--endpoint tcp://127.0.0.1:* | ipc:///tmp/smartbrush-bench]
"""

from __future__ import annotations

import argparse
import base64
import http.server
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import torch
import zmq
from PIL import Image

from smartbrush.method.pipeline import SmartBrushPipeline
from smartbrush.runtime.loading import load_pipeline
from smartbrush.testing import free_port, save_tiny_pipeline
from smartbrush.wire import protocol
from smartbrush.wire.client import Client


def scene(size: int) -> Image.Image:
    """A photo-like test image: smooth gradients plus sensor-like noise (PNG cannot squeeze it to nothing)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([200 * x + 30, 180 * y + 40, 120 * (1 - x * y) + 60], axis=-1)
    noisy = base + rng.normal(0, 6, base.shape)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB")


def png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def run_pipeline(pipeline, image: Image.Image, mask: Image.Image, steps: int, prompt: str):
    return pipeline(
        image=image,
        mask=mask,
        prompt=prompt,
        precision=1.0,
        num_inference_steps=steps,
        seed=1,
    )


class HttpBackend(http.server.BaseHTTPRequestHandler):
    """POST /fill with JSON {image, mask: base64 PNG, prompt, steps}; answers base64 PNGs + run time."""

    pipeline: SmartBrushPipeline | None = None  # set by serve_http before the server starts
    steps = 20

    def do_GET(self) -> None:  # noqa: N802 (/ready: polled until the model is loaded)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        image = Image.open(io.BytesIO(base64.b64decode(body["image"]))).convert("RGB")
        mask = Image.open(io.BytesIO(base64.b64decode(body["mask"]))).convert("L")
        start = time.perf_counter()
        output = run_pipeline(self.pipeline, image, mask, self.steps, body["prompt"])
        run = time.perf_counter() - start
        reply = json.dumps(
            {
                "images": [png_b64(output.images[0])],
                "alphas": [png_b64(output.alphas[0])],
                "masks": [png_b64(output.masks[0])],
                "run": run,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def zmq_round_trip(endpoint: str, request_bytes: int, reply_bytes: int, rounds: int) -> float:
    """Median time of a bare DEALER -> ROUTER -> DEALER round trip with payloads of these sizes."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.bind(endpoint.replace("smartbrush-bench", "smartbrush-floor"))
    dealer = context.socket(zmq.DEALER)
    dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))
    request, reply = bytes(request_bytes), bytes(reply_bytes)

    def echo() -> None:
        for _ in range(rounds + 1):
            identity, _ = router.recv_multipart(copy=False)
            router.send_multipart([identity, reply], copy=False)

    thread = threading.Thread(target=echo)
    thread.start()
    times = []
    for _ in range(rounds + 1):
        start = time.perf_counter()
        dealer.send(request, copy=False)
        dealer.recv(copy=False)
        times.append(time.perf_counter() - start)
    thread.join()
    dealer.close(linger=0)
    router.close(linger=0)
    return statistics.median(times[1:])


def wait_for(probe, name: str, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            probe()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} did not start within {limit} s") from None
            time.sleep(0.5)


def serve_http(port: int, model: str, threads: int, steps: int) -> None:
    """The HTTP+base64 PNG contender, in its own process (started with multiprocessing)."""
    torch.set_num_threads(threads)
    pipeline = load_pipeline(model, "cpu", "float32")
    pipeline.set_progress_bar_config(disable=True)
    HttpBackend.pipeline = pipeline
    HttpBackend.steps = steps
    http.server.ThreadingHTTPServer(("127.0.0.1", port), HttpBackend).serve_forever()


def main() -> None:
    # __doc__ is None under python -OO
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="demo", help='a model; "tiny": a random test model')
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="smartbrush-tiny-") as folder:
        if args.model == "tiny":  # not a model name: a folder holding the random test model
            args.model = str(save_tiny_pipeline(folder))
        measure(args)


def measure(args: argparse.Namespace) -> None:
    pipeline = load_pipeline(args.model, "cpu", "float32")
    pipeline.set_progress_bar_config(disable=True)
    # the daemon and the HTTP server run in their own processes, as they do for an editor
    endpoint = args.endpoint
    if endpoint.startswith("tcp://") and endpoint.endswith(":*"):
        endpoint = f"{endpoint[:-2]}:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "smartbrushd", "--model", args.model, "--device", "cpu", "--dtype",
         "float32", "--endpoint", endpoint, "--log-file", "-", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    http_port = free_port()
    http_process = multiprocessing.get_context("spawn").Process(
        target=serve_http, args=(http_port, args.model, args.threads, args.steps), daemon=True
    )
    http_process.start()
    http_url = f"http://127.0.0.1:{http_port}/fill"
    client = Client(endpoint, timeout=600)
    wait_for(lambda: client.hello(), "daemon")
    wait_for(
        lambda: urllib.request.urlopen(http_url.replace("/fill", "/ready")).read(), "HTTP server"
    )
    prompt = "a red ball"

    print(
        f"model {args.model}, {args.steps} steps, {args.rounds} rounds, torch threads {args.threads}, "
        f"daemon on {endpoint}"
    )
    print(
        "| image | in-process fill | daemon overhead, median (min) | share | ZeroMQ floor | HTTP+base64 PNG overhead, median (min) | share | daemon request / reply | HTTP request / reply |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        image = scene(size)
        box = [size * 3 // 8, size * 3 // 8, size // 4, size // 4]
        mask = Image.new("L", image.size, 0)
        mask.paste(255, (box[0], box[1], box[0] + box[2], box[1] + box[3]))
        request = {
            "image": protocol.raw_image(size, size, "RGB", image.tobytes()),
            "box": box,
            "prompt": prompt,
            "precision": 1.0,
            "steps": args.steps,
            "seed": 1,
        }
        http_body = json.dumps(
            {"image": png_b64(image), "mask": png_b64(mask), "prompt": prompt}
        ).encode()
        local_times, daemon_over, http_over = [], [], []
        reply_bytes = http_reply_bytes = 0
        run_pipeline(pipeline, image, mask, args.steps, prompt)  # warm-up
        client.fill(request)
        for _ in range(args.rounds):
            start = time.perf_counter()
            run_pipeline(pipeline, image, mask, args.steps, prompt)
            local_times.append(time.perf_counter() - start)

            start = time.perf_counter()
            result = client.fill(request)
            daemon_over.append(time.perf_counter() - start - result["timings"]["run"])
            reply_bytes = len(protocol.encode(result))

            start = time.perf_counter()
            post = urllib.request.Request(
                http_url, data=http_body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(post) as response:
                body = response.read()
            http_over.append(time.perf_counter() - start - json.loads(body)["run"])
            http_reply_bytes = len(body)
        fill = statistics.median(local_times)
        d, h = statistics.median(daemon_over), statistics.median(http_over)
        request_bytes = len(protocol.encode(protocol.validate_fill({"type": "fill", **request})))
        floor = zmq_round_trip(args.endpoint, request_bytes, reply_bytes, args.rounds)
        print(
            f"| {size}x{size} | {fill * 1000:.0f} ms | {d * 1000:.1f} ({min(daemon_over) * 1000:.1f}) ms "
            f"| {100 * d / fill:.2f} % | {floor * 1000:.1f} ms "
            f"| {h * 1000:.1f} ({min(http_over) * 1000:.1f}) ms | {100 * h / fill:.2f} % | {request_bytes / 2**20:.2f} / {reply_bytes / 2**20:.2f} MiB "
            f"| {len(http_body) / 2**20:.2f} / {http_reply_bytes / 2**20:.2f} MiB |"
        )
    client.close()
    daemon.terminate()
    daemon.wait()
    http_process.terminate()


if __name__ == "__main__":
    main()

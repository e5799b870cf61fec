"""Fuzz: malformed requests against a real daemon; each gets an error, the daemon keeps serving and
its memory stays bounded. SMARTBRUSH_FUZZ_N (default 10000) sets the number of requests.

The daemon runs in this process (a thread, as in the other tests), so the memory measured is this
process's: the fuzzer's own allocations are small and transient, a leak per request would show."""

from __future__ import annotations

import io
import math
import os
import random

import msgpack
import psutil
import pytest
import zmq
from daemon_helpers import (
    box_request,
    ellipse_mask,
    running_daemon,
    sample_image,
)
from PIL import Image

from smartbrush.wire import protocol
from smartbrush.wire.client import Client

FUZZ_N = int(os.environ.get("SMARTBRUSH_FUZZ_N", "10000"))
WINDOW = 200  # requests in flight at once
RSS_GROWTH_LIMIT = 64 << 20


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


JUNK_VALUES = [
    None,
    True,
    -1,
    0,
    2**64 - 1,
    -(2**63),
    1.5,
    math.nan,
    math.inf,
    "",
    "x" * 3000,
    b"\x00",
    [],
    {},
    [1, 2],
    {"a": 1},
]


IMAGE, MASK, NARROW_MASK = sample_image(), ellipse_mask(), ellipse_mask(63, 48)


def good_fill(rng: random.Random) -> dict:
    request = {"image": dict(IMAGE), "box": [16, 12, 24, 20], "prompt": "a red ball", "steps": 1}
    if rng.random() < 0.5:
        request.pop("box")
        request["mask"] = dict(MASK)
    return request


def malformed(rng: random.Random, png: bytes) -> list[bytes]:
    """One malformed request, as the frames to send. Every kind below must draw an error reply."""
    kind = rng.randrange(14)
    while True:
        frames = candidate(rng, png, kind)
        if kind not in CAUGHT_BY_VALIDATION:
            return frames
        try:  # random junk is sometimes valid by chance (a seed of 0): draw again
            protocol.validate_fill(protocol.decode(frames[0]))
        except protocol.ProtocolError:
            return frames


CAUGHT_BY_VALIDATION = {2, 3, 4, 5, 8, 9, 11}  # the others fail only when decoded by the daemon


def candidate(rng: random.Random, png: bytes, kind: int) -> list[bytes]:
    if kind == 0:  # random bytes that are not a valid message map
        while True:
            data = rng.randbytes(rng.randrange(0, 64))
            try:
                protocol.decode(data)
            except protocol.ProtocolError:
                return [data]
    if kind == 1:  # valid msgpack, not a map, or a map without a usable type
        value = rng.choice([*JUNK_VALUES, {"type": 3}, {"type": "destroy"}, {"nope": "fill"}])
        return [msgpack.packb(value, use_bin_type=True)]
    request = good_fill(rng)
    if kind == 2:  # missing required fields
        for key in rng.sample(
            ["image", "prompt", "box" if "box" in request else "mask"], rng.randrange(1, 3)
        ):
            request.pop(key)
    elif kind == 3:  # wrong types or values
        key = rng.choice(
            [
                "image",
                "prompt",
                "precision",
                "steps",
                "guidance",
                "seed",
                "variations",
                "preview_interval",
                "negative_prompt",
                "box",
                "mask",
            ]
        )
        request[key] = rng.choice(
            [value for value in JUNK_VALUES if value is not None and value != ""] + [-5, 10**9]
        )
        if key in ("box", "mask") and not isinstance(request[key], (list, dict)):
            request.pop("box" if key == "mask" else "mask", None)
    elif kind == 4:  # huge declared sizes
        side = rng.choice([1 << 13, 1 << 16, 1 << 31, 2**64 - 1])
        request["image"] = {
            "width": side,
            "height": rng.choice([side, 4097]),
            "mode": "RGB",
            "data": b"\x00" * rng.randrange(64),
        }
    elif kind == 5:  # pixel buffer of the wrong length, or zero/negative sizes
        image = request["image"]
        image.update(
            rng.choice(
                [{"data": image["data"][:-3]}, {"width": 0}, {"height": -4}, {"mode": "CMYK"}]
            )
        )
    elif kind == 6:  # corrupt PNGs: truncated, garbage after a valid header, bomb-sized header
        choice = rng.randrange(3)
        if choice == 0:
            data = png[: rng.randrange(8, len(png) // 2)]  # cut well inside the pixel data
        elif choice == 1:
            data = png[:33] + rng.randbytes(rng.randrange(1, 200))
        else:
            data = png[:16] + (200_000).to_bytes(4, "big") * 2 + png[24:]
        request["image"] = {"png": data}
    elif kind == 7:  # mismatched mask size (raw or as PNG)
        request.pop("box", None)
        request["mask"] = rng.choice([NARROW_MASK, {"png": png_bytes(32, 32)}])
    elif kind == 8:  # NaN / out-of-range precision and friends
        request[rng.choice(["precision", "guidance"])] = rng.choice(
            [math.nan, -math.inf, math.inf, -0.5, 70.0]
        )
    elif kind == 9:  # both or neither of mask and box, box outside the image
        choice = rng.randrange(3)
        if choice == 0:
            request.update(mask=ellipse_mask(), box=[0, 0, 4, 4])
        elif choice == 1:
            request.pop("mask", None)
            request.pop("box", None)
        else:
            request.pop("mask", None)
            request["box"] = [
                rng.randrange(-5, 70),
                rng.randrange(-5, 50),
                rng.randrange(-3, 80),
                99,
            ]
    elif kind == 10:  # empty mask, mask in the wrong mode
        request.pop("box", None)
        request["mask"] = rng.choice([{**MASK, "data": bytes(len(MASK["data"]))}, IMAGE])
    elif kind == 11:  # unknown fields, too many variations
        request.update(rng.choice([{"evil": b"x"}, {"variations": 99}, {"steps": 10_000}]))
    elif kind == 12:  # several frames in one message
        return [protocol.encode({"type": "fill", **request}), b"second frame"][
            : rng.randrange(2, 3)
        ] + [b""] * rng.randrange(2)
    else:  # other operations with bad arguments
        return [
            protocol.encode(
                rng.choice(
                    [
                        {"type": "cancel"},
                        {"type": "cancel", "job_id": "nope"},
                        {"type": "hello", "protocol_version": "1"},
                        {"type": "cancel", "job_id": 7},
                    ]
                )
            )
        ]
    return [protocol.encode({"type": "fill", **request})]


def rss(process: psutil.Process) -> int:
    return process.memory_info().rss


@pytest.mark.slow
def test_daemon_answers_every_malformed_request_with_an_error(tiny_pixel_pipeline):
    with running_daemon(tiny_pixel_pipeline) as daemon:
        fuzz(daemon.endpoint)


def fuzz(endpoint: str) -> None:
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    rng = random.Random(20231129)
    png = png_bytes()
    codes: dict[str, int] = {}
    try:
        process = psutil.Process()
        baseline = None
        sent = 0
        while sent < FUZZ_N:
            window = min(WINDOW, FUZZ_N - sent)
            for _ in range(window):
                socket.send_multipart(malformed(rng, png))
            finals = 0
            while finals < window:
                assert socket.poll(30_000), f"no reply after {sent} requests"
                reply = protocol.decode(socket.recv(), max_bytes=protocol.MAX_REPLY_BYTES)
                if reply["type"] in ("accepted", "queued", "progress"):
                    continue  # pixels (PNGs) are decoded on a worker: its answer is an error
                finals += 1
                assert reply["type"] == "error", reply
                assert isinstance(reply["message"], str) and reply["message"]
                codes[reply["code"]] = codes.get(reply["code"], 0) + 1
            sent += window
            if baseline is None and sent >= FUZZ_N // 5:
                baseline = rss(process)  # after warm-up: allocator pools, imported codecs
        assert not socket.poll(500), "more replies than requests"
        assert sum(codes.values()) == FUZZ_N
        assert {"bad_message", "bad_request", "bad_image", "too_large", "unknown_type"} <= set(
            codes
        )
        growth = rss(process) - (baseline or rss(process))
        print(f"fuzz: {FUZZ_N} requests, error codes {codes}, RSS growth {growth / 2**20:.1f} MiB")
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth >> 20} MiB"
        with Client(endpoint, timeout=30) as client:  # and it still does real work
            assert client.fill(box_request())["images"]
    finally:
        socket.close()

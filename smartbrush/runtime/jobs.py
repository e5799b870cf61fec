"""One fill, from a validated request to a result map: shared by the daemon's workers and `fill --local`.

accept_job() runs when a request arrives, on the daemon's ROUTER thread: the protocol's checks only
(sizes and lengths; PNGs by their header), so bad input is answered at once and nothing slow stalls
the other clients. run_job() runs on a worker: it decodes the images (a 16 MP PNG takes a while),
runs the pipeline and encodes the result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from smartbrush.runtime import images
from smartbrush.wire import protocol

StepCallback = Callable[[int, int, Image.Image | None], None]  # (step, total, preview or None)


@dataclass(eq=False)  # jobs compare by identity (queue removal), never by their pixels
class FillJob:
    """A validated fill waiting for (or running on) a worker; its images are decoded there."""

    request: dict[str, Any]  # the normalised request (protocol.validate_fill), pixel data dropped
    source: dict[str, Any]  # the wire images: "image" and "mask" (None for a box)
    job_id: str = ""
    identity: bytes = b""  # the ROUTER identity of the client that sent it
    sequence: int = 0  # acceptance order
    accepted_at: float = field(default_factory=time.monotonic)
    decode_seconds: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    step: int = 0
    running: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image, known before decoding (a PNG's from its header)."""
        return self.source["image"]["width"], self.source["image"]["height"]

    def decode(self) -> tuple[Image.Image, Image.Image]:
        """(RGB image, L mask); raises protocol.ProtocolError for pixels that do not decode."""
        start = time.perf_counter()
        image = images.to_pil(self.source["image"], "RGB")
        if self.request["box"] is not None:
            mask = images.rectangle_mask(self.request["box"], image.width, image.height)
        else:
            mask = images.to_pil(self.source["mask"], "L")
            if mask.size != image.size:  # a PNG's size is only checked once decoded
                raise protocol.ProtocolError(
                    protocol.BAD_REQUEST,
                    f"mask is {mask.width}x{mask.height} but image is {image.width}x{image.height}",
                )
        self.decode_seconds = time.perf_counter() - start
        return image, mask


def accept_job(request: dict[str, Any]) -> FillJob:
    """Validate a fill request (no decoding): the one check of what arrives, for the daemon and for
    `fill --local`. Raises protocol.ProtocolError for bad input."""
    request = protocol.validate_fill(request)
    protocol.check_mask_selected(request["mask"])  # raw pixels; a PNG mask: the pipeline's check
    source = {"image": request["image"], "mask": request["mask"]}
    slim = {key: value for key, value in request.items() if key not in ("image", "mask")}
    return FillJob(request=slim, source=source)


def run_job(pipeline: Any, job: FillJob, on_step: StepCallback | None = None) -> dict[str, Any]:
    """Run the pipeline for one job; returns the result fields (images, alphas, masks, seeds, ...).

    Raises smartbrush.method.pipeline.GenerationCancelled when job.cancel is set (checked after every step).
    """
    from smartbrush.method.pipeline import GenerationCancelled

    request = job.request
    total = request["steps"]
    interval = request["preview_interval"]

    def step_end(pipe: Any, step_index: int, timestep: Any, callback_kwargs: dict) -> dict:
        if job.cancel.is_set():
            raise GenerationCancelled(f"job {job.job_id} cancelled")
        job.step = step_index + 1
        if on_step is not None:
            wants_preview = interval > 0 and (job.step % interval == 0 or job.step == total)
            preview = pipe.preview(callback_kwargs["latents"]) if wants_preview else None
            on_step(job.step, total, preview)
        return callback_kwargs

    if job.cancel.is_set():
        raise GenerationCancelled(f"job {job.job_id} cancelled")
    started_at = time.monotonic()
    image, mask = job.decode()
    start = time.perf_counter()
    output = pipeline(
        image=image,
        mask=mask,
        prompt=request["prompt"],
        negative_prompt=request["negative_prompt"],
        precision=request["precision"],  # "auto" too: the pipeline resolves it (a box gives 1.0)
        num_inference_steps=total,
        guidance_scale=request["guidance"],
        seed=request["seed"],
        num_images_per_prompt=request["variations"],
        detail=request["detail"],
        callback_on_step_end=step_end,
    )
    run_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = {
        "images": [images.from_pil(image, "RGB") for image in output.images],
        "alphas": [images.from_pil(alpha, "L") for alpha in output.alphas],
        "masks": [images.from_pil(mask, "L") for mask in output.masks],
        "seeds": [int(seed) for seed in output.seeds],
        "precision": float(output.precision),
        "resolution": getattr(pipeline, "resolution", None),  # what the model works at
    }
    result["timings"] = {
        "decode": job.decode_seconds,
        "queued": max(0.0, started_at - job.accepted_at),
        "run": run_seconds,
        "encode": time.perf_counter() - start,
    }
    return result

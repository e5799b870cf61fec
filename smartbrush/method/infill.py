"""Removal at the photo's own resolution: the hole filled from what surrounds it, without a model.

PatchMatch (patchmatch-cython) copies the photo's own texture into the hole, but alone it also copies
distinct nearby structure (an edge, a rim) and can shift the tone; OpenCV's Telea continues the
border's colours smoothly but is a smear. The fill takes the low frequencies of Telea's fill and the
high frequencies of PatchMatch's, attenuated. Chosen by measurement against PatchMatch, Telea, the blur
fill and the demo model (alone and refining a PatchMatch start) on held-out photos and scenes:
benchmarks/removal_engines.py, docs/removal-engines.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from smartbrush.method.masks import blur_fill, bounding_box

CONTEXT = 0.5  # the crop it works on: the hole's box grown by half its larger side (at least 32 px)
DETAIL_SIGMA = 1 / 16  # the low/high split: a Gaussian of sigma = the hole's larger side / 16
DETAIL_GAIN = 0.7  # PatchMatch's detail, attenuated: most of the texture for about 1 dB less PSNR
TELEA_RADIUS = 5


def infill(image: np.ndarray, hole: np.ndarray, seed: int = 0, tone: str = "telea") -> np.ndarray:
    """`image` (H x W x 3 uint8) with the pixels where `hole` is true filled from their surroundings.

    tone: the smooth fill whose low frequencies it keeps: "telea" (continues the border's colours;
    the default, measured best on photos) or "blur" (masks.blur_fill: a wider average).

    Only a crop around the hole is read, so the time follows the hole's size, not the photo's. Raises
    ValueError when nothing is left around the hole to continue."""
    bounds = bounding_box(hole)
    if bounds is None:
        return image.copy()
    if hole.all():
        raise ValueError(
            "the selection covers the whole image: there is nothing around it to continue"
        )
    x, y, width, height = bounds
    pad = max(32, round(CONTEXT * max(width, height)))
    rows = slice(max(0, y - pad), y + height + pad)
    cols = slice(max(0, x - pad), x + width + pad)
    crop, crop_hole = np.ascontiguousarray(image[rows, cols, :3]), hole[rows, cols]
    if crop_hole.all():  # the hole fills its own context: widen to the whole image
        rows, cols = slice(None), slice(None)
        crop, crop_hole = np.ascontiguousarray(image[..., :3]), hole
    filled = _detail_on_tone(crop, crop_hole, seed, max(width, height), tone)
    out = image.copy()
    out[rows, cols, :3][crop_hole] = filled[crop_hole]
    return out


@contextlib.contextmanager
def environment_kept() -> Iterator[None]:
    """os.environ as it was before the block. Importing OpenCV's GUI build (patchmatch-cython imports
    it too) writes Qt plugin and font paths and LD_LIBRARY_PATH into it: inherited by an editor
    started from this process, they make its Qt load OpenCV's Qt plugins and abort (Krita under the
    tests did). Nothing here uses OpenCV's windows."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _detail_on_tone(
    image: np.ndarray, hole: np.ndarray, seed: int, side: int, tone_fill: str
) -> np.ndarray:
    with environment_kept():
        import cv2
        import patchmatch_cython

    sigma = (max(1.0, side * DETAIL_SIGMA),) * 2 + (0,)
    if tone_fill == "telea":
        tone = cv2.inpaint(image, hole.astype(np.uint8) * 255, TELEA_RADIUS, cv2.INPAINT_TELEA)
    elif tone_fill == "blur":
        tone = blur_fill(image, hole)
    else:
        raise ValueError(f'tone must be "telea" or "blur", not {tone_fill!r}')
    texture = patchmatch_cython.inpaint_pyramid(image, hole, seed=seed % 2**32).astype(np.float32)
    detail = texture - ndimage.gaussian_filter(texture, sigma)
    mixed = ndimage.gaussian_filter(tone.astype(np.float32), sigma) + DETAIL_GAIN * detail
    return mixed.round().clip(0, 255).astype(np.uint8)

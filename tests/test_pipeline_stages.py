"""The pipeline's named stages: what __call__ is made of, what training shares, model CPU offload, the
crop padding rule and where "auto" precision is resolved."""

import inspect
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageFilter
import pytest
import torch

from smartbrush.method import masks
from smartbrush.method.pipeline import SmartBrushPipeline
from smartbrush.runtime import images
from smartbrush.runtime.jobs import accept_job, run_job
from smartbrush.testing import tiny_pipeline
from smartbrush.wire import protocol
from smartbrush.wire.editing import context_padding


def noise_image(height: int, width: int, seed: int = 0) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


def disk(height: int, width: int, cy: int, cx: int, radius: int) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    return (((y - cy) ** 2 + (x - cx) ** 2) <= radius**2).astype(np.uint8) * 255


def test_call_reads_as_stages_in_at_most_90_lines():
    lines = inspect.getsource(SmartBrushPipeline.__call__).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("def __call__"))
    assert len(lines) - start <= 90
    body = "\n".join(lines + inspect.getsource(SmartBrushPipeline.prepare_region).splitlines())
    for stage in ("check_inputs", "resolve_precision", "prepare_region", "crop_region",
                  "prepare_crop", "prepare_mask_latents", "prepare_masked_image_latents",
                  "prepare_timesteps", "prepare_start", "prepare_latents", "update_region", "paste",
                  "maybe_free_model_hooks", "_execution_device"):  # fmt: skip
        assert f"self.{stage}" in body, stage


@pytest.mark.parametrize("latent", [False, True], ids=["pixel", "latent"])
def test_model_cpu_offload_gives_the_same_pixels(latent):
    """diffusers refuses offload without an accelerator unless a device is named; device="cpu" is
    accepted (execution device cpu:0), so the hooks, _execution_device and maybe_free_model_hooks
    run for real here, only without moving weights between devices."""
    pipe = tiny_pipeline(latent=latent)  # its own copy: offload hooks stay on the pipeline
    pipe.set_progress_bar_config(disable=True)
    image, mask = noise_image(64, 64), disk(64, 64, 32, 32, 20)
    kwargs = dict(num_inference_steps=3, seed=4, num_images_per_prompt=2)
    plain = pipe(image, mask, "a red star", **kwargs)

    pipe.enable_model_cpu_offload(device="cpu")
    assert pipe._all_hooks and hasattr(pipe.unet, "_hf_hook")
    assert pipe._execution_device.type == "cpu"
    for _ in range(2):  # the hooks are re-armed at the end of each call
        offloaded = pipe(image, mask, "a red star", **kwargs)
        for a, b in zip(
            plain.images + plain.masks, offloaded.images + offloaded.masks, strict=True
        ):
            assert np.array_equal(np.asarray(a), np.asarray(b))
        assert pipe._all_hooks


def test_auto_crop_padding_is_the_editors_rule(tiny_pixel_pipeline):
    pipe = tiny_pixel_pipeline
    small = disk(200, 200, 100, 100, 5)  # 11 px: padding 32 (the old rule gave 16)
    large = disk(200, 300, 100, 150, 60)  # 121 px: padding 60
    for mask, padding in ((small, 32), (large, 60)):
        _, _, width, height = masks.bounding_box(mask >= 128)
        assert context_padding(width, height) == padding
        assert pipe.crop_region(mask, "auto") == pipe.crop_region(mask, padding)
    assert pipe.crop_region(small, "auto") != pipe.crop_region(small, 16)


def test_the_crop_holds_a_feathered_edge_whole_and_is_the_editors_context(tiny_pixel_pipeline):
    """A feather reaches past the selected (>= 128) pixels; the crop holds every non-zero pixel (the
    paste can blend all of the soft edge). The padding follows the selected part, and the rule is
    wire.editing.model_context, which the editors send."""
    from smartbrush.wire.editing import Rect, model_context

    hard = disk(240, 320, 120, 100, 40)
    feathered = np.asarray(
        PIL.Image.fromarray(hard).filter(PIL.ImageFilter.GaussianBlur(15)), dtype=np.uint8
    )
    x1, y1, x2, y2 = pipe_crop = tiny_pixel_pipeline.crop_region(feathered, "auto")
    nonzero = np.argwhere(feathered > 0)
    assert (nonzero.min(0) >= (y1, x1)).all() and (nonzero.max(0) < (y2, x2)).all()
    assert x2 - x1 == y2 - y1  # square: the model's shape
    selected, touched = (Rect(*masks.bounding_box(m)) for m in (feathered >= 128, feathered > 0))
    rect = model_context(selected, touched, 320, 240)
    assert pipe_crop == (rect.x, rect.y, rect.right, rect.bottom)


def test_a_feathered_selection_fades_the_fill_out_with_its_feather(tiny_pixel_pipeline):
    """Issue 33, item 9: the result's soft edge is the selection's. Above level 0 the coarse mask
    takes in the feather, so the paste blends on past the selected pixels' box as the feather fades,
    instead of stopping at that box in a straight line; nothing is pasted where nothing is selected."""
    hard = disk(120, 160, 60, 80, 28)
    feathered = np.asarray(
        PIL.Image.fromarray(hard).filter(PIL.ImageFilter.GaussianBlur(8)), dtype=np.uint8
    )
    x, y, width, height = masks.bounding_box(feathered >= 128)
    beyond_box = np.ones_like(feathered, bool)
    beyond_box[y : y + height, x : x + width] = False
    out = tiny_pixel_pipeline(noise_image(120, 160), feathered, "a red ball", precision=0.6,
                              seed=1, num_inference_steps=2, preserve_background=False)  # fmt: skip
    alpha = np.asarray(out.alphas[0]).astype(int)
    feather_beyond = beyond_box & (feathered > 40)
    assert (alpha[feather_beyond] > 0).mean() > 0.9  # blended on, fading with the feather
    assert (alpha <= feathered.astype(int) + 1).all() and not alpha[feathered == 0].any()


@pytest.mark.parametrize(
    "box", [[16, 12, 24, 20], [0, 0, 64, 48], [63, 47, 1, 1], [0, 10, 64, 5]], ids=str
)
def test_a_box_is_a_rectangle_mask_so_auto_gives_precision_one(box):
    assert masks.auto_precision(np.asarray(images.rectangle_mask(box, 64, 48))) == 1.0


def test_the_output_carries_the_precision_used(tiny_pixel_pipeline):
    image = noise_image(48, 64)
    rectangle = np.asarray(images.rectangle_mask([16, 12, 24, 20], 64, 48))
    sharp = disk(48, 64, 24, 32, 12)
    kwargs = dict(num_inference_steps=1, seed=0)
    assert tiny_pixel_pipeline(image, sharp, "x", precision=0.6, **kwargs).precision == 0.6
    assert tiny_pixel_pipeline(image, rectangle, "x", precision="auto", **kwargs).precision == 1.0
    assert tiny_pixel_pipeline(image, sharp, "x", precision="auto", **kwargs).precision == 0.0


class Recording:
    """The pipeline, recording the precision each call is given."""

    def __init__(self, pipe):
        self.pipe, self.config, self.given = pipe, pipe.config, []

    def __call__(self, *args, **kwargs):
        self.given.append(kwargs["precision"])
        return self.pipe(*args, **kwargs)


def test_jobs_pass_auto_through_and_report_the_pipelines_precision(tiny_pixel_pipeline):
    rng = np.random.default_rng(0)
    image = protocol.raw_image(64, 48, "RGB", rng.integers(0, 256, 64 * 48 * 3, np.uint8).tobytes())
    mask = protocol.raw_image(64, 48, "L", disk(48, 64, 24, 32, 12).tobytes())
    base = {"type": "fill", "image": image, "prompt": "a red ball", "steps": 1, "seed": 1}
    recording = Recording(tiny_pixel_pipeline)
    box = run_job(recording, accept_job({**base, "box": [16, 12, 24, 20], "precision": "auto"}))
    sharp = run_job(recording, accept_job({**base, "mask": mask, "precision": "auto"}))
    fixed = run_job(recording, accept_job({**base, "mask": mask, "precision": 0.25}))
    assert recording.given == ["auto", "auto", 0.25]
    assert (box["precision"], sharp["precision"], fixed["precision"]) == (1.0, 0.0, 0.25)


def test_training_builds_the_unet_input_with_the_pipeline_stages(tmp_path, monkeypatch):
    from smartbrush.research import training

    calls = {"mask": 0, "masked": 0, "input": 0}
    mask_latents = SmartBrushPipeline.prepare_mask_latents
    masked_image = SmartBrushPipeline.prepare_masked_image_latents
    unet_input = SmartBrushPipeline.unet_input

    def count(name, function):
        def counted(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return counted

    monkeypatch.setattr(
        SmartBrushPipeline, "prepare_mask_latents", staticmethod(count("mask", mask_latents))
    )
    monkeypatch.setattr(
        SmartBrushPipeline, "prepare_masked_image_latents", count("masked", masked_image)
    )
    monkeypatch.setattr(SmartBrushPipeline, "unet_input", staticmethod(count("input", unet_input)))
    from smartbrush.research.training_config import DEFAULTS
    from smartbrush.runtime.config import load_config

    config = load_config(
        Path(__file__).resolve().parents[1] / "configs" / "tiny.toml",
        [f"run.output_dir={tmp_path}", "train.max_steps=2", "train.checkpoint_every=0"],
        defaults=DEFAULTS,
    )
    assert training.train(config)["step"] == 2
    assert calls == {"mask": 2, "masked": 2, "input": 2}


def test_stages_keep_the_background_outside_the_region(tiny_pixel_pipeline):
    """update_region without refinement: inside m_s the step's x_t, outside x_0 noised to the next
    step, after the last step x_0 itself."""
    pipe = tiny_pixel_pipeline
    torch.manual_seed(0)
    x0, latents, noise = (torch.randn(2, 3, 8, 8) for _ in range(3))
    m_s = torch.zeros(2, 1, 8, 8)
    m_s[..., 2:6, 2:6] = 1
    timesteps = pipe.prepare_timesteps(4, "cpu")
    out, m_hat = pipe.update_region(
        latents, m_s, m_s, m_s, x0, noise, timesteps[1:2], refine=False, mask_dilation=1
    )
    noised = pipe.scheduler.add_noise(x0, noise, timesteps[1:2].repeat(2))
    inside = m_s.bool().expand_as(x0)
    assert m_hat is m_s
    assert torch.equal(out[inside], latents[inside]) and torch.equal(out[~inside], noised[~inside])
    last, _ = pipe.update_region(
        latents, m_s, m_s, m_s, x0, noise, timesteps[4:], refine=False, mask_dilation=1
    )
    assert torch.equal(last[~inside], x0[~inside])


@pytest.mark.parametrize("latent", [False, True], ids=["pixel", "latent"])
@torch.no_grad()  # stages run outside __call__ here
def test_paste_keeps_the_original_where_the_fill_left_the_picture_as_it_was(
    latent, tiny_pixel_pipeline, tiny_latent_pipeline
):
    """Outside the predicted object, paste uses the fill only where it differs from the original's
    own round trip through the model's image space: there the original's pixels are sharper."""
    pipe = tiny_latent_pipeline if latent else tiny_pixel_pipeline
    res = pipe.resolution
    original = noise_image(res, res, seed=3)
    box = np.zeros((res, res), np.uint8)
    box[4:-4, 4:-4] = 255
    crop = (0, 0, res, res)
    pixels, _ = pipe.prepare_crop(original, box, crop, 0, torch.device("cpu"))
    x0 = pipe.encode_image(pixels)
    size = x0.shape[-2:]
    m_hat = torch.ones(1, 1, *size)
    no_object = torch.zeros(1, 1, *size)

    # a "fill" that redrew the original exactly as its round trip: nothing of the photo is touched
    images, _, alphas = pipe.paste(original, box, x0.clone(), m_hat, no_object, crop, x0)
    assert np.array_equal(np.asarray(images[0]), np.asarray(original))
    assert not np.asarray(alphas[0]).any()

    # a fill that changed one quarter: that quarter is pasted, and (in pixel space; the untrained
    # autoencoder's GroupNorm spreads any change over its whole output) only that quarter
    changed = x0.clone()
    changed[..., : size[0] // 2, : size[1] // 2] = -x0[..., : size[0] // 2, : size[1] // 2] + 2
    _, _, alphas = pipe.paste(original, box, changed, m_hat, no_object, crop, x0)
    alpha = np.asarray(alphas[0]) > 0
    half = res // 2
    assert alpha[4 : half - 4, 4 : half - 4].mean() > 0.9
    if not latent:
        assert not alpha[half + 4 :, :].any() and not alpha[:, half + 4 :].any()

    # the predicted object is pasted whatever it looks like; without x0, the whole region is
    object_cells = torch.zeros(1, 1, *size)
    object_cells[..., size[0] // 2 :, size[1] // 2 :] = 1
    _, _, alphas = pipe.paste(original, box, x0.clone(), m_hat, object_cells, crop, x0)
    alpha = np.asarray(alphas[0])
    assert (alpha[half + 2 : -6, half + 2 : -6] == 255).all() and not alpha[: half - 2].any()
    _, _, alphas = pipe.paste(original, box, x0.clone(), m_hat, no_object, crop)
    assert (np.asarray(alphas[0]) > 0).sum() == (box > 0).sum()


def test_only_coarse_masks_keep_unchanged_pixels(tiny_pixel_pipeline, monkeypatch):
    """At precision level 0 the mask is the object's shape and all of it is the fill's; a coarser mask
    (and only with background preservation) gets the round-trip comparison."""
    from smartbrush.method import pipeline

    calls = []
    real = pipeline._changed_by_fill
    monkeypatch.setattr(pipeline, "_changed_by_fill", lambda *a: calls.append(1) or real(*a))
    image, mask = noise_image(64, 64), disk(64, 64, 32, 32, 20)
    kwargs = dict(prompt="a red star", num_inference_steps=2, seed=0)
    tiny_pixel_pipeline(image, mask, precision=0.0, **kwargs)
    assert not calls
    tiny_pixel_pipeline(image, mask, precision=1.0, preserve_background=False, **kwargs)
    assert not calls
    tiny_pixel_pipeline(image, mask, precision=1.0, **kwargs)
    assert calls


@torch.no_grad()  # stages run outside __call__ here
def test_strength_skips_the_noisiest_steps_and_a_removal_starts_from_the_blur_filled_hole():
    pipe = tiny_pipeline()  # its own copy: the removal config below must not leak
    pipe.set_progress_bar_config(disable=True)
    full = pipe.prepare_timesteps(20, "cpu")
    assert torch.equal(pipe.prepare_timesteps(20, "cpu", 0.5), full[10:])
    assert len(pipe.prepare_timesteps(20, "cpu", 0.01)) == 1  # at least one step

    torch.manual_seed(0)
    pixels = torch.rand(1, 3, 32, 32) * 2 - 1
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:20, 10:24] = 1
    assert pipe.prepare_start(pixels, hole, "a cat", 1.0) is None  # from pure noise
    assert torch.equal(pipe.prepare_start(pixels, hole, "a cat", 0.5), pixels)  # the original
    assert pipe.resolve_strength(None, "") == 1.0  # a model not trained for removal

    pipe.register_to_config(removal_prompt="<remove>", removal_strength=0.6)
    assert pipe.resolve_strength(None, "") == 0.6 and pipe.resolve_strength(None, "a cat") == 1.0
    assert pipe.resolve_strength(0.3, "") == 0.3
    start = pipe.prepare_start(pixels, hole, " ", 0.6)
    assert start is not None
    expected = masks.blur_fill(pixels[0].permute(1, 2, 0).numpy(), hole[0, 0].numpy() > 0)
    assert np.allclose(start[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    inside = hole.bool().expand_as(pixels)
    assert torch.equal(start[~inside], pixels[~inside])
    assert (start[inside] - pixels[inside]).abs().mean() > 0.1  # the object's pixels are gone

    timesteps = pipe.prepare_timesteps(20, "cpu", 0.6)
    latents, noise = pipe.prepare_latents(pixels, hole, [3], timesteps, start)
    assert torch.allclose(latents, pipe.scheduler.add_noise(start, noise, timesteps[:1]))

    steps = []
    pipe(noise_image(32, 32), hole[0, 0].numpy() > 0, "", num_inference_steps=20, seed=1,
         removal="model", callback_on_step_end=lambda p, i, t, state: steps.append(int(t)))  # fmt: skip
    assert steps == timesteps.tolist()  # the model's removals use the model's strength
    with pytest.raises(ValueError, match="strength must lie in"):
        pipe(noise_image(32, 32), hole[0, 0].numpy() > 0, "", strength=0)


def test_blur_fill_fills_only_the_hole_from_its_surroundings():
    image = np.zeros((20, 20, 3), np.uint8)
    image[:, 10:] = 200
    hole = np.zeros((20, 20), bool)
    hole[5:15, 5:15] = True
    filled = masks.blur_fill(image, hole)
    assert filled.dtype == np.uint8 and np.array_equal(filled[~hole], image[~hole])
    assert filled[10, 6, 0] < 100 < filled[10, 13, 0]  # each side continues its neighbours
    with pytest.raises(ValueError, match="non-empty"):
        masks.blur_fill(image, np.zeros_like(hole))


def test_removal_fills_the_hole_from_around_it_at_the_photos_resolution():
    """An empty prompt erases with any model (the tiny one was never trained for it): the hole is
    filled from its surroundings at the photo's own resolution, the photo's grain included."""
    pipe = tiny_pipeline()
    rng = np.random.default_rng(0)
    ramp = np.linspace(60, 180, 200)[None, :, None] * np.ones((160, 1, 3))
    photo = (ramp + rng.normal(0, 12, (160, 200, 3))).clip(0, 255).astype(np.uint8)
    with_object = photo.copy()
    with_object[60:100, 80:130] = (230, 20, 20)
    mask = np.zeros((160, 200), np.uint8)
    mask[54:106, 74:136] = 255
    out = pipe(with_object, mask, "", seed=3, num_images_per_prompt=2)
    assert out.seeds == [3, 4]
    hole = mask > 0
    first, second = (np.asarray(image).astype(int) for image in out.images)
    assert np.array_equal(first[~hole], with_object[~hole])
    assert np.abs(first[hole].mean(0) - photo[hole].mean(0)).max() < 8  # the tone of what is behind
    assert first[hole][:, 0].max() < 230  # no red left
    assert first[hole].std(0).mean() > 0.35 * photo[hole].std(0).mean()  # grain, not a smear
    assert not np.array_equal(first, second)  # a variation per seed
    assert np.array_equal(np.asarray(out.masks[0]) > 0, hole)

    rgba = np.dstack([with_object, np.full((160, 200), 77, np.uint8)])
    assert (np.asarray(pipe(rgba, mask, "", seed=1).images[0])[..., 3] == 77).all()
    with pytest.raises(ValueError, match="not trained for removal"):
        pipe(with_object, mask, "", removal="model")
    with pytest.raises(ValueError, match="nothing around it"):
        pipe(with_object, np.full((160, 200), 255, np.uint8), "")


def test_removal_leaves_the_environment_as_it_was():
    """OpenCV's GUI build writes Qt paths into os.environ when imported; a Krita started from a process
    that had run a removal loaded OpenCV's Qt plugins and aborted. The removal imports it without that
    (a fresh process: this one may have imported cv2 already)."""
    import subprocess
    import sys

    code = (
        "import os, numpy as np\n"
        "before = dict(os.environ)\n"
        "from smartbrush.method import infill\n"
        "image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)\n"
        "hole = np.zeros((64, 64), bool); hole[20:40, 20:40] = True\n"
        "infill.infill(image, hole)\n"
        "changed = set(os.environ.items()) ^ set(before.items())\n"
        "assert not changed, changed\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]

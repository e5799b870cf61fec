"""GPU check: an SD1.5-size SmartBrush (random weights) filling 512x512 in fp16, and training steps.

    python benchmarks/gpu_check.py                      # on a CUDA GPU (fits in a few minutes on an H200)
    python benchmarks/gpu_check.py --tiny --device cpu  # the same code path on a tiny model (the test)

Builds Stable Diffusion 1.5's UNet (config written out below, random weights), converts it to a SmartBrush
UNet with smartbrush_unet_from (9 input channels, 5 output channels, precision conditioning), adds an
SD-size AutoencoderKL and a CLIP-size text encoder (random; MiniLM's tokenizer, padded to 77 tokens), then

    1. a 25-step 512x512 fill through SmartBrushPipeline in fp16 (goal: <= 0.6 s, peak VRAM <= 3.5 GiB)
    2. a few training steps with accelerate (fp16 mixed precision, fp32 master weights, AdamW or 8-bit
       AdamW, the SmartBrush loss: masked noise MSE + 0.01 DICE on the mask head)

and prints one summary: a JSON line, then the same in words. Random weights cost what trained ones cost.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, cast

import diffusers
import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # run from a checkout without installing

GOALS = {"fill_s": 0.6, "fill_peak_vram_gib": 3.5}  # on an H200, fp16, 25 steps, 512x512

SD15_UNET: dict[str, Any] = dict(  # runwayml/stable-diffusion-v1-5 unet/config.json
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
)
SD15_VAE: dict[str, Any] = dict(  # its vae/config.json
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
SD15_TEXT: dict[str, Any] = dict(  # CLIP ViT-L/14's text tower
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
)
SD15_SCHEDULE: dict[str, Any] = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)


def build_pipeline(tiny: bool, device: torch.device, dtype: torch.dtype):
    """A SmartBrush pipeline with random weights: SD 1.5's architecture, or a tiny one."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    from smartbrush.method.model import smartbrush_unet_from, tiny_unet
    from smartbrush.method.pipeline import SmartBrushPipeline
    from smartbrush.testing import tiny_text_encoder, tiny_vae

    torch.manual_seed(0)
    with torch.device(
        device
    ):  # build the weights where they run: no slow CPU init of 1 B parameters
        if tiny:
            tokenizer, text_encoder = tiny_text_encoder()
            vae = tiny_vae()
            parent = tiny_unet(4, cross_attention_dim=32, sample_size=16)
        else:
            tokenizer, text_encoder = _clip_size_text_encoder()
            vae = AutoencoderKL(**SD15_VAE)
            parent = UNet2DConditionModel(**SD15_UNET)
        unet = smartbrush_unet_from(parent, image_channels=4)
        del parent
    scheduler = DDIMScheduler(**SD15_SCHEDULE)
    pipe = SmartBrushPipeline(unet, scheduler, text_encoder, tokenizer, vae=vae)
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _clip_size_text_encoder():
    """A random CLIP ViT-L/14 text tower; MiniLM's tokenizer stands in for CLIP's (not downloadable)."""
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    from smartbrush.method.text import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(
        minilm_path(), local_files_only=True, model_max_length=77
    )
    config = CLIPTextConfig(
        vocab_size=tokenizer.vocab_size,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SD15_TEXT,
    )
    return tokenizer, CLIPTextModel(config)


def test_image(size: int) -> tuple[PIL.Image.Image, np.ndarray]:
    """A gradient image with an elliptic selection covering the middle half."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([x, y, 1 - x * y], axis=-1) * 255
    mask = ((x - 0.5) ** 2 + (y - 0.5) ** 2 / 0.6) < 0.25**2
    return PIL.Image.fromarray(image.astype(np.uint8)), mask


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def fill_check(pipe, device: torch.device, steps: int, repeats: int) -> dict:
    """Time a full fill (crop, encode, `steps` UNet steps with guidance, decode, paste)."""
    image, mask = test_image(pipe.resolution)
    fill = dict(prompt="a red apple", num_inference_steps=steps, padding_mask_crop=None, seed=0)
    pipe(image, mask, **{**fill, "num_inference_steps": 2})  # warm-up: kernels, allocator
    synchronize(device)
    reset_peak(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = pipe(image, mask, **fill)
        synchronize(device)
        times.append(time.perf_counter() - start)
    pixels = np.asarray(result.images[0])
    return {
        "resolution": pipe.resolution,
        "steps": steps,
        "fill_s": round(min(times), 4),
        "fill_s_all": [round(t, 4) for t in times],
        "fill_peak_vram_gib": peak_gib(device),
        "background_unchanged": bool(np.array_equal(pixels[~mask], np.asarray(image)[~mask])),
    }


def training_check(
    pipe, device: torch.device, batch_size: int, steps: int, gradient_checkpointing: bool
) -> dict:
    """A few SmartBrush training steps with accelerate: fp16 autocast, fp32 master weights."""
    from accelerate import Accelerator
    from diffusers import DDPMScheduler

    from smartbrush.method.masks import soft_dice_loss
    from smartbrush.method.model import precision_class_labels
    from smartbrush.research.memory import apply_memory_savers, make_optimizer

    accelerator = Accelerator(
        mixed_precision="fp16" if device.type == "cuda" else "no", cpu=device.type == "cpu"
    )
    unet = (
        pipe.unet.float().train()
    )  # master weights in fp32; the frozen VAE / text encoder stay fp16
    applied = apply_memory_savers(unet, gradient_checkpointing=gradient_checkpointing)
    use_8bit = importlib.util.find_spec("bitsandbytes") is not None and device.type == "cuda"
    optimizer = make_optimizer(unet.parameters(), 1e-5, use_8bit_adam=use_8bit)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    # from_config's union return type includes the (scheduler, unused kwargs) tuple of
    # return_unused_kwargs=True, not asked for here
    noise_scheduler = cast(DDPMScheduler, DDPMScheduler.from_config(pipe.scheduler.config))
    channels, res = pipe.image_channels, pipe.resolution
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        text = pipe.encode_prompt(["a red apple on a table"] * batch_size).float()

    def step() -> float:
        pixels = (torch.rand(batch_size, 3, res, res, generator=generator) * 2 - 1).to(device)
        exact = torch.zeros(batch_size, 1, res, res, device=device)
        exact[:, :, res // 4 : 3 * res // 4, res // 3 : 2 * res // 3] = 1
        coarse = F.max_pool2d(exact, 2 * (res // 16) + 1, 1, res // 16)
        with torch.no_grad():  # the VAE is frozen (and fp16 on a GPU)
            x0 = pipe.encode_image(pixels).float()
            masked = pipe.encode_image(pixels * (1 - coarse)).float()
        size = x0.shape[-2:]
        m_s = (F.interpolate(coarse, size=size, mode="area") > 0).float()
        m = F.interpolate(exact, size=size, mode="area")
        noise = torch.randn_like(x0)
        t = torch.randint(
            0, noise_scheduler.config["num_train_timesteps"], (batch_size,), device=device
        )
        # add_noise is annotated IntTensor (int32) but takes randint's int64 timesteps, as diffusers' own
        # training scripts pass them
        noisy = noise_scheduler.add_noise(x0, noise, t) * m_s + x0 * (1 - m_s)  # pyright: ignore[reportArgumentType]
        levels = torch.randint(0, pipe.num_levels + 1, (batch_size,), device=device)
        with accelerator.autocast():
            output = unet(
                torch.cat([noisy, m_s, masked], 1),
                t,
                text,
                class_labels=precision_class_labels(levels, pipe.num_levels),
            ).sample
        output = output.float()
        mse = (((output[:, :channels] - noise) ** 2) * m_s).sum() / (m_s.sum() * channels)
        loss = mse + 0.01 * soft_dice_loss(torch.sigmoid(output[:, channels:]), m)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    step()  # warm-up
    synchronize(device)
    reset_peak(device)
    start = time.perf_counter()
    losses = [step() for _ in range(steps)]
    synchronize(device)
    elapsed = time.perf_counter() - start
    return {
        "batch_size": batch_size,
        "train_steps": steps,
        "s_per_step": round(elapsed / steps, 4),
        "train_peak_vram_gib": peak_gib(device),
        "loss": round(float(np.mean(losses)), 5),
        "loss_finite": bool(np.isfinite(losses).all()),
        "mixed_precision": accelerator.mixed_precision,
        "optimizer": type(
            optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
        ).__name__,
        **applied,
    }


def human_summary(summary: dict, checked: bool) -> str:
    """The summary in words; goals are only judged for the full model on a GPU."""

    def gib(value):
        return "n/a" if value is None else f"{value:.2f} GiB"

    def goal(name, unit):
        return f" (goal <= {GOALS[name]} {unit})" if checked else ""

    res = summary["resolution"]
    lines = [
        f"model {summary['model']} ({summary['unet_params_m']} M UNet parameters) on "
        f"{summary['device']}, {summary['dtype']}",
        f"fill: {summary['steps']} steps at {res}x{res}: {summary['fill_s']:.3f} s"
        + goal("fill_s", "s")
        + f", peak VRAM {gib(summary['fill_peak_vram_gib'])}"
        + goal("fill_peak_vram_gib", "GiB"),
        f"training: batch {summary['batch_size']}, {summary['s_per_step']:.3f} s/step, peak VRAM "
        f"{gib(summary['train_peak_vram_gib'])}, {summary['mixed_precision']} mixed precision, "
        f"{summary['optimizer']}, {summary['attention']} attention, gradient checkpointing "
        f"{'on' if summary['gradient_checkpointing'] else 'off'}, loss {summary['loss']} "
        f"({'finite' if summary['loss_finite'] else 'NOT finite'})",
    ]
    if checked:
        met = all(summary["goals"].values())
        lines.append("goals: " + ("met" if met else "NOT met: " + json.dumps(summary["goals"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    # __doc__ is None under python -OO
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model (for CPU tests)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=25, help="fill steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed fills (the best counts)")
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4, help="training batch size")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (1 is fastest on a busy CPU)"
    )
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    diffusers.utils.logging.set_verbosity_error()  # not the dtype-cast notes of random models

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --device cpu (with --tiny)", file=sys.stderr)
        return 2
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    started = time.perf_counter()
    pipe = build_pipeline(args.tiny, device, dtype)
    build_s = time.perf_counter() - started
    summary = {
        "model": "tiny" if args.tiny else "sd15-size",
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "unet_params_m": round(sum(p.numel() for p in pipe.unet.parameters()) / 1e6, 1),
        "build_s": round(build_s, 2),
    }
    summary.update(fill_check(pipe, device, args.steps, args.repeats))
    summary.update(
        training_check(pipe, device, args.batch_size, args.train_steps, args.gradient_checkpointing)
    )
    checked = not args.tiny and device.type == "cuda"
    summary["goals"] = {
        name: (summary[name] is not None and summary[name] <= limit) if checked else None
        for name, limit in GOALS.items()
    }
    summary["total_s"] = round(time.perf_counter() - started, 2)

    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(human_summary(summary, checked))
    return 0


if __name__ == "__main__":
    sys.exit(main())

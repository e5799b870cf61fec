"""Per-step time of SmartBrushPipeline vs diffusers' StableDiffusionInpaintPipeline on the same UNet.

Both pipelines run the same tiny latent inpainting UNet (the SmartBrush one is its function-preserving
conversion: one extra output channel, the precision embedding), the same VAE, text encoder and scheduler, at
the same resolution and step count, with classifier-free guidance. The bare UNet forward (batch 2 for
guidance) is the floor. Runs alternate, and the median of the rounds is reported.

    python benchmarks/pipeline_overhead.py [--steps 20] [--rounds 7] [--size 64]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline

from smartbrush.method.model import precision_class_labels, smartbrush_unet_from, tiny_unet
from smartbrush.method.pipeline import SmartBrushPipeline
from smartbrush.testing import tiny_text_encoder, tiny_vae


def main() -> None:
    # __doc__ is None under python -OO
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--size", type=int, default=64, help="image size in pixels (latent = size / 2)"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tokenizer, text_encoder = tiny_text_encoder()
    vae = tiny_vae().eval()
    inpaint_unet = tiny_unet(
        4, in_channels=9, sample_size=args.size // 2, block_out_channels=(64, 128)
    ).eval()
    smartbrush_unet = smartbrush_unet_from(inpaint_unet, image_channels=4).eval()
    parts: dict[str, Any] = dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
    # diffusers annotates scheduler as the KarrasDiffusionSchedulers enum (it takes the scheduler
    # itself) and the safety parts as non-optional (None is its documented way to drop them)
    diffusers_pipe = StableDiffusionInpaintPipeline(
        unet=inpaint_unet,
        scheduler=DDIMScheduler(steps_offset=1),  # pyright: ignore[reportArgumentType]
        safety_checker=None,  # pyright: ignore[reportArgumentType]
        feature_extractor=None,  # pyright: ignore[reportArgumentType]
        requires_safety_checker=False,
        **parts,
    )
    smartbrush_pipe = SmartBrushPipeline(
        unet=smartbrush_unet, scheduler=DDIMScheduler(steps_offset=1), **parts
    )
    for pipe in (diffusers_pipe, smartbrush_pipe):
        pipe.set_progress_bar_config(disable=True)

    size = args.size
    image = PIL.Image.fromarray(
        (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    )
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    common: dict[str, Any] = dict(
        prompt="a red circle", num_inference_steps=args.steps, guidance_scale=4.0
    )

    def run_diffusers():
        diffusers_pipe(
            image=image,
            mask_image=PIL.Image.fromarray(mask),
            height=size,
            width=size,
            generator=torch.Generator().manual_seed(0),
            **common,
        )

    def run_smartbrush(preserve: bool):
        # padding_mask_crop=None: the whole image at the model's resolution, as diffusers does here
        smartbrush_pipe(
            image,
            mask,
            precision=1.0,
            seed=0,
            preserve_background=preserve,
            padding_mask_crop=None,
            **common,
        )

    latents = torch.randn(2, 9, size // 2, size // 2)
    text = torch.randn(2, tokenizer.model_max_length, 32)
    labels = precision_class_labels(torch.tensor([5, 5]), 5)

    @torch.no_grad()
    def run_bare_unet():
        for t in range(args.steps):
            smartbrush_unet(latents, t, text, class_labels=labels)

    contenders = {
        "diffusers StableDiffusionInpaintPipeline": run_diffusers,
        "SmartBrushPipeline (background preservation on)": lambda: run_smartbrush(True),
        "SmartBrushPipeline (background preservation off)": lambda: run_smartbrush(False),
        "bare SmartBrush UNet forward (x2 for guidance)": run_bare_unet,
    }
    for run in contenders.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / args.steps * 1000)

    per_step = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.steps} steps, {size}x{size} image, {args.rounds} rounds, {args.threads} thread(s); "
        "median ms per step:"
    )
    for name, ms in per_step.items():
        print(f"  {name:52s} {ms:8.2f} ms")
    names = list(per_step)
    print(
        f"SmartBrush / diffusers:                        {per_step[names[1]] / per_step[names[0]]:.3f}"
    )
    print(
        f"background preservation on / off:             {per_step[names[1]] / per_step[names[2]]:.3f}"
    )
    print(
        f"SmartBrush / bare UNet:                        {per_step[names[1]] / per_step[names[3]]:.3f}"
    )


if __name__ == "__main__":
    main()

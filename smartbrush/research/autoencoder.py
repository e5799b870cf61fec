"""`smartbrush train-autoencoder CONFIG`: the small AutoencoderKL a latent SmartBrush works in.

As Stable Diffusion's VAE, but small: diffusers' AutoencoderKL, 4 latent channels, f = 2^(blocks - 1).
It is fully convolutional, so it trains on random crops of objects-world scenes (and of their object-free
backgrounds): L1 reconstruction of the posterior mean, L1 of its colours at 1/8 scale, a tiny KL term. At the end the latents' scaling factor is set to
1 / their standard deviation over a sample of scenes (what SD's 0.18215 is), so the UNet sees unit-variance
latents. Checkpoints and resume work as in `smartbrush train`; the model goes to output_dir/autoencoder.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np


def build_autoencoder(model: dict):
    from diffusers import AutoencoderKL

    blocks = len(model["block_out_channels"])
    # diffusers annotates the block tuples as 1-tuples (Tuple[str]) but takes any length
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,  # pyright: ignore[reportArgumentType]
        up_block_types=("UpDecoderBlock2D",) * blocks,  # pyright: ignore[reportArgumentType]
        block_out_channels=tuple(model["block_out_channels"]),
        layers_per_block=model["layers_per_block"],
        latent_channels=model["latent_channels"],
        norm_num_groups=model["norm_num_groups"],
        sample_size=model["resolution"],
    )


def scene_batch(world, start: int, count: int, resolution: int, crop: int, seed: int) -> np.ndarray:
    """count random crop x crop pieces of training scenes (with or without their object), NCHW in [-1, 1]."""
    rng = np.random.default_rng([seed, start])
    pieces = []
    for index in range(start, start + count):
        scene = world.scene("train", index, resolution)
        image = scene.image if rng.random() < 0.75 else scene.background
        y, x = rng.integers(0, resolution - crop + 1, size=2)
        pieces.append(image[y : y + crop, x : x + crop])
    return np.stack(pieces).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1


def train_autoencoder(config: dict) -> dict:
    import torch
    import torch.nn.functional as F
    from diffusers.training_utils import EMAModel

    from smartbrush.research.objects import ObjectsWorld
    from smartbrush.research.training import latest_checkpoint, load_checkpoint, save_checkpoint

    run, model_cfg, train_cfg = config["run"], config["model"], config["train"]
    if train_cfg["num_threads"]:
        torch.set_num_threads(int(train_cfg["num_threads"]))
    torch.manual_seed(run["seed"])
    output_dir = Path(run["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    world = ObjectsWorld()
    vae = build_autoencoder(model_cfg).train()
    ema = EMAModel(vae.parameters(), decay=train_cfg["ema_decay"])
    optimizer = torch.optim.AdamW(vae.parameters(), lr=train_cfg["learning_rate"])
    state = {"step": 0, "elapsed": 0.0}
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, vae, ema, optimizer)
        print(f"resumed from {checkpoint} at step {state['step']}")
    stop: dict[str, int | None] = {"signal": None}
    handlers = {
        s: signal.signal(s, lambda signum, frame: stop.update(signal=signum))
        for s in (signal.SIGTERM, signal.SIGINT)
    }
    batch, budget = train_cfg["batch_size"], train_cfg["max_minutes"] * 60
    started, last_checkpoint, losses = time.monotonic() - state["elapsed"], time.monotonic(), []

    def checkpoint_now() -> None:
        folder = output_dir / "checkpoints" / f"step-{state['step']:07d}"
        save_checkpoint(folder, vae, ema, optimizer, state)
        for old in sorted((output_dir / "checkpoints").glob("step-*[0-9]"))[:-2]:
            import shutil

            shutil.rmtree(old, ignore_errors=True)

    while state["step"] < train_cfg["max_steps"] and not (budget and state["elapsed"] >= budget):
        step = state["step"]
        lr = train_cfg["learning_rate"] * min(1.0, (step + 1) / train_cfg["warmup_steps"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        pixels = torch.from_numpy(
            scene_batch(
                world, step * batch, batch, model_cfg["resolution"], train_cfg["crop"], run["seed"]
            )
        )
        # encode / decode return their output classes (return_dict=True); diffusers' return types also
        # list the return_dict=False tuple / tensor
        posterior = vae.encode(pixels).latent_dist  # pyright: ignore[reportAttributeAccessIssue]
        # the posterior's mean, as SD's decoder sees at inference; sampling (std ~1 at init) would
        # drown the latents in noise until the tiny KL term shrinks it
        reconstruction = vae.decode(posterior.mode()).sample  # pyright: ignore[reportAttributeAccessIssue]
        l1 = (reconstruction - pixels).abs().mean()
        # colour at 1/8 scale: GroupNorm hides a region's absolute colour from the decoder, so colours
        # (red drifting to orange) learn far slower than edges unless the loss weighs them on their own
        colour = (F.avg_pool2d(reconstruction, 8) - F.avg_pool2d(pixels, 8)).abs().mean()
        kl = posterior.kl().mean() / pixels[0].numel()
        loss = l1 + train_cfg["colour_weight"] * colour + train_cfg["kl_weight"] * kl
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(vae.parameters())
        state["step"] += 1
        state["elapsed"] = time.monotonic() - started
        losses.append(l1.item())
        if state["step"] % train_cfg["log_every"] == 0:
            record = {"step": state["step"], "l1": float(np.mean(losses)), "colour": colour.item(), "kl": kl.item(),
                      "elapsed_s": round(state["elapsed"], 1)}  # fmt: skip
            losses = []
            with (output_dir / "log.jsonl").open("a") as log:
                log.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
        if time.monotonic() - last_checkpoint >= train_cfg["checkpoint_minutes"] * 60:
            checkpoint_now()
            last_checkpoint = time.monotonic()
        if stop["signal"] is not None:
            break
    checkpoint_now()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    if stop["signal"] is None:
        export_autoencoder(vae, ema, world, model_cfg["resolution"], output_dir / "autoencoder")
    return state


def export_autoencoder(vae, ema, world, resolution: int, folder: Path, scenes: int = 64) -> None:
    """Save the EMA weights with scaling_factor = 1 / std of the latents of `scenes` test-free scenes."""
    import copy

    import torch

    exported = copy.deepcopy(vae)
    ema.copy_to(exported.parameters())
    exported.eval()
    pixels = torch.from_numpy(scene_batch(world, 9_000_000, scenes, resolution, resolution, 1))
    with torch.no_grad():
        latents = exported.encode(pixels).latent_dist.mode()
    exported.register_to_config(scaling_factor=float(1 / latents.std()))
    exported.save_pretrained(folder, safe_serialization=True)
    print(f"saved {folder} (scaling factor {exported.config.scaling_factor:.4f})")

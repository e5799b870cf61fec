"""`smartbrush train CONFIG`: the SmartBrush training recipe (Xie et al., CVPR 2023).

Per example: an image x_0, its exact instance mask m, a coarse mask m_s at a random precision level s,
and a prompt (the class label or a caption, sometimes empty for classifier-free guidance).

    x_t   = (sqrt(a_t) x_0 + sqrt(1 - a_t) eps) * m_s + x_0 * (1 - m_s)      noise only inside the mask
    out   = unet(cat[x_t, m_s, x_0 * (1 - m_s)], t, text, class_labels = s)
    loss  = ||eps - out[:C]||^2 over m_s  +  0.01 * DICE(sigmoid(out[C]), m)

20 % of the examples are text-to-image (m_s = the whole image). The config's [recipe] switches turn parts
off for ablations (precision_conditioning, mask_head, multitask, captions) or train the "Stable Inpainting"
style baseline (random_masks: masks that ignore the object's shape, no s, no mask head).

Runs on CPU, one GPU or several (`accelerate launch -m smartbrush.commands.train CONFIG`). Checkpoints are
safetensors (model, EMA, optimizer, step, RNG) written every few minutes and on SIGTERM/Ctrl-C; a run
resumes from the newest checkpoint in its output folder. Losses go to output_dir/log.jsonl.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import signal
import time
from pathlib import Path
from typing import cast

import numpy as np

REMOVAL_PROMPT = (
    "<remove>"  # the reserved task prompt of removal (PowerPaint-style); users type nothing
)

# -- the recipe, per example ---------------------------------------------------------------------------


class RecipeDataset:
    """Raw examples -> training examples: coarse mask and level, task, prompt (deterministic by index)."""

    def __init__(self, raw, recipe: dict, num_levels: int, seed: int = 0):
        self.raw, self.recipe, self.num_levels, self.seed = raw, recipe, num_levels, seed
        self._order: tuple[int, np.ndarray] | None = None

    def raw_index(self, index: int) -> int:
        n = len(self.raw)
        if getattr(self.raw, "shuffled", False):
            return index % n
        epoch = index // n
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(n))
        return int(self._order[1][index % n])

    def __getitem__(self, index: int) -> dict:
        from smartbrush.method import masks

        rng = np.random.default_rng([self.seed, 1, index])
        example = self.raw[self.raw_index(index)]
        exact = example["mask"]
        recipe = self.recipe
        level = 0
        image = example["image"]
        if "background" in example and rng.random() < recipe["removal_fraction"]:
            coarse, level = removal_mask(exact, rng, self.num_levels)
            # the target inside the mask is the scene without the object; the model sees it masked out
            image = np.where(coarse[..., None], example["background"], image)
            pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1
            return {
                "pixels": pixels,
                "mask": coarse[None].astype(np.float32),  # regenerate all of it: nothing to keep
                "coarse": coarse[None].astype(np.float32),
                "level": level,
                "prompt": REMOVAL_PROMPT,
            }
        if recipe["random_masks"]:
            coarse = random_mask(exact, rng)
        elif recipe["multitask"] and rng.random() < recipe["t2i_fraction"]:
            coarse = np.ones_like(exact)  # text-to-image: the whole image is the mask
            if recipe["precision_conditioning"]:
                level = int(rng.integers(0, self.num_levels + 1))  # all levels give the whole image
        elif recipe["precision_conditioning"]:
            coarse, level = masks.random_precision_mask(exact, rng, self.num_levels)
        else:
            coarse = exact
        draw = rng.random()
        if draw < recipe["uncond_fraction"]:
            prompt = ""
        elif not recipe["captions"] or draw < recipe["uncond_fraction"] + recipe["label_fraction"]:
            prompt = example["label"]
        else:
            prompt = str(rng.choice(example["captions"]))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1
        return {
            "pixels": pixels,
            "mask": exact[None].astype(np.float32),
            "coarse": coarse[None].astype(np.float32),
            "level": level,
            "prompt": prompt,
        }


def removal_mask(
    exact: np.ndarray, rng: np.random.Generator, num_levels: int
) -> tuple[np.ndarray, int]:
    """What a user selects to erase an object: the object grown by a margin (a lasso), or its box.

    The level is random: an erase follows the selection whatever precision the selection implies."""
    from scipy import ndimage

    from smartbrush.method.masks import bounding_box, box_mask

    box = bounding_box(exact)
    assert box is not None, "removal_mask needs a non-empty instance mask"  # an example's object
    _, _, box_width, box_height = box
    margin = max(1, int(rng.uniform(0.04, 0.15) * max(box_height, box_width)))
    grown = ndimage.binary_dilation(exact, iterations=margin)
    coarse = box_mask(grown) if rng.random() < 0.3 else grown
    return coarse, int(rng.integers(0, num_levels + 1))


def random_mask(exact: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mask that covers the object but ignores its shape: a jittered box or free-form brush strokes."""
    from scipy import ndimage

    from smartbrush.method.masks import bounding_box

    height, width = exact.shape
    box = bounding_box(exact)
    assert box is not None, "random_mask needs a non-empty instance mask"  # an example's object
    x0, y0, box_width, box_height = box
    if rng.random() < 0.5:
        grow = rng.integers(0, max(2, box_height // 3), size=4)
        mask = np.zeros_like(exact)
        mask[
            max(0, y0 - grow[0]) : min(height, y0 + box_height + grow[1]),
            max(0, x0 - grow[2]) : min(width, x0 + box_width + grow[3]),
        ] = True
        return mask
    mask = ndimage.binary_dilation(exact, iterations=int(rng.integers(1, 4)))
    brush = max(1, box_height // 6)
    for _ in range(int(rng.integers(1, 4))):  # strokes from the object outwards
        y, x = rng.integers(y0, y0 + box_height), rng.integers(x0, x0 + box_width)
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.8) * box_height
        for step in np.linspace(0, length, 16):
            cy, cx = int(y + step * np.sin(angle)), int(x + step * np.cos(angle))
            mask[max(0, cy - brush) : cy + brush + 1, max(0, cx - brush) : cx + brush + 1] = True
    return mask


class StepSampler:
    """Global example indices from `start` on, this process's share of each batch (resumable)."""

    def __init__(self, start: int, batch_size: int, rank: int, world_size: int):
        self.start, self.batch_size, self.rank, self.world_size = (
            start,
            batch_size,
            rank,
            world_size,
        )

    def __iter__(self):
        index = self.start + self.rank * self.batch_size
        while True:
            yield from range(index, index + self.batch_size)
            index += self.batch_size * self.world_size


# -- model ---------------------------------------------------------------------------------------------


# latents scaled to unit variance: the photos' 0.1 / 99.9 % points are about -4.4 / 4, but the objects'
# outlines and saturated colours reach 9.3, and clipping them painted yellow and orange objects pale
LATENT_CLIP_RANGE = 12.0


def build_pipeline(config: dict):
    """The pipeline to train: a new pixel-space model, or one converted from / continuing a checkpoint."""
    from diffusers import DDIMScheduler, DDPMScheduler

    from smartbrush.method.model import smartbrush_unet_from, tiny_unet
    from smartbrush.method.pipeline import SmartBrushPipeline

    model, recipe = config["model"], config["recipe"]
    mask_head = recipe["mask_head"] and not recipe["random_masks"]
    precision = recipe["precision_conditioning"] and not recipe["random_masks"]
    init = model["init"]
    if not init:
        if model["text_encoder"] != "minilm":
            raise ValueError(
                "new models use model.text_encoder = 'minilm' (set model.init to fine-tune others)"
            )
        from smartbrush.method.text import load_minilm

        tokenizer, text_encoder = load_minilm()
        vae = _autoencoder(model["vae"]) if model["vae"] else None
        channels = vae.config["latent_channels"] if vae else 3
        scale = 2 ** (len(vae.config["block_out_channels"]) - 1) if vae else 1
        if model["resolution"] % scale:
            raise ValueError(f"model.resolution must be a multiple of the autoencoder's {scale}")
        parent = tiny_unet(
            channels,
            cross_attention_dim=text_encoder.config.hidden_size,
            sample_size=model["resolution"] // scale,
            block_out_channels=tuple(model["block_out_channels"]),
            layers_per_block=model["layers_per_block"],
            attention_head_dim=model["attention_head_dim"],
            norm_num_groups=model["norm_num_groups"],
        )
        unet = smartbrush_unet_from(
            parent, image_channels=channels, mask_head=mask_head, precision_conditioning=precision
        )
        # the sampler clips its x_0 estimate to where images lie: [-1, 1] for pixels, but a quarter of
        # unit-variance latents lie outside that (docs/results.md, "The sampler's clip range")
        clip_range = 1.0 if vae is None else LATENT_CLIP_RANGE
        noise = DDPMScheduler(num_train_timesteps=1000, beta_schedule=model["beta_schedule"],
                              clip_sample_range=clip_range)  # fmt: skip
        sampler = DDIMScheduler.from_config(noise.config, timestep_spacing="trailing")
        removal = REMOVAL_PROMPT if recipe["removal_fraction"] > 0 else None
        pipe = SmartBrushPipeline(
            unet, sampler, text_encoder, tokenizer, vae=vae, removal_prompt=removal
        )
        return pipe, noise
    return _pipeline_from(init, mask_head, precision)


def _autoencoder(path: str):
    from diffusers import AutoencoderKL

    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(
            f"model.vae: no AutoencoderKL in {path} (train one with `smartbrush train-autoencoder`)"
        )
    return AutoencoderKL.from_pretrained(path)


def _pipeline_from(init: str, mask_head: bool, precision: bool):
    """A SmartBrush pipeline from a SmartBrush folder ("demo" too) or a Stable Diffusion (inpainting) one."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from smartbrush.method.model import smartbrush_unet_from
    from smartbrush.method.pipeline import SmartBrushPipeline

    if init != "demo":
        index_file = Path(init) / "model_index.json"
        if not index_file.is_file():
            raise FileNotFoundError(f"model.init: no diffusers model_index.json in {init}")
        class_name = json.loads(index_file.read_text()).get("_class_name", "")
    if init == "demo" or class_name == "SmartBrushPipeline":
        from smartbrush.runtime.loading import load_pipeline

        pipe = load_pipeline(init)
    else:  # a Stable Diffusion (inpainting) pipeline: convert its UNet
        from diffusers import DiffusionPipeline

        parent = DiffusionPipeline.from_pretrained(init, safety_checker=None)
        channels = parent.vae.config.latent_channels
        unet = smartbrush_unet_from(
            parent.unet,
            image_channels=channels,
            mask_head=mask_head,
            precision_conditioning=precision,
        )
        pipe = SmartBrushPipeline(
            unet, parent.scheduler, parent.text_encoder, parent.tokenizer, vae=parent.vae
        )
    if not isinstance(pipe.unet, UNet2DConditionModel):
        raise ValueError(f"model.init {init}: not a UNet2DConditionModel")
    # from_config's union return type includes the (scheduler, unused kwargs) tuple of
    # return_unused_kwargs=True, not asked for here
    return pipe, cast(DDPMScheduler, DDPMScheduler.from_config(pipe.scheduler.config))


# -- checkpoints ---------------------------------------------------------------------------------------


def save_checkpoint(folder: Path, unet, ema, optimizer, state: dict) -> None:
    """model + EMA + optimizer tensors in one safetensors file; step, clock and RNG alongside."""
    import torch
    from safetensors.torch import save_file

    tensors = {f"unet.{k}": v.detach().cpu().contiguous() for k, v in unet.state_dict().items()}
    tensors.update(
        {f"ema.{i}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)}
    )
    optim = optimizer.state_dict()
    for index, values in optim["state"].items():
        for key, value in values.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    metadata = {
        "state": json.dumps(state),
        "param_groups": json.dumps(optim["param_groups"]),
        "ema_step": str(ema.optimization_step),
    }
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(tensors, partial / "checkpoint.safetensors", metadata=metadata)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)  # a kill mid-save leaves the previous checkpoint intact


def load_checkpoint(folder: Path, unet, ema, optimizer) -> dict:
    import torch
    from safetensors import safe_open

    with safe_open(folder / "checkpoint.safetensors", framework="pt") as file:
        metadata = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
    for i, param in enumerate(ema.shadow_params):
        param.data.copy_(tensors[f"ema.{i}"])
    ema.optimization_step = int(metadata["ema_step"])
    optim_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(
        {"state": optim_state, "param_groups": json.loads(metadata["param_groups"])}
    )
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(metadata["state"])


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = sorted((output_dir / "checkpoints").glob("step-*[0-9]"))
    found = [f for f in found if (f / "checkpoint.safetensors").is_file()]
    return found[-1] if found else None


def export_pipeline(pipe, unet, ema, folder: Path, with_text_encoder: bool) -> None:
    """Save a diffusers SmartBrush folder with the EMA weights (the text encoder only if asked)."""
    from smartbrush.method.pipeline import SmartBrushPipeline

    ema_unet = copy.deepcopy(unet)
    ema.copy_to(ema_unet.parameters())
    export = SmartBrushPipeline(
        ema_unet,
        pipe.scheduler,
        pipe.text_encoder if with_text_encoder else None,
        pipe.tokenizer,
        vae=pipe.vae,
        num_precision_levels=pipe.config.num_precision_levels,
        default_guidance_scale=pipe.config.default_guidance_scale,
        removal_prompt=pipe.config.removal_prompt,
    )
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    export.save_pretrained(partial, safe_serialization=True)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def halve_weights(folder: Path) -> None:
    """Store a pipeline folder's float32 weights as float16 (half the size; diffusers loads them back as
    float32 unless asked for another dtype)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    for path in folder.glob("*/*.safetensors"):
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata()
            tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
        halved = {k: v.half() if v.dtype == torch.float32 else v for k, v in tensors.items()}
        save_file(halved, path, metadata=metadata)


# -- the loop ------------------------------------------------------------------------------------------

LR_SCHEDULES = ("constant", "cosine")


def learning_rate_at(train_cfg: dict, step: int, elapsed: float) -> float:
    """The learning rate of a step: linear warm-up, then constant, or a cosine decay to zero at the end
    of the budget. A run that stops on max_minutes does not know its step count, so the decay follows
    whichever budget (steps or minutes) is further spent."""
    rate = train_cfg["learning_rate"] * min(1.0, (step + 1) / max(1, train_cfg["warmup_steps"]))
    if train_cfg["lr_schedule"] == "constant":
        return rate
    budget = train_cfg["max_minutes"] * 60
    progress = max(step / train_cfg["max_steps"], elapsed / budget if budget else 0.0)
    return rate * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(config: dict, resume: str | Path | None = None) -> dict:
    """Run (or continue) the training a config describes; returns the final state."""
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel
    from torch.utils.data import DataLoader

    from smartbrush.method.masks import soft_dice_loss
    from smartbrush.method.model import has_mask_head, precision_class_labels
    from smartbrush.method.pipeline import masked_blend
    from smartbrush.research.datasets import build_dataset
    from smartbrush.research.memory import apply_memory_savers, make_optimizer

    run, recipe, train_cfg = config["run"], config["recipe"], config["train"]
    if config["export"]["dtype"] not in ("float32", "float16"):
        raise ValueError(
            f"export.dtype must be float32 or float16, not {config['export']['dtype']!r}"
        )
    if train_cfg["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(
            f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {train_cfg['lr_schedule']!r}"
        )
    if train_cfg["num_threads"]:
        torch.set_num_threads(int(train_cfg["num_threads"]))
    accelerator = Accelerator(mixed_precision=train_cfg["mixed_precision"])
    output_dir = Path(run["output_dir"])
    torch.manual_seed(run["seed"])

    pipe, noise_scheduler = build_pipeline(config)
    pipe.text_encoder.requires_grad_(False).eval()
    if pipe.vae is not None:
        pipe.vae.requires_grad_(False).eval()
    pipe.to(accelerator.device)
    unet = pipe.unet
    unet.train()
    channels, num_levels = pipe.image_channels, pipe.num_levels
    mask_head = has_mask_head(unet)
    conditioned = unet.config.class_embed_type is not None

    resolution = pipe.resolution
    dataset = RecipeDataset(
        build_dataset(config["data"], resolution), recipe, num_levels, run["seed"]
    )
    ema = EMAModel(unet.parameters(), decay=train_cfg["ema_decay"])
    apply_memory_savers(
        unet,
        gradient_checkpointing=train_cfg["gradient_checkpointing"],
        attention=train_cfg["attention"],
    )
    optimizer = make_optimizer(
        unet.parameters(),
        train_cfg["learning_rate"],
        use_8bit_adam=train_cfg["use_8bit_adam"],
        weight_decay=train_cfg["weight_decay"],
    )
    state = {"step": 0, "elapsed": 0.0}
    checkpoint = Path(resume) if resume else latest_checkpoint(output_dir)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, unet, ema, optimizer)
        accelerator.print(f"resumed from {checkpoint} at step {state['step']}")
    unet, optimizer = accelerator.prepare(unet, optimizer)
    ema.to(accelerator.device)

    batch_size = train_cfg["batch_size"]
    sampler = StepSampler(
        state["step"] * batch_size * accelerator.num_processes,
        batch_size,
        accelerator.process_index,
        accelerator.num_processes,
    )
    loader = DataLoader(
        # a map-style dataset without torch's Dataset base class (this module imports torch lazily):
        # DataLoader only calls __getitem__, with the indices StepSampler yields
        dataset,  # pyright: ignore[reportArgumentType]
        batch_size=batch_size,
        sampler=sampler,
        num_workers=train_cfg["num_workers"],
        generator=torch.Generator().manual_seed(run["seed"]),  # keeps the global RNG for resuming
    )

    # the text encoder is frozen: encode each distinct prompt once
    cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(prompts: list[str]) -> torch.Tensor:
        new = sorted(set(prompts) - cache.keys())
        for start in range(0, len(new), 256):
            chunk = new[start : start + 256]
            cache.update(zip(chunk, pipe.encode_prompt(chunk).cpu(), strict=True))
        return torch.stack([cache[p] for p in prompts]).to(accelerator.device)

    known_prompts = dataset.raw.prompts() if hasattr(dataset.raw, "prompts") else None
    if known_prompts:
        embed(known_prompts)

    stop = {"signal": None}

    def request_stop(signum, frame):  # finish the step, checkpoint, exit
        stop["signal"] = signum

    previous_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    log_file = output_dir / "log.jsonl"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.json").write_text(json.dumps(config, indent=2))

    def checkpoint_now() -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            plain = accelerator.unwrap_model(unet)
            folder = output_dir / "checkpoints" / f"step-{state['step']:07d}"
            save_checkpoint(folder, plain, ema, optimizer, state)
            for old in sorted((output_dir / "checkpoints").glob("step-*[0-9]"))[
                : -train_cfg["keep_checkpoints"]
            ]:
                shutil.rmtree(old, ignore_errors=True)
            export_pipeline(
                pipe, plain, ema, output_dir / "pipeline", config["export"]["text_encoder"]
            )
            accelerator.print(f"checkpoint: {folder}")

    started = time.monotonic() - state["elapsed"]
    last_checkpoint = time.monotonic()
    budget = train_cfg["max_minutes"] * 60
    running: dict[str, list[float]] = {"loss": [], "mse": [], "dice": []}
    last_log = time.monotonic()
    for batch in loader:
        if state["step"] >= train_cfg["max_steps"] or (budget and state["elapsed"] >= budget):
            break
        lr = learning_rate_at(train_cfg, state["step"], state["elapsed"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        # the UNet input is built by the pipeline's own stages, so training and sampling agree
        pixels = batch["pixels"].to(accelerator.device)
        with torch.no_grad():
            x0 = pipe.encode_image(pixels)
            masked_image = pipe.prepare_masked_image_latents(pixels, batch["coarse"].to(pixels))
        size = x0.shape[-2:]
        m_s = pipe.prepare_mask_latents(batch["coarse"].to(x0), size)
        exact = F.interpolate(batch["mask"].to(x0), size=size, mode="area")
        noise = torch.randn_like(x0)
        t = torch.randint(
            0, noise_scheduler.config["num_train_timesteps"], (x0.shape[0],), device=x0.device
        )
        # add_noise is annotated IntTensor (int32) but takes randint's int64 timesteps, as diffusers' own
        # training scripts pass them
        noisy = masked_blend(noise_scheduler.add_noise(x0, noise, t), x0, m_s)  # pyright: ignore[reportArgumentType]
        text = embed(batch["prompt"])
        labels = (
            precision_class_labels(batch["level"].to(x0.device), num_levels)
            if conditioned
            else None
        )
        with accelerator.autocast():
            model_input = pipe.unet_input(noisy, m_s, masked_image)
            output = unet(model_input, t, text, class_labels=labels).sample
        output = output.float()
        per_sample = ((output[:, :channels] - noise) ** 2 * m_s).flatten(1).sum(1)
        mse = (per_sample / (m_s.flatten(1).sum(1) * channels).clamp(min=1)).mean()
        dice = soft_dice_loss(torch.sigmoid(output[:, channels:]), exact) if mask_head else mse * 0
        loss = mse + recipe["dice_weight"] * dice
        accelerator.backward(loss)
        if train_cfg["grad_clip"]:
            accelerator.clip_grad_norm_(unet.parameters(), train_cfg["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(unet.parameters())
        if not math.isfinite(loss.item()):
            raise RuntimeError(
                f"loss became {loss.item()} at step {state['step']}: lower the learning rate"
            )

        state["step"] += 1
        state["elapsed"] = time.monotonic() - started
        running["loss"].append(loss.item())
        running["mse"].append(mse.item())
        running["dice"].append(dice.item())
        if state["step"] % train_cfg["log_every"] == 0 and accelerator.is_main_process:
            now = time.monotonic()
            record = {
                "step": state["step"],
                **{k: float(np.mean(v)) for k, v in running.items()},
                "lr": lr,
                "elapsed_s": round(state["elapsed"], 1),
                "s_per_step": round((now - last_log) / train_cfg["log_every"], 3),
            }
            last_log = now
            running = {k: [] for k in running}
            with log_file.open("a") as log:
                log.write(json.dumps(record) + "\n")
            accelerator.print(json.dumps(record))
        due = train_cfg["checkpoint_every"] and state["step"] % train_cfg["checkpoint_every"] == 0
        if due or time.monotonic() - last_checkpoint >= train_cfg["checkpoint_minutes"] * 60:
            checkpoint_now()
            last_checkpoint = time.monotonic()
        if stop["signal"] is not None:
            break

    if latest_checkpoint(output_dir) != output_dir / "checkpoints" / f"step-{state['step']:07d}":
        checkpoint_now()
    for sig, handler in previous_handlers.items():
        signal.signal(sig, handler)
    export_dir = config["export"]["dir"]
    if export_dir and accelerator.is_main_process and stop["signal"] is None:
        # replace the pipeline's files, keep the rest (e.g. the demo's eval classifier)
        Path(export_dir).mkdir(parents=True, exist_ok=True)
        for item in (output_dir / "pipeline").iterdir():
            target = Path(export_dir) / item.name
            shutil.rmtree(target, ignore_errors=True)
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
        if config["export"]["dtype"] == "float16":
            halve_weights(Path(export_dir))
        accelerator.print(f"exported the trained pipeline to {export_dir}")
    if stop["signal"] is not None:
        accelerator.print(
            f"stopped by signal {stop['signal']} at step {state['step']}; rerun to resume"
        )
    return state


# -- command line --------------------------------------------------------------------------------------

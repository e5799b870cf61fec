"""Training configs' defaults: `smartbrush train` (DEFAULTS) and `smartbrush train-autoencoder`
(AUTOENCODER_DEFAULTS). A config file (TOML or YAML) and "section.key=value" overrides update them through
the one config loader, smartbrush.runtime.config.load_config(path, overrides, defaults=DEFAULTS).
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, dict[str, Any]] = {
    "run": {"output_dir": "runs/smartbrush", "seed": 0},
    "model": {
        "init": "",  # "" = a new model; else a SmartBrush/SD diffusers folder or "demo"
        "vae": "",  # new models: "" = pixel space; else an AutoencoderKL folder (latent model)
        "resolution": 32,
        "block_out_channels": [32, 64, 64],
        "layers_per_block": 1,
        "attention_head_dim": 8,
        "norm_num_groups": 16,
        "text_encoder": "minilm",  # the text encoder of new models
        "beta_schedule": "squaredcos_cap_v2",
    },
    "recipe": {
        "precision_conditioning": True,
        "mask_head": True,
        "multitask": True,
        "captions": True,
        "random_masks": False,
        "t2i_fraction": 0.2,
        "label_fraction": 0.3,  # prompt = class label, otherwise one of the captions
        "uncond_fraction": 0.1,  # empty prompt, for classifier-free guidance
        "dice_weight": 0.01,
        "removal_fraction": 0.0,  # removal task (needs data with backgrounds): erase the object
    },
    "data": {
        "dataset": "world",
        "annotations": "",
        "images": "",
        "captions": "",
        "min_area": 64.0,
        # objects world: the share of training objects recoloured and named by colour ("a blue car")
        "recolour_fraction": 0.0,
    },  # fmt: skip
    "train": {
        "batch_size": 32,
        "learning_rate": 5e-4,
        "weight_decay": 0.0,
        "warmup_steps": 100,
        "lr_schedule": "constant",  # after warm-up: "constant" | "cosine" (to zero at the budget's end)
        "max_steps": 1000,
        "max_minutes": 0.0,  # wall-time budget over all resumes; 0 = none
        "checkpoint_minutes": 5.0,
        "checkpoint_every": 0,  # steps; 0 = by time only
        "keep_checkpoints": 2,
        "ema_decay": 0.999,
        "grad_clip": 1.0,
        "mixed_precision": "no",  # accelerate: "no" | "fp16" | "bf16"
        "gradient_checkpointing": False,  # memory savers for SD-size UNets (smartbrush.research.memory)
        "attention": "sdpa",  # "sdpa" | "xformers" | "default"
        "use_8bit_adam": False,  # bitsandbytes AdamW8bit; falls back to AdamW with a warning
        "num_threads": 0,  # torch CPU threads; 0 = torch's default
        "num_workers": 0,
        "log_every": 10,
    },
    # text_encoder false: the loader supplies MiniLM; dtype "float16": weights stored at half size
    "export": {"dir": "", "text_encoder": True, "dtype": "float32"},
}


AUTOENCODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "run": {"output_dir": "runs/autoencoder", "seed": 0},
    "model": {
        "resolution": 128,  # the scenes' size (training crops are smaller)
        "block_out_channels": [16, 32, 64],  # 3 blocks: f = 4
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 4,  # groups of one channel (16 of 16) learn colours slowly
    },
    "train": {
        "batch_size": 16,
        "crop": 64,
        "learning_rate": 2e-3,
        "warmup_steps": 100,
        "max_steps": 1000,
        "max_minutes": 0.0,
        "checkpoint_minutes": 5.0,
        "colour_weight": 1.0,  # L1 of 8x8-pooled colours beside the per-pixel L1
        "kl_weight": 1e-4,  # per-pixel KL weight: keeps latents near N(0, 1) without blurring
        "ema_decay": 0.999,
        "num_threads": 0,
        "log_every": 20,
    },
}

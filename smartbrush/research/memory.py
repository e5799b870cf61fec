"""Memory savers for training SD-size models: gradient checkpointing, attention kernels, 8-bit Adam.

Mixed precision is accelerate's (`Accelerator(mixed_precision="fp16" | "bf16")`); this module covers the
rest. Every saver changes memory and speed only, never the maths (up to floating-point rounding):

    gradient_checkpointing  recompute block activations in the backward pass instead of storing them
    attention="sdpa"        torch's scaled_dot_product_attention (flash / memory-efficient kernels on GPU)
    attention="xformers"    xformers' memory-efficient attention (needs xformers and CUDA)
    attention="default"     diffusers' plain attention (materialises the full attention matrix)
    use_8bit_adam           bitsandbytes' AdamW8bit: optimizer state in 8 bits (~75 % less than AdamW)
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from diffusers import UNet2DConditionModel

logger = logging.getLogger(__name__)

ATTENTION_CHOICES = ("sdpa", "xformers", "default")


def apply_memory_savers(
    unet: UNet2DConditionModel,
    *,
    gradient_checkpointing: bool = False,
    attention: str = "sdpa",
) -> dict[str, object]:
    """Switch the savers on in place; returns what was applied (for the training log)."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if attention not in ATTENTION_CHOICES:
        raise ValueError(
            f"attention must be one of {', '.join(ATTENTION_CHOICES)}, got {attention!r}"
        )
    if attention == "xformers":
        if importlib.util.find_spec("xformers") is None:
            raise ValueError(
                "attention 'xformers' needs the xformers package (pip install xformers, CUDA only); "
                "use attention 'sdpa' instead"
            )
        if not torch.cuda.is_available():
            raise ValueError("attention 'xformers' needs a CUDA GPU; use attention 'sdpa' instead")
        unet.enable_xformers_memory_efficient_attention()
    elif attention == "sdpa":
        unet.set_attn_processor(AttnProcessor2_0())
    else:
        unet.set_attn_processor(AttnProcessor())

    if gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    elif unet.is_gradient_checkpointing:
        unet.disable_gradient_checkpointing()
    return {"gradient_checkpointing": gradient_checkpointing, "attention": attention}


def make_optimizer(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    use_8bit_adam: bool = False,
    *,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """AdamW; bitsandbytes' AdamW8bit when asked for and importable, else torch's with a warning."""
    kwargs: dict[str, Any] = dict(lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
    if use_8bit_adam:
        try:
            import bitsandbytes
        except (
            ImportError
        ):  # also raised by bitsandbytes builds that cannot load their native library
            message = (
                "use_8bit_adam: bitsandbytes is not installed (pip install bitsandbytes); "
                "training with torch's AdamW (32-bit optimizer state) instead"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            logger.warning(message)
        else:
            return bitsandbytes.optim.AdamW8bit(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)

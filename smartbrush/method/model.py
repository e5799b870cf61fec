"""Model surgery: turn a diffusers UNet2DConditionModel into a SmartBrush UNet.

SmartBrush UNet, for C image (or latent) channels:
    input  = cat[noisy x_t (C), coarse mask m_s (1), masked image x_0 * (1 - m_s) (C)]   -> 2C + 1
    output = cat[noise prediction (C), object-mask logit (1)]                              -> C + 1
    class_labels = the precision level s, through a timestep-style embedding added to the time embedding.

This is Stable Inpainting's 9-channel input layout for a 4-channel latent, so an SD-inpainting UNet converts
without new input weights, and a text-to-image UNet gets zero-initialised input channels. Every new weight
starts at zero, so the converted UNet predicts exactly the noise its parent predicts.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from diffusers import UNet2DConditionModel

TIMESTEP_RANGE = (
    1000  # precision levels are spread over the timestep range the sinusoidal embedding expects
)


def precision_class_labels(levels: torch.Tensor, num_levels: int) -> torch.Tensor:
    """Precision levels s (0..S) -> the `class_labels` a SmartBrush UNet takes."""
    return levels.float() * (TIMESTEP_RANGE / num_levels)


def smartbrush_unet_from(
    unet: UNet2DConditionModel,
    *,
    image_channels: int,
    mask_head: bool = True,
    precision_conditioning: bool = True,
) -> UNet2DConditionModel:
    """A SmartBrush UNet made from a text-to-image (C in) or inpainting (2C + 1 in) parent UNet."""
    c = image_channels
    parent_in, parent_out = unet.config["in_channels"], unet.config["out_channels"]
    if parent_in not in (c, 2 * c + 1) or parent_out != c:
        raise ValueError(
            f"expected a text-to-image UNet ({c} -> {c} channels) or an inpainting UNet "
            f"({2 * c + 1} -> {c}), got {parent_in} -> {parent_out}"
        )
    parent_class_embed = unet.config["class_embed_type"]
    if parent_class_embed not in (None, "timestep"):
        raise ValueError(f"unsupported parent class_embed_type {parent_class_embed!r}")

    config = {key: value for key, value in unet.config.items() if not key.startswith("_")}
    config.update(in_channels=2 * c + 1, out_channels=c + 1 if mask_head else c)
    if precision_conditioning:
        config["class_embed_type"] = "timestep"
    child = UNet2DConditionModel(**config)
    if (child.device, child.dtype) != (unet.device, unet.dtype):
        # ModelMixin.to is functools.wraps(Module.to), which pyright cannot bind; same call at runtime
        cast(torch.nn.Module, child).to(unet.device, unet.dtype)

    _inherit_weights(child, unet, image_channels=c)
    return child


@torch.no_grad()
def _inherit_weights(
    child: UNet2DConditionModel, parent: UNet2DConditionModel, image_channels: int
):
    """Copy every parent weight into the child; everything the parent lacks starts at zero."""
    parent_state = parent.state_dict()
    for name, tensor in child.state_dict().items():  # state_dict tensors share the child's storage
        if name in parent_state and parent_state[name].shape == tensor.shape:
            tensor.copy_(parent_state[name])
        elif not name.startswith("class_embedding.linear_1"):
            tensor.zero_()
    # the parent's inputs are the first C (text-to-image) or all 2C + 1 (inpainting) input channels
    child.conv_in.weight[:, : parent.config["in_channels"]] = parent.conv_in.weight
    child.conv_out.weight[:image_channels] = parent.conv_out.weight
    child_bias, parent_bias = child.conv_out.bias, parent.conv_out.bias
    assert child_bias is not None and parent_bias is not None  # diffusers' conv_out has bias=True
    child_bias[:image_channels] = parent_bias
    # A new precision embedding keeps linear_1's random init so gradients reach it; linear_2 = 0 makes
    # the embedding add nothing until training moves it.


def tiny_unet(
    image_channels: int = 3,
    cross_attention_dim: int = 32,
    sample_size: int = 32,
    block_out_channels: tuple[int, ...] = (32, 64),
    **overrides,
) -> UNet2DConditionModel:
    """A small text-to-image UNet (C -> C channels) with cross-attention in every block but the first."""
    n = len(block_out_channels)
    config: dict[str, Any] = dict(
        sample_size=sample_size,
        in_channels=image_channels,
        out_channels=image_channels,
        block_out_channels=block_out_channels,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    config.update(overrides)
    return UNet2DConditionModel(**config)


def unet_image_channels(unet: UNet2DConditionModel) -> int:
    """C, the image (or latent) channel count of a SmartBrush UNet (2C + 1 inputs)."""
    return (unet.config["in_channels"] - 1) // 2


def has_mask_head(unet: UNet2DConditionModel) -> bool:
    return unet.config["out_channels"] == unet_image_channels(unet) + 1

"""Test support shared by the tests and the benchmarks: tiny, real, randomly initialised SmartBrush
pipelines (and a folder holding one, for `--model FOLDER`), and a free loopback port.

Never imported by production code. torch and diffusers load on first use, so `free_port` is cheap.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers import AutoencoderKL

    from smartbrush.method.pipeline import SmartBrushPipeline

TINY_MAX_TOKENS = 16


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tiny_text_encoder(hidden_size: int = 32):
    """A 1-layer BERT with MiniLM's vocabulary, and MiniLM's real tokenizer (both offline)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from smartbrush.method.text import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(
        minilm_path(), local_files_only=True, model_max_length=TINY_MAX_TOKENS
    )
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    return tokenizer, BertModel(config).eval()


def tiny_vae() -> AutoencoderKL:
    from diffusers import AutoencoderKL

    # diffusers annotates the block tuples as 1-tuples (Tuple[str]) but takes any length
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),  # pyright: ignore[reportArgumentType]
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),  # pyright: ignore[reportArgumentType]
        block_out_channels=(16, 32),  # pyright: ignore[reportArgumentType]
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )


def tiny_pipeline(
    latent: bool = False,
    mask_head: bool = True,
    precision_conditioning: bool = True,
    seed: int = 0,
    sample_size: int = 32,
) -> SmartBrushPipeline:
    """A real SmartBrush pipeline with random weights: pixel space (32 px) or latent (tiny VAE, 64 px)."""
    import torch
    from diffusers import DDIMScheduler

    from smartbrush.method.model import smartbrush_unet_from, tiny_unet
    from smartbrush.method.pipeline import SmartBrushPipeline

    torch.manual_seed(seed)
    tokenizer, text_encoder = tiny_text_encoder()
    vae = tiny_vae() if latent else None
    channels = vae.config["latent_channels"] if vae is not None else 3
    parent = tiny_unet(channels, cross_attention_dim=32, sample_size=sample_size)
    unet = smartbrush_unet_from(
        parent,
        image_channels=channels,
        mask_head=mask_head,
        precision_conditioning=precision_conditioning,
    )
    # surgery zero-initialises the mask head; give it random weights so tests see real predicted masks
    with torch.no_grad():
        if mask_head:
            unet.conv_out.weight[channels:].normal_(0, 0.05)
    pipe = SmartBrushPipeline(
        unet=unet.eval(),
        scheduler=DDIMScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        vae=vae.eval() if vae else None,
    )
    return pipe


def save_tiny_pipeline(folder: str | Path, **kwargs) -> Path:
    """tiny_pipeline(**kwargs) saved to `folder`: a model folder that `--model FOLDER` (the CLI, the
    daemon) and load_pipeline(FOLDER) load, with the same weights."""
    folder = Path(folder)
    tiny_pipeline(**kwargs).save_pretrained(folder)
    return folder

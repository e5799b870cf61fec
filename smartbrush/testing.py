"""Tiny, real, randomly initialised SmartBrush pipelines for tests, benchmarks and `--model tiny`."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler

from smartbrush.method.model import smartbrush_unet_from, tiny_unet
from smartbrush.method.pipeline import SmartBrushPipeline

TINY_MAX_TOKENS = 16


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

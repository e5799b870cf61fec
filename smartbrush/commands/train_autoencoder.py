"""`smartbrush train-autoencoder CONFIG`: the small AutoencoderKL a latent SmartBrush works in.

As Stable Diffusion's VAE, but small: diffusers' AutoencoderKL, 4 latent channels, f = 2^(blocks - 1).
It is fully convolutional, so it trains on random crops of objects-world scenes (and of their object-free
backgrounds): L1 reconstruction of the posterior mean, L1 of its colours at 1/8 scale, a tiny KL term. At the end the latents' scaling factor is set to
1 / their standard deviation over a sample of scenes (what SD's 0.18215 is), so the UNet sees unit-variance
latents. Checkpoints and resume work as in `smartbrush train`; the model goes to output_dir/autoencoder.
"""

from __future__ import annotations

import argparse

from smartbrush.research.autoencoder import train_autoencoder
from smartbrush.research.training_config import AUTOENCODER_DEFAULTS
from smartbrush.runtime.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", help="a TOML autoencoder config (see configs/demo-autoencoder.toml)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override a config value (repeatable)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides, defaults=AUTOENCODER_DEFAULTS)
    state = train_autoencoder(config)
    print(
        f"trained to step {state['step']} in {state['elapsed'] / 60:.1f} min: {config['run']['output_dir']}"
    )
    return 0

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

import argparse
import sys
from pathlib import Path

from smartbrush.research.training import train
from smartbrush.research.training_config import load_config
from smartbrush.wire.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a TOML or YAML training config (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=200 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue from this checkpoint folder (default: the newest in the output folder, if any)",
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    if args.resume and not (Path(args.resume) / "checkpoint.safetensors").is_file():
        raise FileNotFoundError(f"no checkpoint.safetensors in {args.resume}")
    state = train(config, args.resume)
    print(
        f"trained to step {state['step']} in {state['elapsed'] / 60:.1f} min: {config['run']['output_dir']}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`accelerate launch -m smartbrush.commands.train CONFIG [...]`: the same as `smartbrush train`."""
    parser = argparse.ArgumentParser(prog="smartbrush.commands.train", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (UserError, ValueError, FileNotFoundError) as error:
        print(f"smartbrush train: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

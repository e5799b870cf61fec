"""`smartbrush convert SRC OUT`: a Stable Diffusion 1.x checkpoint -> a SmartBrush pipeline folder.

SRC is one of
    - a diffusers folder (StableDiffusionPipeline or StableDiffusionInpaintPipeline layout),
    - a hub id (loaded from the local Hugging Face cache, or downloaded when online),
    - a single .safetensors / .ckpt file in the original (LDM) layout, read with diffusers'
      `from_single_file`. That needs the diffusers configs of the architecture: `--config FOLDER` (any
      diffusers folder of the same architecture; configs and tokenizer are enough, no weights), else the
      matching hub repo's configs from the local cache or the hub.

The UNet goes through `smartbrush_unet_from` (new weights zero-initialised, so the result predicts exactly
the noise its parent predicts); VAE, CLIP text encoder and tokenizer are kept; the scheduler becomes DDIM
with the source's noise schedule. OUT loads with `SmartBrushPipeline.from_pretrained(OUT)` (daemon) and
trains with `model.init = OUT`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, cast

from smartbrush.wire.errors import UserError, first_line

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionInpaintPipeline")
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
LDM_CONV_IN = (
    "model.diffusion_model.input_blocks.0.0.weight"  # the UNet's first conv in an LDM file
)


# -- loading the source -----------------------------------------------------------------------------


def load_source(src: str | Path, config: str | Path | None = None) -> dict[str, Any]:
    """The components (unet, vae, text_encoder, tokenizer, scheduler) of an SD 1.x model, checked."""
    path = Path(src).expanduser()
    if path.is_file():
        components = _load_single_file(path, config)
    elif path.is_dir():
        components = _load_diffusers(str(path))
    elif HUB_ID.match(str(src)) and not str(src).startswith("."):
        components = _load_diffusers(str(src))
    else:
        raise UserError(f"{src}: no such file or folder (and not a hub id like 'owner/model')")
    check_architecture(components)
    return components


def _load_diffusers(src: str) -> dict[str, Any]:
    """Components of a diffusers folder or hub id, after checking its model_index.json."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    index = model_index(src)
    _check_model_index(index, src)
    text_encoder_class = _transformers_class(index, "text_encoder", src)
    tokenizer_class = _transformers_class(index, "tokenizer", src)
    try:
        return {
            "unet": UNet2DConditionModel.from_pretrained(src, subfolder="unet"),
            "vae": AutoencoderKL.from_pretrained(src, subfolder="vae"),
            "text_encoder": text_encoder_class.from_pretrained(src, subfolder="text_encoder"),
            "tokenizer": tokenizer_class.from_pretrained(src, subfolder="tokenizer"),
            "scheduler_config": DDIMScheduler.load_config(src, subfolder="scheduler"),
        }
    except (OSError, ValueError) as error:
        raise UserError(f"{src}: cannot load a component: {first_line(error)}") from None


def model_index(src: str) -> dict[str, Any]:
    """The model_index.json of a diffusers folder or hub id (local cache, or the hub when online)."""
    from diffusers import DiffusionPipeline
    from huggingface_hub import constants

    if Path(src).is_dir():
        if not (Path(src) / "model_index.json").is_file():
            raise UserError(f"{src}: not a diffusers pipeline folder (no model_index.json)")
        return json.loads((Path(src) / "model_index.json").read_text())
    try:
        with warnings.catch_warnings():  # huggingface_hub's deprecation notes are not for the user
            warnings.simplefilter("ignore")
            # a plain dict: diffusers annotates load_config with the return_unused_kwargs tuple
            return cast(dict[str, Any], DiffusionPipeline.load_config(src))
    except OSError as error:
        if constants.HF_HUB_OFFLINE:
            raise UserError(
                f"{src}: not a local file or folder, and as a hub id it is not in the local cache "
                "(the hub is offline: HF_HUB_OFFLINE=1)"
            ) from None
        raise UserError(
            f"{src}: not a local file or folder, and the hub did not give its model_index.json "
            f"(no network, a wrong id or a gated model?): {first_line(error)}"
        ) from None


def _check_model_index(index: dict[str, Any], src: str) -> None:
    class_name = index.get("_class_name", "?")
    if class_name == "SmartBrushPipeline":
        raise UserError(f"{src} is already a SmartBrush pipeline: train or use it as it is")
    if "text_encoder_2" in index or "XL" in class_name:
        raise UserError(
            f"{src}: SDXL ({class_name}, two text encoders) is not supported; convert an SD 1.x model"
        )
    if class_name not in SUPPORTED_PIPELINES:
        raise UserError(
            f"{src}: unsupported architecture {class_name}; expected one of {', '.join(SUPPORTED_PIPELINES)}"
        )
    missing = [name for name in COMPONENTS if not (index.get(name) or [None])[0]]
    if missing:
        raise UserError(f"{src}: the pipeline has no {', '.join(missing)}")


def _transformers_class(index: dict[str, Any], name: str, src: str):
    import transformers

    library, class_name = index[name]
    cls = getattr(transformers, class_name, None) if library == "transformers" else None
    if cls is None:
        raise UserError(f"{src}: unsupported {name} {library}.{class_name}")
    return cls


def _load_single_file(path: Path, config: str | Path | None) -> dict[str, Any]:
    """Components of an original-layout (LDM) single-file checkpoint, via diffusers' from_single_file."""
    from diffusers import (
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from diffusers.loaders.single_file_utils import (
        DIFFUSERS_DEFAULT_PIPELINE_PATHS,
        infer_diffusers_model_type,
        load_single_file_checkpoint,
    )

    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise UserError(
            f"{path}: expected a diffusers folder or a {'/'.join(SINGLE_FILE_SUFFIXES)} checkpoint"
        )
    try:
        # a state dict (name -> tensor); diffusers leaves the function unannotated
        checkpoint = cast(
            dict[str, Any], load_single_file_checkpoint(str(path), local_files_only=True)
        )
    except Exception as error:  # a damaged or foreign file: torch / safetensors raise many kinds
        raise UserError(f"{path}: cannot read the checkpoint: {first_line(error)}") from None
    if LDM_CONV_IN not in checkpoint:
        raise UserError(
            f"{path}: not a Stable Diffusion checkpoint in the original layout (no {LDM_CONV_IN})"
        )
    kind = infer_diffusers_model_type(checkpoint)
    if kind.startswith("xl"):
        raise UserError(f"{path}: SDXL ({kind}) is not supported; convert an SD 1.x model")
    if kind not in ("v1", "inpainting"):
        raise UserError(
            f"{path}: unsupported architecture {kind!r}; expected SD 1.x (v1 or inpainting)"
        )
    in_channels = checkpoint[LDM_CONV_IN].shape[1]
    del checkpoint  # from_single_file reads the file again (memory-mapped for safetensors)

    pipeline_class = StableDiffusionInpaintPipeline if in_channels == 9 else StableDiffusionPipeline
    kwargs: dict[str, Any] = dict(
        local_files_only=True,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if config is not None:
        config = Path(config).expanduser()
        if not (config / "model_index.json").is_file():
            raise UserError(
                f"--config {config}: not a diffusers pipeline folder (no model_index.json)"
            )
        kwargs["config"] = str(config)
        # a plain dict: diffusers annotates load_config with the return_unused_kwargs tuple
        unet_config = cast(
            dict[str, Any], UNet2DConditionModel.load_config(config, subfolder="unet")
        )
        if (
            unet_config["in_channels"] != in_channels
        ):  # e.g. SD 1.5's configs for an inpainting file
            kwargs["unet"] = UNet2DConditionModel.from_single_file(
                str(path), config=str(config), subfolder="unet", in_channels=in_channels,
                local_files_only=True,
            )  # fmt: skip
    else:
        repo = DIFFUSERS_DEFAULT_PIPELINE_PATHS[kind]["pretrained_model_name_or_path"]
        kwargs["config"] = _cached_configs(repo, path)
    try:
        pipe = pipeline_class.from_single_file(str(path), **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise UserError(f"{path}: cannot convert the checkpoint: {first_line(error)}") from None
    components = {name: getattr(pipe, name) for name in COMPONENTS}
    components["scheduler_config"] = components.pop("scheduler").config
    return components


def _cached_configs(repo: str, path: Path) -> str:
    """The local folder of `repo`'s diffusers configs (cache or hub), or a clear error saying --config."""
    from huggingface_hub import snapshot_download

    patterns = ["model_index.json", "*/config.json", "*/*config.json", "tokenizer/*", "scheduler/*"]
    try:
        return snapshot_download(repo, allow_patterns=patterns)
    except Exception:  # offline, unreachable or not cached: huggingface_hub raises several kinds
        raise UserError(
            f"{path}: a single-file checkpoint needs the diffusers configs of {repo}, which are not in "
            "the local cache and cannot be downloaded; pass --config FOLDER (a diffusers folder of the "
            "same architecture; configs and tokenizer are enough)"
        ) from None


def check_architecture(components: dict[str, Any]) -> None:
    """Refuse what a SmartBrush UNet cannot be made from, with one line saying why."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet, vae = components["unet"], components["vae"]
    if not isinstance(unet, UNet2DConditionModel) or not isinstance(vae, AutoencoderKL):
        raise UserError(
            f"unsupported architecture: {type(unet).__name__} + {type(vae).__name__} "
            "(expected UNet2DConditionModel + AutoencoderKL)"
        )
    config = unet.config
    if config["addition_embed_type"] is not None or config["encoder_hid_dim"] is not None:
        raise UserError(
            f"unsupported UNet: addition_embed_type={config['addition_embed_type']!r} "
            f"(SDXL-style); convert an SD 1.x model"
        )
    text_width = getattr(components["text_encoder"].config, "hidden_size", None)
    if text_width != config["cross_attention_dim"]:
        raise UserError(
            f"the text encoder's width {text_width} does not match the UNet's cross_attention_dim "
            f"{config['cross_attention_dim']}"
        )
    prediction = components["scheduler_config"].get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise UserError(
            f"prediction_type {prediction!r} is not supported (SmartBrush trains noise prediction)"
        )
    c = vae.config["latent_channels"]
    if config["in_channels"] not in (c, 2 * c + 1) or config["out_channels"] != c:
        raise UserError(
            f"unsupported UNet: {config['in_channels']} -> {config['out_channels']} channels; expected "
            f"text-to-image ({c} -> {c}) or inpainting ({2 * c + 1} -> {c})"
        )


# -- conversion --------------------------------------------------------------------------------------


def smartbrush_pipeline_from(
    parts: dict[str, Any], *, mask_head: bool = True, precision_conditioning: bool = True
):
    """A SmartBrushPipeline from the components `load_source` gives: the UNet gets the surgery."""
    from diffusers import DDIMScheduler

    from smartbrush.method.model import smartbrush_unet_from
    from smartbrush.method.pipeline import SmartBrushPipeline

    unet = smartbrush_unet_from(
        parts["unet"],
        image_channels=parts["vae"].config.latent_channels,
        mask_head=mask_head,
        precision_conditioning=precision_conditioning,
    )
    return SmartBrushPipeline(
        unet=unet.eval(),
        scheduler=DDIMScheduler.from_config(parts["scheduler_config"]),
        text_encoder=parts["text_encoder"].eval(),
        tokenizer=parts["tokenizer"],
        vae=parts["vae"].eval(),
    )


def convert(
    src: str | Path,
    out: str | Path,
    *,
    mask_head: bool = True,
    precision_conditioning: bool = True,
    config: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert SRC (folder, hub id or single file) into a SmartBrush pipeline folder OUT."""
    out = Path(out).expanduser()
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise UserError(f"{out} already exists and is not empty (use --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a folder")
    pipe = smartbrush_pipeline_from(
        load_source(src, config), mask_head=mask_head, precision_conditioning=precision_conditioning
    )
    # write next to OUT and move into place, so a failure never leaves a half-written model
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        pipe.save_pretrained(staging, safe_serialization=True)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


# -- command line ------------------------------------------------------------------------------------

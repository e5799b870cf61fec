"""What `fill` and `batch` share: the fill flags (made from protocol.FILL_OPTIONS), the backend that
runs a fill (a daemon through smartbrush.wire.client, or --local: the daemon's own job code in this
process, so both give the same pixels) and image files in and out.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from smartbrush.wire import protocol
from smartbrush.wire.client import Client, DaemonUnavailable, SmartBrushError, resolve_endpoint
from smartbrush.wire.errors import UserError

StepCallback = Callable[[int, int], None]


class DaemonGone(UserError):
    """The daemon stopped answering in the middle of a run."""


HELLO_TIMEOUT = 5.0


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        help=f"daemon endpoint (env {protocol.ENDPOINT_ENV}; default: your own daemon's socket, "
        f"{protocol.default_endpoint()})",
    )
    parser.add_argument("--curve-dir", help=f"CURVE key folder (env {protocol.CURVE_DIR_ENV})")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds of daemon silence before giving up"
    )


CLI_FILL_OPTIONS = (
    "negative_prompt",
    "precision",
    "steps",
    "guidance",
    "seed",
    "detail",
)  # + --variations


def add_option_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """A --flag for one of protocol.FILL_OPTIONS, with its type, default, range and help."""
    option = protocol.FILL_OPTIONS[name]
    kind = parse_precision if name == "precision" else option.kind
    shown = "" if option.default is None else f" (default {option.default})"
    # ranges worth reading (not the seed's 2**63 nor precision's "auto")
    has_range = option.kind is not str and option.high < 2**31 and name != "precision"
    limits = f" [{option.low:g}..{option.high:g}]" if has_range else ""
    parser.add_argument(
        "--" + name.replace("_", "-"),
        type=kind,
        default=option.default,
        choices=option.choices or None,
        help=f"{option.help}{limits}{shown}",
    )


def add_fill_options(parser: argparse.ArgumentParser) -> None:
    for name in CLI_FILL_OPTIONS:
        add_option_argument(parser, name)
    parser.add_argument(
        "--model", help="model for --local (default demo); checked against the daemon's"
    )
    local = parser.add_argument_group("in-process")
    local.add_argument("--local", action="store_true", help="run the model here, not on the daemon")
    local.add_argument("--device", default="auto", help="device for --local (default auto)")
    local.add_argument("--dtype", default="auto", help="dtype for --local (default auto)")
    add_connection_options(parser)


def parse_box(text: str) -> list[int]:
    try:
        box = [int(part) for part in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H (four integers), got {text!r}")
    return box


def parse_precision(text: str) -> float | str:
    if text == protocol.PRECISION_AUTO:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a number in [0, 1] or "auto", got {text!r}'
        ) from None


# --- backends: the daemon or an in-process pipeline -------------------------------------------------
class DaemonBackend:
    """Runs fills on a daemon through smartbrush.wire.client."""

    def __init__(self, args: argparse.Namespace) -> None:
        try:
            self.client = Client(args.endpoint, timeout=args.timeout, curve_dir=args.curve_dir)
            self.client.timeout = min(HELLO_TIMEOUT, args.timeout)
            self.info = self.client.hello()
        except DaemonUnavailable:
            raise UserError(
                f"no SmartBrush daemon answers at {resolve_endpoint(args.endpoint)}; start one with "
                "`smartbrush serve` in another terminal, or run in this process with --local"
            ) from None
        except SmartBrushError as error:
            raise UserError(str(error)) from None
        self.client.timeout = args.timeout
        if args.model and args.model != self.info["model"]:
            raise UserError(
                f"the daemon at {self.client.endpoint} serves model {self.info['model']!r}, not "
                f"{args.model!r}; restart it with --model {args.model} or use --local"
            )
        self.name = (
            f"daemon at {self.client.endpoint} (model {self.info['model']}, {self.info['device']})"
        )

    def fill(self, request: dict[str, Any], on_step: StepCallback) -> dict[str, Any]:
        def on_message(message: dict[str, Any]) -> None:
            if message["type"] == protocol.PROGRESS:
                on_step(message["step"], message["total"])

        return self.client.fill(request, on_progress=on_message)

    def close(self) -> None:
        self.client.close()


class LocalBackend:
    """Runs fills in this process, with the daemon's own job code."""

    def __init__(self, args: argparse.Namespace) -> None:
        from smartbrush.runtime.loading import load_pipeline, resolve_devices

        device = resolve_devices(args.device)[0]
        model = args.model or "demo"
        self.pipeline = load_pipeline(model, device, args.dtype)
        self.pipeline.set_progress_bar_config(disable=True)
        self.name = f"in-process model {model} on {device}"

    def fill(self, request: dict[str, Any], on_step: StepCallback) -> dict[str, Any]:
        from smartbrush.runtime.jobs import accept_job, run_job

        job = accept_job({"type": protocol.FILL, **request})
        return run_job(self.pipeline, job, lambda step, total, preview: on_step(step, total))

    def close(self) -> None:
        pass


def open_backend(args: argparse.Namespace) -> DaemonBackend | LocalBackend:
    return LocalBackend(args) if args.local else DaemonBackend(args)


def run_one(
    backend: Any, request: dict[str, Any], description: str = "fill", show_steps: bool = True
) -> dict[str, Any]:
    """One fill with a tqdm progress bar over the denoising steps; errors become UserError."""
    from tqdm import tqdm

    steps = request.get("steps", 20)
    with tqdm(
        total=steps, desc=description, unit="step", leave=False, disable=not show_steps
    ) as bar:

        def on_step(step: int, total: int) -> None:
            bar.total = total
            bar.update(step - bar.n)

        try:
            return backend.fill(request, on_step)
        except DaemonUnavailable as error:
            raise DaemonGone(str(error)) from None
        except (SmartBrushError, ValueError) as error:  # ValueError: --local's word for bad input
            raise UserError(str(error)) from None


# --- image files ----------------------------------------------------------------------------------
def read_image(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"{path}: not a readable image ({error})") from None


def build_request(
    image_path: Path,
    prompt: str,
    *,
    mask_path: Path | None = None,
    box: list[int] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A fill request from files on disk (raw pixels)."""
    image = read_image(image_path, "RGB")
    request: dict[str, Any] = {
        "image": protocol.raw_image(image.width, image.height, "RGB", image.tobytes()),
        "prompt": prompt,
        **{key: value for key, value in options.items() if value is not None},
    }
    if mask_path is not None:
        mask = read_image(mask_path, "L")
        if mask.size != image.size:
            raise UserError(
                f"mask {mask_path} is {mask.width}x{mask.height} but image {image_path} is "
                f"{image.width}x{image.height}"
            )
        request["mask"] = protocol.raw_image(mask.width, mask.height, "L", mask.tobytes())
    else:
        request["box"] = box
    return request  # checked once, by the client or (--local) the job decoder


def numbered(path: Path, index: int, count: int) -> Path:
    """OUT for a single result; OUT_1, OUT_2, ... (before the suffix) for variations."""
    return path if count == 1 else path.with_name(f"{path.stem}_{index + 1}{path.suffix}")


def check_writable_image_path(path: Path) -> None:
    if path.suffix.lower() not in Image.registered_extensions():
        raise UserError(f"{path}: unknown image type {path.suffix!r}; use .png, .jpg, .webp, ...")


def save_atomically(image: Image.Image, path: Path) -> None:
    """Write next to the target, then rename: an interrupted run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    image.save(partial, format=Image.registered_extensions()[path.suffix.lower()])
    os.replace(partial, path)


def wire_to_pil(image: dict[str, Any]) -> Image.Image:
    return Image.frombytes(image["mode"], (image["width"], image["height"]), image["data"])

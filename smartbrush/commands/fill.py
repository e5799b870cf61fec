"""CLI commands around the daemon: fill, batch, info, serve, keys.

`fill` and `batch` talk to a running daemon (`smartbrush serve`) by default and run the model in-process
with --local; both paths go through the same job code (smartbrush.jobs), so they give the same pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from smartbrush.cli import UserError
from smartbrush.wire import protocol
from smartbrush.wire.client import Client, DaemonUnavailable, SmartBrushError, resolve_endpoint

StepCallback = Callable[[int, int], None]


class DaemonGone(UserError):
    """The daemon stopped answering in the middle of a run."""


HELLO_TIMEOUT = 5.0


def register(subparsers: argparse._SubParsersAction) -> None:
    fill = subparsers.add_parser(
        "fill",
        help="fill a masked region of an image with an object described by a prompt",
        description="Fill a region of IMAGE with an object described by --prompt. Runs on the "
        "daemon (`smartbrush serve`) when one answers, in this process with --local.",
    )
    fill.add_argument("image", type=Path, help="input image")
    fill.add_argument("-o", "--output", type=Path, required=True, help="output image path")
    where = fill.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", type=Path, help="mask image (8-bit gray, white = fill, soft ok)")
    where.add_argument("--box", type=_parse_box, help="rectangle to fill: X,Y,W,H in pixels")
    what = fill.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="what to put there")
    what.add_argument(
        "--remove",
        action="store_const",
        const="",
        dest="prompt",
        help="erase the object under the mask and continue the background (same as --prompt '')",
    )
    fill.add_argument("--save-mask", type=Path, help="also write the predicted object mask here")
    _add_fill_options(fill)
    add_option_argument(fill, "variations")
    fill.set_defaults(func=run_fill_command)

    batch = subparsers.add_parser(
        "batch",
        help="run many fills from a JSON-lines manifest (resumable)",
        description="One JSON object per line: image, mask or box, prompt, and optionally "
        "negative_prompt, precision, seed, steps, guidance, output (file name). Paths are relative "
        "to the manifest. Outputs that exist are skipped, so rerunning resumes.",
    )
    batch.add_argument("manifest", type=Path, help="JOBS.jsonl")
    batch.add_argument("-o", "--output-dir", type=Path, required=True, help="folder for results")
    _add_fill_options(batch)
    batch.set_defaults(func=run_batch_command)

    info = subparsers.add_parser("info", help="show the daemon's status, model, device, endpoint")
    _add_connection_options(info)
    info.set_defaults(func=run_info_command)

    from smartbrush.daemon import server

    serve = subparsers.add_parser(
        "serve",
        help="start the SmartBrush daemon (same as `smartbrushd`)",
        description=server.__doc__,
    )
    server.build_parser(serve)
    serve.set_defaults(func=server.serve)

    keys = subparsers.add_parser(
        "keys",
        help="create CURVE keys for a daemon reachable over the network",
        description="Creates DIR/server.key(_secret), DIR/client.key(_secret) and "
        "DIR/authorized_clients/. The daemon uses --curve-dir DIR; clients need a copy of DIR "
        "without server.key_secret (SMARTBRUSH_CURVE_DIR or --curve-dir).",
    )
    keys.add_argument("directory", type=Path)
    keys.set_defaults(func=run_keys_command)


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        help=f"daemon endpoint (env {protocol.ENDPOINT_ENV}; default {protocol.DEFAULT_ENDPOINT})",
    )
    parser.add_argument("--curve-dir", help=f"CURVE key folder (env {protocol.CURVE_DIR_ENV})")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds of daemon silence before giving up"
    )


CLI_FILL_OPTIONS = ("negative_prompt", "precision", "steps", "guidance", "seed")  # + --variations


def add_option_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """A --flag for one of protocol.FILL_OPTIONS, with its type, default, range and help."""
    option = protocol.FILL_OPTIONS[name]
    kind = _parse_precision if name == "precision" else option.kind
    shown = "" if option.default is None else f" (default {option.default})"
    # ranges worth reading (not the seed's 2**63 nor precision's "auto")
    has_range = option.kind is not str and option.high < 2**31 and name != "precision"
    limits = f" [{option.low:g}..{option.high:g}]" if has_range else ""
    parser.add_argument(
        "--" + name.replace("_", "-"),
        type=kind,
        default=option.default,
        help=f"{option.help}{limits}{shown}",
    )


def _add_fill_options(parser: argparse.ArgumentParser) -> None:
    for name in CLI_FILL_OPTIONS:
        add_option_argument(parser, name)
    parser.add_argument(
        "--model", help="model for --local (default demo); checked against the daemon's"
    )
    local = parser.add_argument_group("in-process")
    local.add_argument("--local", action="store_true", help="run the model here, not on the daemon")
    local.add_argument("--device", default="auto", help="device for --local (default auto)")
    local.add_argument("--dtype", default="auto", help="dtype for --local (default auto)")
    _add_connection_options(parser)


def _parse_box(text: str) -> list[int]:
    try:
        box = [int(part) for part in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H (four integers), got {text!r}")
    return box


def _parse_precision(text: str) -> float | str:
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
        from smartbrush.loading import load_pipeline, resolve_devices

        device = resolve_devices(args.device)[0]
        model = args.model or "demo"
        self.pipeline = load_pipeline(model, device, args.dtype)
        self.pipeline.set_progress_bar_config(disable=True)
        self.name = f"in-process model {model} on {device}"

    def fill(self, request: dict[str, Any], on_step: StepCallback) -> dict[str, Any]:
        from smartbrush.jobs import accept_job, run_job

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


# --- fill ---------------------------------------------------------------------------------------------
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


def run_fill_command(args: argparse.Namespace) -> int:
    check_writable_image_path(args.output)
    if args.save_mask is not None:
        check_writable_image_path(args.save_mask)
    request = build_request(
        args.image,
        args.prompt,
        mask_path=args.mask,
        box=args.box,
        negative_prompt=args.negative_prompt,
        precision=args.precision,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        variations=args.variations,
    )
    backend = open_backend(args)
    try:
        result = run_one(backend, request)
    finally:
        backend.close()
    count = len(result["images"])
    for index in range(count):
        output = numbered(args.output, index, count)
        save_atomically(wire_to_pil(result["images"][index]), output)
        line = (
            f"wrote {output} (seed {result['seeds'][index]}, precision {result['precision']:.2f})"
        )
        if args.save_mask is not None:
            mask_path = numbered(args.save_mask, index, count)
            save_atomically(wire_to_pil(result["masks"][index]), mask_path)
            line += f", mask {mask_path}"
        print(line)
    return 0


# --- batch --------------------------------------------------------------------------------------------
BATCH_KEYS = {
    "image", "mask", "box", "prompt", "negative_prompt", "precision", "seed", "steps", "guidance", "output",
}  # fmt: skip


def parse_batch_line(
    text: str, number: int, base: Path, defaults: dict[str, Any]
) -> dict[str, Any]:
    """One manifest line -> {"image", "mask"/"box", "prompt", "options", "output"}; ValueError if bad."""
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(entry, dict):
        raise ValueError("a line must be a JSON object")
    unknown = sorted(set(entry) - BATCH_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(BATCH_KEYS))}"
        )
    if not isinstance(entry.get("image"), str):
        raise ValueError('needs "image": a file path')
    if not isinstance(entry.get("prompt"), str):
        raise ValueError('needs "prompt": a string')
    if ("mask" in entry) == ("box" in entry):
        raise ValueError('needs exactly one of "mask" (a file path) and "box" ([x, y, w, h])')
    image = base / entry["image"]
    output = entry.get("output") or f"{Path(entry['image']).stem}_{number}.png"
    if not isinstance(output, str) or Path(output).name != output:
        raise ValueError('"output" must be a plain file name')
    check_writable_image_path(Path(output))
    options = {
        key: entry.get(key, defaults.get(key))
        for key in ("negative_prompt", "precision", "seed", "steps", "guidance")
    }
    mask = base / entry["mask"] if isinstance(entry.get("mask"), str) else None
    if "mask" in entry and mask is None:
        raise ValueError('"mask" must be a file path')
    return {
        "image": image,
        "mask": mask,
        "box": entry.get("box"),
        "prompt": entry["prompt"],
        "options": options,
        "output": output,
    }


def run_batch_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        lines = args.manifest.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{args.manifest}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{args.manifest}: cannot read ({error})") from None
    defaults = {
        "negative_prompt": args.negative_prompt,
        "precision": args.precision,
        "seed": args.seed,
        "steps": args.steps,
        "guidance": args.guidance,
    }
    base = args.manifest.resolve().parent
    entries = [
        (number, text)
        for number, text in enumerate(lines, 1)
        if text.strip() and not text.lstrip().startswith("#")
    ]
    done, skipped, failed = 0, 0, []
    backend = None
    started = time.monotonic()
    try:
        for number, text in tqdm(entries, desc="batch", unit="job"):
            try:
                job = parse_batch_line(text, number, base, defaults)
                output = args.output_dir / job["output"]
                if output.exists():
                    skipped += 1
                    continue
                request = build_request(
                    job["image"],
                    job["prompt"],
                    mask_path=job["mask"],
                    box=job["box"],
                    **job["options"],
                )
            except (UserError, ValueError) as error:
                tqdm.write(f"line {number}: {error}", file=sys.stderr)
                failed.append(number)
                continue
            if backend is None:  # connect (or load the model) only when there is work to do
                backend = open_backend(args)
                tqdm.write(f"batch: running on {backend.name}")
            try:
                result = run_one(backend, request, show_steps=False)
            except DaemonGone as error:
                raise UserError(
                    f"{error}; stopped after {done} done, {skipped} already there. Run the same "
                    "command again to resume."
                ) from None
            except UserError as error:
                tqdm.write(f"line {number}: {error}", file=sys.stderr)
                failed.append(number)
                continue
            save_atomically(wire_to_pil(result["images"][0]), output)
            done += 1
    finally:
        if backend is not None:
            backend.close()
    summary = f"batch: {done} done, {skipped} already there, {len(failed)} failed"
    if failed:
        summary += f" (line{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))})"
    print(f"{summary} in {time.monotonic() - started:.1f} s -> {args.output_dir}")
    return 1 if failed else 0


# --- info, keys ---------------------------------------------------------------------------------------
def run_info_command(args: argparse.Namespace) -> int:
    client = Client(
        args.endpoint, timeout=min(HELLO_TIMEOUT, args.timeout), curve_dir=args.curve_dir
    )
    try:
        info = client.hello()
        status = client.status()
    except DaemonUnavailable:
        print(
            f"no SmartBrush daemon answers at {client.endpoint} (start one with `smartbrush serve`)"
        )
        return 1
    except SmartBrushError as error:
        raise UserError(str(error)) from None
    finally:
        client.close()
    running = ", ".join(
        f"{job['job_id']} step {job['step']}/{job['total']}" for job in status["running"]
    )
    rows = [
        ("endpoint", client.endpoint),
        ("daemon", f"smartbrushd {info['daemon_version']}, protocol {info['protocol_version']}"),
        ("model", info["model"] + (" (loading)" if info.get("loading") else "")),
        ("devices", ", ".join(info["devices"]) or "-"),
        ("dtype", info["dtype"] or "-"),
        ("resolution", f"{info['resolution']} px" if info["resolution"] else "-"),
        (
            "precision levels",
            f"0..{info['num_precision_levels']}" if info["loading"] is False else "-",
        ),
        ("encryption", "CURVE" if info["curve"] else "none (loopback only)"),
        ("running", running or "nothing"),
        ("queued", str(len(status["queued"]))),
        ("jobs done", str(status["jobs_done"])),
        ("uptime", f"{status['uptime']:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def run_keys_command(args: argparse.Namespace) -> int:
    import zmq.auth

    folder: Path = args.directory
    if (folder / "server.key_secret").exists():
        raise UserError(f"{folder} already holds keys; remove it first or choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for name in ("server", "client"):
        public, secret = zmq.auth.create_certificates(folder, name)
        Path(secret).chmod(0o600)
    authorized = folder / "authorized_clients"
    authorized.mkdir(exist_ok=True)
    shutil.copy(folder / "client.key", authorized / "client.key")
    print(f"created CURVE keys in {folder}")
    print(
        f"  daemon:  smartbrush serve --endpoint tcp://0.0.0.0:{protocol.DEFAULT_PORT} --curve-dir {folder}"
    )
    print(
        f"  clients: copy {folder} without server.key_secret, then set "
        f"{protocol.CURVE_DIR_ENV}=<copy> (or --curve-dir) and {protocol.ENDPOINT_ENV}=tcp://HOST:{protocol.DEFAULT_PORT}"
    )
    print(f"  more clients: put their public .key files into {authorized}")
    return 0

"""Run many fills from a JSON-lines manifest: one JSON object per line: image, mask or box, prompt, and
optionally negative_prompt, precision, seed, steps, guidance, output (file name). Paths are relative to
the manifest. Outputs that exist are skipped, so rerunning resumes."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from smartbrush.commands import filling
from smartbrush.wire.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="JOBS.jsonl")
    parser.add_argument("-o", "--output-dir", type=Path, required=True, help="folder for results")
    filling.add_fill_options(parser)


BATCH_KEYS = {"image", "mask", "box", "prompt", "output", *filling.CLI_FILL_OPTIONS}


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
    filling.check_writable_image_path(Path(output))
    options = {key: entry.get(key, defaults.get(key)) for key in filling.CLI_FILL_OPTIONS}
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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        lines = args.manifest.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{args.manifest}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{args.manifest}: cannot read ({error})") from None
    defaults = {name: getattr(args, name) for name in filling.CLI_FILL_OPTIONS}
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
                request = filling.build_request(
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
                backend = filling.open_backend(args)
                tqdm.write(f"batch: running on {backend.name}")
            try:
                result = filling.run_one(backend, request, show_steps=False)
            except filling.DaemonGone as error:
                raise UserError(
                    f"{error}; stopped after {done} done, {skipped} already there. Run the same "
                    "command again to resume."
                ) from None
            except UserError as error:
                tqdm.write(f"line {number}: {error}", file=sys.stderr)
                failed.append(number)
                continue
            filling.save_atomically(filling.wire_to_pil(result["images"][0]), output)
            done += 1
    finally:
        if backend is not None:
            backend.close()
    summary = f"batch: {done} done, {skipped} already there, {len(failed)} failed"
    if failed:
        summary += f" (line{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))})"
    print(f"{summary} in {time.monotonic() - started:.1f} s -> {args.output_dir}")
    return 1 if failed else 0

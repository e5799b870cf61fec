"""The paper's ablation (Table 3) and baselines, in miniature on the shapes world: one command.

    python benchmarks/ablation.py --docs [--train-steps 800] [--n 200] [--steps 20] [--out runs/ablation]

Every trained row gets the same budget (`--train-steps` of training from scratch, the shapes model's
architecture), the same seeds and the same test scenes. Phases are resumable: a killed run continues its
training from the last checkpoint, finished evaluation chunks are kept, so rerunning the same command picks
up where it stopped. Start the same command once per core and the runs share the work (lock files in OUT).
The table goes to OUT/table.md (and docs/ablation-table.md with --docs), figures to
docs/ablation-fig5.png and docs/ablation-fig6.png, every row on the same box masks to docs/ablation-rows.png.

Rows (what each changes, relative to full SmartBrush):
  full                  the paper's recipe
  no_bg_preservation    the full model, sampled without predicted-mask blending
  no_precision          trained on exact masks only, no precision input
  no_multitask          no text-to-image examples
  labels_only           prompts are class labels, never captions
  no_mask_head          no mask output, no DICE loss (so no background preservation either)
  stable_inpainting     baseline: random box / brush masks, no precision, no mask head
  stable_inpainting_compat  that baseline + compat mode (DiffEdit mask estimate, background preservation)
  blended               baseline: trained on text-to-image only, sampled with known-region replacement
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 50  # test scenes per evaluation chunk; the spread over chunks gives the uncertainty

# row -> (training run, recipe overrides, sampler options)
TRAINED = {
    "full": [],
    "no_precision": ["recipe.precision_conditioning=false"],
    "no_multitask": ["recipe.multitask=false"],
    "labels_only": ["recipe.captions=false"],
    "no_mask_head": ["recipe.mask_head=false"],
    "stable_inpainting": ["recipe.random_masks=true"],
    "blended": ["recipe.t2i_fraction=1.0"],
}
ROWS = {
    "full": ("full", {}),
    "no_bg_preservation": ("full", {"preserve_background": False}),
    "no_precision": ("no_precision", {}),
    "no_multitask": ("no_multitask", {}),
    "labels_only": ("labels_only", {}),
    "no_mask_head": ("no_mask_head", {"preserve_background": False}),  # not compat mode
    "stable_inpainting": ("stable_inpainting", {"preserve_background": False}),
    "stable_inpainting_compat": ("stable_inpainting", {"preserve_background": True}),
    "blended": ("blended", {"blended_sampling": True, "preserve_background": False}),
}
METRICS = [
    ("exact", "colour_accuracy", "colour (exact)"),
    ("exact", "shape_accuracy", "shape (exact)"),
    ("exact", "exact_mask_iou", "exact-mask IoU"),
    ("box", "colour_accuracy", "colour (box)"),
    ("box", "shape_accuracy", "shape (box)"),
    ("box", "predicted_mask_iou", "pred-mask IoU (box)"),
    ("box", "background_psnr", "bg PSNR dB (box)"),
]


class Sampler:
    """A pipeline with some sampler options fixed (what `evaluate` calls like a pipeline)."""

    def __init__(self, pipe, **options):
        self.pipe, self.options = pipe, options

    def __call__(self, *args, **kwargs):
        return self.pipe(*args, **{**kwargs, **self.options})


def claim(lock: Path) -> bool:
    """Take a piece of work unless a live process holds its lock file: two runs of this command (one per
    core) share the training runs and evaluation chunks. A lock left by a killed run is taken over."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(lock.read_text()), 0)
            return False
        except (ValueError, ProcessLookupError):
            lock.unlink(missing_ok=True)
            return claim(lock)
        except PermissionError:  # alive, another user's
            return False
    os.write(descriptor, str(os.getpid()).encode())
    os.close(descriptor)
    return True


def is_trained(run_dir: Path, steps: int) -> bool:
    done = run_dir / "done"
    return done.exists() and done.read_text().split() == ["trained", str(steps)]


def train_all(out: Path, steps: int, rows: list[str]) -> None:
    needed = {ROWS[row][0] for row in rows}
    for name, overrides in TRAINED.items():
        run_dir = out / name
        # Another budget continues from the newest checkpoint (the learning rate is constant).
        if name not in needed or is_trained(run_dir, steps) or not claim(out / f"{name}.lock"):
            continue
        print(f"== training {name} ({steps} steps)", flush=True)
        command = [sys.executable, "-m", "smartbrush.research.training", str(ROOT / "configs" / "ablation.toml"),
                   "--set", f"run.output_dir={json.dumps(str(run_dir))}",
                   "--set", f"train.max_steps={steps}", "--set", "train.max_minutes=0", *sum((["--set", o] for o in overrides), [])]  # fmt: skip
        subprocess.run(command, check=True)
        (run_dir / "done").write_text(f"trained {steps}\n")
        (out / f"{name}.lock").unlink()


def evaluate_all(
    out: Path, n: int, steps: int, rows: list[str], train_steps: int,
    classifier_path: Path | None = None,
) -> dict:  # fmt: skip
    """Evaluate every chunk of every row, waiting for models another run is still training."""
    import torch

    from smartbrush.research.shapes_eval import CLASSIFIER, evaluate
    from smartbrush.runtime.loading import load_pipeline

    classifier = CLASSIFIER.load(classifier_path or CLASSIFIER.default_path)

    def chunk_path(row: str, start: int) -> Path:
        return out / "eval" / f"{row}-train{train_steps}-steps{steps}-{start:04d}.json"

    def finished(row: str, start: int) -> bool:  # and sampled with the row's present options
        path = chunk_path(row, start)
        return path.exists() and json.loads(path.read_text()).get("sampler") == ROWS[row][1]

    todo = [(row, start) for row in rows for start in range(0, n, CHUNK)]
    while todo:
        waiting = []
        for row, start in todo:
            if finished(row, start):
                continue
            path = chunk_path(row, start)
            run, options = ROWS[row]
            lock = path.with_suffix(".lock")
            if not is_trained(out / run, train_steps) or not claim(lock):
                waiting.append((row, start))
                continue
            print(f"== evaluating {row}, scenes {start}..{start + CHUNK - 1}", flush=True)
            pipe = load_pipeline(out / run / "pipeline")
            pipe.set_progress_bar_config(disable=True)
            torch.manual_seed(0)
            report = evaluate(
                Sampler(pipe, **options), classifier, n=CHUNK, steps=steps, start=start
            )
            path.write_text(json.dumps({**report, "sampler": options}, default=float))
            lock.unlink()
        if waiting:
            time.sleep(30)  # another run is training a model or evaluating a chunk
        todo = waiting
    return {
        row: [json.loads(chunk_path(row, start).read_text()) for start in range(0, n, CHUNK)]
        for row in rows
    }


def summarise(chunks: list[dict], mode: str, metric: str) -> tuple[float, float]:
    """Mean over all scenes and the standard error over chunks (PSNR: pooled over chunks in dB)."""
    values = np.array([chunk[mode][metric] for chunk in chunks], dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    spread = finite.std(ddof=1) / math.sqrt(finite.size) if finite.size > 1 else float("nan")
    return float(finite.mean()), float(spread)


def table(reports: dict, train_steps: int, n: int, steps: int) -> str:
    head = "| row | " + " | ".join(label for _, _, label in METRICS) + " |"
    lines = [
        f"Budget: {train_steps} training steps of batch 32 per trained row (same architecture, seeds and "
        f"recipe code); {n} test scenes per row in {n // CHUNK} chunks of {CHUNK}; {steps} sampling steps, "
        "guidance 4. Cells: mean ± standard error over the chunks.",
        "",
        head,
        "|" + "---|" * (len(METRICS) + 1),
    ]
    for row, chunks in reports.items():
        cells = []
        for mode, metric, _ in METRICS:
            mean, spread = summarise(chunks, mode, metric)
            digits = 1 if metric == "background_psnr" else 3
            cells.append(f"{mean:.{digits}f} ± {spread:.{digits}f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    real = next(iter(reports.values()))[0]["classifier_on_real_objects"]
    lines += ["", f"Classifier on the real objects of the same scenes: colour "
              f"{real['colour_accuracy']:.3f}, shape {real['shape_accuracy']:.3f} (first chunk)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def figures(out: Path, table_rows: list[str]) -> None:
    """Figure 5: one prompt across precision, full vs Stable-Inpainting-style; Figure 6: box mask,
    full with vs without background preservation. Predicted masks shown under each result."""
    import PIL.Image
    import PIL.ImageDraw

    from smartbrush.method.masks import box_mask
    from smartbrush.research import world
    from smartbrush.runtime.loading import load_pipeline

    def load(run):
        pipe = load_pipeline(out / run / "pipeline")
        pipe.set_progress_bar_config(disable=True)
        return pipe

    pipes = {
        run: load(run)
        for run in {"full", "stable_inpainting"} | {ROWS[row][0] for row in table_rows}
    }
    full, baseline = pipes["full"], pipes["stable_inpainting"]
    scale = 4

    def tile(array, label):
        image = PIL.Image.fromarray(array).resize(
            (32 * scale, 32 * scale), PIL.Image.Resampling.NEAREST
        )
        canvas = PIL.Image.new("RGB", (image.width, image.height + 14), "white")
        canvas.paste(image.convert("RGB"), (0, 14))
        PIL.ImageDraw.Draw(canvas).text((2, 1), label, fill="black")
        return canvas

    def grid(rows):
        width = max(len(r) for r in rows) * (32 * scale + 4)
        height = len(rows) * (32 * scale + 18)
        sheet = PIL.Image.new("RGB", (width, height), "white")
        for y, row in enumerate(rows):
            for x, cell in enumerate(row):
                sheet.paste(cell, (x * (32 * scale + 4), y * (32 * scale + 18)))
        return sheet

    scene = world.make_scene("test", 3)
    target = scene.target
    assert target is not None  # make_scene places a target unless target=False
    prompt = target.short_caption
    rows = []
    for name, pipe, preserve in (("SmartBrush", full, True), ("SI-style", baseline, False)):
        images, masks_row = (
            [tile(scene.background, prompt[:22])],
            [tile(target.mask.astype(np.uint8) * 255, "exact mask")],
        )
        for p in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
            result = pipe(scene.background, target.mask, prompt, precision=p, seed=3,
                          num_inference_steps=20, preserve_background=preserve)  # fmt: skip
            images.append(tile(np.asarray(result.images[0]), f"{name} p={p:.1f}"))
            masks_row.append(tile(np.asarray(result.masks[0]), "predicted mask"))
        rows += [images, masks_row]
    grid(rows).save(ROOT / "docs" / "ablation-fig5.png")

    rows = []
    for index in (5, 11, 17, 23):
        scene = world.make_scene("test", index)
        target = scene.target
        assert target is not None  # make_scene places a target unless target=False
        box = box_mask(target.mask)
        prompt = target.short_caption
        row = [tile(scene.background, prompt[:22])]
        for label, keep in (("with bg pres.", True), ("without", False)):
            result = full(scene.background, box, prompt, precision=1.0, seed=index,
                          num_inference_steps=20, preserve_background=keep)  # fmt: skip
            row += [
                tile(np.asarray(result.images[0]), label),
                tile(np.asarray(result.masks[0]), "predicted mask"),
            ]
        rows.append(row)
    grid(rows).save(ROOT / "docs" / "ablation-fig6.png")

    # Every row of the table on the same box-mask scenes (what the numbers are made of).
    sheet = []
    for index in (5, 11, 17, 23):
        scene = world.make_scene("test", index)
        target = scene.target
        assert target is not None  # make_scene places a target unless target=False
        prompt = target.short_caption
        cells = [tile(scene.background, prompt[:22])]
        for row in table_rows:
            run, options = ROWS[row]
            result = pipes[run](scene.background, box_mask(target.mask), prompt, precision=1.0,
                                seed=index, num_inference_steps=20, **options)  # fmt: skip
            cells.append(tile(np.asarray(result.images[0]), row[:22]))
        sheet.append(cells)
    grid(sheet).save(ROOT / "docs" / "ablation-rows.png")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train-steps", type=int, default=800, help="training steps per trained row"
    )
    parser.add_argument("--n", type=int, default=200, help="test scenes per row (multiple of 50)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "ablation")
    parser.add_argument("--docs", action="store_true", help="also write docs/ablation-table.md")
    parser.add_argument("--skip-figures", action="store_true")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS),
                        help="only these rows (default: all)")  # fmt: skip
    parser.add_argument(
        "--classifier", type=Path, help="default: the one shipped with the shapes model"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    train_all(args.out, args.train_steps, args.rows)
    reports = evaluate_all(
        args.out, args.n, args.steps, args.rows, args.train_steps, args.classifier
    )
    text = table(reports, args.train_steps, args.n, args.steps)
    (args.out / "table.md").write_text(text)
    if args.docs:
        (ROOT / "docs" / "ablation-table.md").write_text(text)
    print(text)
    if not args.skip_figures and {"full", "stable_inpainting"} <= set(args.rows):
        figures(args.out, args.rows)


if __name__ == "__main__":
    main()

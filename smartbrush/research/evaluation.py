"""The evaluation frame both worlds are measured in, and the classifier both name painted objects with.

`smartbrush eval` fills held-out test scenes of a world: for each scene the model gets the object-free
background, a mask where the scene's object was and a prompt for it, twice:

    exact mode   the exact instance mask, precision 0      box mode   its bounding box, precision 1

(seed = scene index). What counts as the generated object is the world's own rule (shapes_eval: changed
pixels of the prompted colour; objects_eval: changed pixels), always inside the box. Measured here, the
same way in both worlds:

    exact-mask IoU       the generated object vs the given mask (reported for both modes; the goal reads
                         exact mode)
    predicted-mask IoU   the pipeline's predicted object mask vs the generated object (goal: box mode)
    PSNR / SSIM          pooled over the pixels of a region of every scene (Pool), not averaged per scene
    accuracies           a small CNN trained on the world's real objects names the box crop of the result
                         (ClassifierSpec: one net, crop, training loop, file format; each world says its
                         sizes and label sets); its accuracy on the real objects is reported beside
    goals                each a threshold (Goal): most at least, some at most; a goal read in both modes
                         takes the worse of the two

The worlds plug in the rest: smartbrush.research.shapes_eval (coloured shapes, 32 px) and
smartbrush.research.objects_eval (objects on held-out photos; also removal and colour words).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from smartbrush.runtime.registry import EMBEDDED_MODELS

MODES = ("exact", "box")  # precision 0 with the exact mask, precision 1 with its bounding box


# -- the classifier ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierSpec:
    """One world's classifier: its net's sizes, its label sets (heads) and how its crops are cut.

    Samples for training are tuples (image, box (x, y, width, height), label index per head)."""

    what: str  # in messages: "no <what> at PATH"
    model: str  # the embedded model it ships with (smartbrush.runtime.registry.EMBEDDED_MODELS)
    file_name: str
    heads: tuple[tuple[str, tuple[str, ...]], ...]  # (name in the file's metadata, labels) per head
    crop: int  # input: the object's square box crop, resized to crop x crop
    stages: tuple[tuple[int, ...], ...]  # conv widths per stage; each stage ends with a 2x max-pool
    hidden: int  # width of the hidden linear layer
    dropout: float  # before the last layer (0: none)
    box_scale: float  # the crop's side: the box's longer side * box_scale + 2
    relative_jitter: (
        bool  # training jitter (dy, dx, d side): in pixels (False) or shares of the side
    )
    jitter: tuple[tuple[float, float, float], tuple[float, float, float]]  # uniform, low and high
    steps: int  # training steps
    train_hint: str  # how to make a missing one ({path}: where it was looked for)
    mismatch: str  # "PATH was trained on <mismatch>; retrain it"

    @property
    def default_path(self) -> Path:
        """The shipped one, next to its embedded model."""
        return EMBEDDED_MODELS[self.model] / self.file_name

    @property
    def outputs(self) -> int:
        return sum(len(labels) for _, labels in self.heads)

    def net(self):
        from torch import nn

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        layers, width = [], 3
        for stage in self.stages:
            for out in stage:
                layers += block(width, out)
                width = out
            layers.append(nn.MaxPool2d(2))
        side = self.crop // 2 ** len(self.stages)
        layers += [nn.Flatten(), nn.Linear(width * side * side, self.hidden), nn.ReLU()]
        if self.dropout:
            layers.append(nn.Dropout(self.dropout))
        layers.append(nn.Linear(self.hidden, self.outputs))
        return nn.Sequential(*layers)

    def box_crop(self, image: np.ndarray, box, jitter=None) -> np.ndarray:
        """The square crop around box (x, y, width, height), crop x crop, CHW float in [-1, 1]."""
        x, y, width, height = box
        side = max(height, width) * self.box_scale + 2
        cy, cx = y + height / 2, x + width / 2
        if jitter is not None:  # loose boxes, as fills leave them
            if self.relative_jitter:
                cy, cx, side = cy + jitter[0] * side, cx + jitter[1] * side, side * jitter[2]
            else:
                cy, cx, side = cy + jitter[0], cx + jitter[1], side + jitter[2]
        return square_crop(image, cx, cy, side, self.crop)

    def train(
        self, samples: Iterable[tuple], steps: int | None = None, batch: int = 64, seed: int = 0
    ):
        """Train on samples (read after seeding, so a generator of scenes gives the same net each time)."""
        import torch
        import torch.nn.functional as F

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        data = list(samples)
        labels = [torch.tensor([d[2 + h] for d in data]) for h in range(len(self.heads))]
        sizes = [len(names) for _, names in self.heads]
        steps = self.steps if steps is None else steps
        net = self.net()
        optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
        net.train()
        for _ in range(steps):
            picks = rng.integers(0, len(data), batch)
            jitter = rng.uniform(*self.jitter, size=(batch, 3))
            crops = np.stack(
                [
                    self.box_crop(data[k][0], data[k][1], j)
                    for k, j in zip(picks, jitter, strict=True)
                ]
            )
            logits = net(torch.from_numpy(crops)).split(sizes, dim=1)
            losses = [F.cross_entropy(part, truth[picks]) for part, truth in zip(logits, labels)]
            loss = sum(losses[1:], losses[0])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        return net.eval()

    def save(self, net, path: str | Path) -> None:
        from safetensors.torch import save_file

        meta = {"crop": str(self.crop), **{head: ",".join(names) for head, names in self.heads}}
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(path), metadata=meta)

    def load(self, path: str | Path):
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no {self.what} at {path}; train one with {self.train_hint.format(path=path)}"
            )
        with safe_open(str(path), framework="pt") as file:
            meta = file.metadata()
            state = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
        if any(meta.get(head) != ",".join(names) for head, names in self.heads):
            raise ValueError(f"{path} was trained on {self.mismatch}; retrain it")
        net = self.net()
        net.load_state_dict(state)
        return net.eval()

    def classify(self, net, images: list[np.ndarray], boxes: list) -> tuple[list[str], ...]:
        """The label names per head (in the order of `heads`) of the objects in `images` at `boxes`."""
        import torch

        with torch.no_grad():
            crops = np.stack([self.box_crop(i, b) for i, b in zip(images, boxes, strict=True)])
            logits = net(torch.from_numpy(crops))
        named, start = [], 0
        for _, names in self.heads:
            part = logits[:, start : start + len(names)]
            named.append([names[k] for k in part.argmax(1).tolist()])
            start += len(names)
        return tuple(named)


def square_crop(image: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """The square of `side` around (cx, cy), resized to size x size (grey outside the image), as a
    classifier's CHW input in [-1, 1]."""
    import PIL.Image

    extent = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    pil = PIL.Image.fromarray(image).transform(
        (size, size),
        PIL.Image.Transform.EXTENT,
        extent,
        PIL.Image.Resampling.BILINEAR,
        fillcolor=(128, 128, 128),
    )
    return np.asarray(pil, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1


# -- measures ----------------------------------------------------------------------------------------------


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def accuracy(named, truths) -> float:
    return mean([n == t for n, t in zip(named, truths, strict=True)])


def psnr(sq_error: float, count: int) -> float:
    """PSNR (dB, 8-bit) of a pooled squared error over `count` values."""
    if count == 0:
        return float("nan")
    mse = sq_error / count
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def region_psnr_ssim(image: np.ndarray, truth: np.ndarray, region: np.ndarray):
    """(squared error sum, pixel count, SSIM sum) over a region, to pool over scenes."""
    from skimage.metrics import structural_similarity

    if not region.any():
        return 0.0, 0, 0.0
    error = (image[region].astype(np.float64) - truth[region]) ** 2
    # full=True without gradient=True gives (mean, map); skimage's inferred type lists every variant
    _, ssim_map = cast(
        tuple[float, np.ndarray],
        structural_similarity(image, truth, channel_axis=-1, full=True, data_range=255),
    )
    return float(error.sum()), int(error.size), float(ssim_map.mean(-1)[region].sum())


class Pool:
    """PSNR and SSIM pooled over the pixels of many scenes."""

    def __init__(self):
        self.sq_error, self.count, self.ssim, self.pixels = 0.0, 0, 0.0, 0

    def add(self, image, truth, region) -> None:
        sq_error, count, ssim = region_psnr_ssim(image, truth, region)
        self.sq_error, self.count = self.sq_error + sq_error, self.count + count
        self.ssim, self.pixels = self.ssim + ssim, self.pixels + int(region.sum())

    def psnr(self) -> float:
        return psnr(self.sq_error, self.count)

    def mean_ssim(self) -> float:
        return self.ssim / self.pixels if self.pixels else float("nan")


# -- the fills ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A test scene as the frame fills it."""

    index: int  # the scene index, also the fills' seed
    scene: Any  # the world's own scene (kept with the examples)
    background: np.ndarray  # what the model fills: the object-free background
    mask: np.ndarray  # the object's exact mask
    prompt: str


@dataclass(frozen=True)
class Fill:
    """One fill of a case, with what the frame measures of it."""

    case: Case
    mode: str  # "exact" or "box"
    out: Any  # the pipeline's output
    after: np.ndarray  # the filled image, RGB
    boxed: np.ndarray  # the object's bounding box, as a mask
    generated: np.ndarray  # the generated object (the world's rule, inside the box)
    predicted: np.ndarray  # the pipeline's predicted object mask

    def ious(self) -> dict:
        return {
            "given_iou": iou(self.generated, self.case.mask),
            "predicted_iou": iou(self.predicted, self.generated),
        }


def fill(pipe, image, mask, prompt, precision, seed, steps, guidance, mask_threshold):
    """(the pipeline's output, its image as RGB)."""
    out = pipe(image, mask, prompt, precision=precision, seed=seed, num_inference_steps=steps,
               guidance_scale=guidance, mask_threshold=mask_threshold)  # fmt: skip
    return out, np.asarray(out.images[0].convert("RGB"))


def fill_both_ways(
    pipe, cases: Iterable[Case], generated_object: Callable[[np.ndarray, Case], np.ndarray],
    steps: int, guidance: float | None, mask_threshold: float,
    examples: list | None = None, keep_examples: int = 0,
) -> Iterator[Fill]:  # fmt: skip
    """Each case filled with its exact mask (precision 0), then with its box (precision 1). The first
    keep_examples cases' fills go to `examples` as (scene, mode, after, predicted mask, prompt)."""
    from smartbrush.method.masks import box_mask

    for case in cases:
        boxed = box_mask(case.mask)
        for mode, mask, precision in (("exact", case.mask, 0.0), ("box", boxed, 1.0)):
            out, after = fill(pipe, case.background, mask, case.prompt, precision, case.index,
                              steps, guidance, mask_threshold)  # fmt: skip
            generated = generated_object(after, case) & boxed
            predicted = np.asarray(out.masks[0]) >= 128
            if examples is not None and len(examples) < keep_examples * 2:
                examples.append((case.scene, mode, after, predicted, case.prompt))
            yield Fill(case, mode, out, after, boxed, generated, predicted)


# -- the report --------------------------------------------------------------------------------------------


def report_header(n: int, steps: int, guidance: float | None, mask_threshold: float) -> dict:
    return {"n": n, "steps": steps, "guidance_scale": guidance, "mask_threshold": mask_threshold}


def mask_ious(rows: list[dict]) -> dict:
    """The two mask IoUs of one mode, from rows with Fill.ious()."""
    return {
        "exact_mask_iou": mean([r["given_iou"] for r in rows]),
        "predicted_mask_iou": mean([r["predicted_iou"] for r in rows]),
    }


@dataclass(frozen=True)
class Goal:
    target: float
    mode: str  # where it is read: "exact", "box", or "both" (the worse of the two)
    at_most: bool = False  # met at or below the target (else at or above)


def judge(report: dict, goals: dict[str, Goal]) -> None:
    """Add report["goals"] (each goal's value) and report["met"]."""
    values = {}
    for key, goal in goals.items():
        if goal.mode == "both":
            values[key] = min(report["exact"][key], report["box"][key])
        else:
            values[key] = report[goal.mode][key]
    report["goals"] = values
    report["met"] = {
        k: bool(v <= goals[k].target) if goals[k].at_most else bool(v >= goals[k].target)
        for k, v in values.items()
    }


def format_header(report: dict, model: str, scenes: str) -> str:
    return (
        f"model {model}: {report['n']} {scenes}, {report['steps']} steps, "
        f"guidance {report['guidance_scale']}"
    )


IOU_FIELDS = ("exact-mask IoU {exact_mask_iou:.3f}", "predicted-mask IoU {predicted_mask_iou:.3f}")


def format_mode(report: dict, mode: str, fields: Iterable[str]) -> str:
    """One mode's line: each field a format string over the mode's measures."""
    measures = report[mode]
    return f"  {mode:5s} mask: " + "  ".join(field.format(**measures) for field in fields)


def format_goals(report: dict, goals: dict[str, Goal]) -> str:
    # where goals point both ways, each says which way
    directed = any(goal.at_most for goal in goals.values())

    def target(key: str) -> str:
        goal = goals[key]
        return f"{('<=' if goal.at_most else '>=') + ' ' if directed else ''}{goal.target}"

    return "  goals: " + ", ".join(
        f"{k} {v:.3g} ({'met' if report['met'][k] else 'not met'}, goal {target(k)})"
        for k, v in report["goals"].items()
    )


def world_of(pipe, asked: str) -> str:
    """The world a model is evaluated on: as asked, or by its working resolution (shapes: 32 px)."""
    if asked != "auto":
        return asked
    return "shapes" if pipe.vae is None and pipe.resolution == 32 else "objects"

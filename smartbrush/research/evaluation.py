"""`smartbrush eval --model M`: how well a model fills shapes-world holes, on the held-out test split.

(Models of the objects world -- the demo -- are measured by smartbrush.research.objects_eval; `--world` picks.)

For each test scene the model gets the *object-free* background, a mask where the scene's object was, and
the prompt "a <colour> <shape>". Two modes: the exact instance mask (precision 0) and its bounding box
(precision 1). What counts as the generated object: the pixels inside the box that differ from the
object-free background by more than world.OBJECT_MARGIN (every real object pixel does; see world.py) AND
lie within COLOUR_TOLERANCE of the prompted colour or its texture ink. Without the colour condition any
model that scribbles noise over the whole mask would score a perfect exact-mask IoU and (from the mask's
silhouette) a perfect shape. The classifier sees the result with non-object pixels put back to the
background, for the same reason.

    colour / shape accuracy   a small CNN trained on the world classifies the box crop of the result
                              (its own accuracy on the real objects of the same scenes is reported too)
    exact-mask IoU            generated object vs the given mask, exact mode
    predicted-mask IoU        the pipeline's predicted object mask vs the generated object, box mode
    background PSNR           inside the box but outside the generated object, vs the background

`smartbrush train-classifier` trains the classifier (about a minute on CPU).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from smartbrush.method.masks import bounding_box
from smartbrush.research import world

CROP = 20  # classifier input: the object's square box crop, resized to CROP x CROP
CLASSIFIER_NAME = "classifier.safetensors"
GOALS = {
    "colour_accuracy": 0.95,
    "shape_accuracy": 0.90,
    "exact_mask_iou": 0.85,
    "predicted_mask_iou": 0.85,
    "background_psnr": 30.0,
}


# -- the shape / colour classifier ------------------------------------------------------------------------


def _net():
    from torch import nn

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(3, 24), *block(24, 24), nn.MaxPool2d(2),  # 10 x 10
        *block(24, 48), *block(48, 48), nn.MaxPool2d(2),  # 5 x 5
        nn.Flatten(), nn.Linear(48 * 25, 128), nn.ReLU(),
        nn.Linear(128, len(world.COLOUR_NAMES) + len(world.SHAPES)),
    )  # fmt: skip


def box_crop(image: np.ndarray, box: tuple[int, int, int, int], jitter: np.ndarray | None = None):
    """The square crop around box (x, y, width, height) with a pixel of margin, CROP x CROP, CHW float."""

    x, y, width, height = box
    side = max(height, width) + 2
    cy, cx = y + height / 2, x + width / 2
    if jitter is not None:
        cy, cx, side = cy + jitter[0], cx + jitter[1], side + jitter[2]
    return square_crop(image, cx, cy, side, CROP)


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


def _real_objects(split: str, start: int, count: int):
    """(crop source image, box (x, y, w, h), colour index, shape index) per object of `count` scenes."""

    for index in range(start, start + count):
        scene = world.make_scene(split, index)
        for obj in [scene.target, *scene.distractors]:
            yield (
                scene.image,
                bounding_box(obj.mask),
                world.COLOUR_NAMES.index(obj.colour),
                world.SHAPES.index(obj.shape),
            )


def train_classifier(scenes: int = 2000, steps: int = 300, batch: int = 64, seed: int = 0):
    """Train the classifier on world training scenes (a seed range training never reaches)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    objects = list(_real_objects("train", 9_000_000, scenes))
    colours = torch.tensor([o[2] for o in objects])
    shapes = torch.tensor([o[3] for o in objects])
    net = _net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    net.train()
    for _ in range(steps):
        picks = rng.integers(0, len(objects), batch)
        jitter = rng.uniform(
            [-1.5, -1.5, -2], [1.5, 1.5, 3], size=(batch, 3)
        )  # loose boxes, like fills
        crops = torch.from_numpy(
            np.stack(
                [
                    box_crop(objects[k][0], objects[k][1], j)
                    for k, j in zip(picks, jitter, strict=True)
                ]
            )
        )
        logits = net(crops)
        n_colours = len(world.COLOUR_NAMES)
        loss = F.cross_entropy(logits[:, :n_colours], colours[picks]) + F.cross_entropy(
            logits[:, n_colours:], shapes[picks]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return net.eval()


def save_classifier(net, path: str | Path) -> None:
    from safetensors.torch import save_file

    meta = {
        "crop": str(CROP),
        "colours": ",".join(world.COLOUR_NAMES),
        "shapes": ",".join(world.SHAPES),
    }
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)


def load_classifier(path: str | Path):
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no shape/colour classifier at {path}; train one with `smartbrush train-classifier -o {path}`"
        )
    with safe_open(str(path), framework="pt") as file:
        meta = file.metadata()
        state = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    if meta.get("colours") != ",".join(world.COLOUR_NAMES) or meta.get("shapes") != ",".join(
        world.SHAPES
    ):
        raise ValueError(f"{path} was trained on a different shapes world; retrain it")
    net = _net()
    net.load_state_dict(state)
    return net.eval()


def classify(net, images: list[np.ndarray], boxes: list) -> tuple[list[str], list[str]]:
    """(colour names, shape names) of the objects in `images` at `boxes`."""
    import torch

    with torch.no_grad():
        logits = net(
            torch.from_numpy(np.stack([box_crop(i, b) for i, b in zip(images, boxes, strict=True)]))
        )
    n = len(world.COLOUR_NAMES)
    return (
        [world.COLOUR_NAMES[k] for k in logits[:, :n].argmax(1).tolist()],
        [world.SHAPES[k] for k in logits[:, n:].argmax(1).tolist()],
    )


# -- evaluation -----------------------------------------------------------------------------------------


COLOUR_TOLERANCE = (
    80  # max per-channel distance from the prompted colour (or ink) of a generated pixel
)


def generated_object(image: np.ndarray, background: np.ndarray, colour: str) -> np.ndarray:
    """Pixels that changed from the background and look like the prompted object (its colour or ink)."""
    ink = (10, 10, 10) if colour in world.LIGHT_COLOURS else (250, 250, 250)
    pixels = image.astype(np.int16)
    near = np.zeros(image.shape[:2], dtype=bool)
    for rgb in (world.COLOURS[colour], ink):
        near |= np.abs(pixels - np.array(rgb, dtype=np.int16)).max(axis=-1) <= COLOUR_TOLERANCE
    return world.object_pixels(image, background) & near


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def evaluate(pipe, classifier, n: int = 64, steps: int = 20, guidance: float = 4.0, start: int = 0,
             keep_examples: int = 0, mask_threshold: float = 0.5) -> dict:  # fmt: skip
    """The metrics above over test scenes start .. start + n - 1 (seed = scene index)."""
    from smartbrush.method.masks import box_mask

    results = {"exact": [], "box": []}
    real_images, boxes, truths, examples = [], [], [], []
    for index in range(start, start + n):
        scene = world.make_scene("test", index)
        target = scene.target
        assert target is not None  # make_scene places a target unless target=False
        box = bounding_box(target.mask)
        real_images.append(scene.image)
        boxes.append(box)
        truths.append((target.colour, target.shape))
        prompt = target.short_caption
        for mode, mask, precision in (
            ("exact", target.mask, 0.0),
            ("box", box_mask(target.mask), 1.0),
        ):
            out = pipe(scene.background, mask, prompt, precision=precision, seed=index,
                       num_inference_steps=steps, guidance_scale=guidance,
                       mask_threshold=mask_threshold)  # fmt: skip
            after = np.asarray(out.images[0].convert("RGB"))
            generated = generated_object(after, scene.background, target.colour) & box_mask(
                target.mask
            )
            seen = np.where(generated[..., None], after, scene.background)  # for the classifier
            predicted = np.asarray(out.masks[0]) >= 128
            outside = box_mask(target.mask) & ~generated
            error = (after[outside].astype(np.float64) - scene.background[outside]) ** 2
            results[mode].append(
                {
                    "seen": seen,
                    "given_iou": iou(generated, target.mask),
                    "predicted_iou": iou(predicted, generated),
                    "sq_error": float(error.sum()),
                    "count": int(error.size),
                }
            )
            if len(examples) < keep_examples * 2:
                examples.append((scene, mode, after, predicted, prompt))

    real_colours, real_shapes = classify(classifier, real_images, boxes)
    report: dict = {
        "n": n,
        "steps": steps,
        "guidance_scale": guidance,
        "mask_threshold": mask_threshold,
        "classifier_on_real_objects": {
            "colour_accuracy": _mean(
                [c == t[0] for c, t in zip(real_colours, truths, strict=True)]
            ),
            "shape_accuracy": _mean([s == t[1] for s, t in zip(real_shapes, truths, strict=True)]),
        },
    }
    for mode, rows in results.items():
        colours, shapes = classify(classifier, [r["seen"] for r in rows], boxes)
        sq_error, count = sum(r["sq_error"] for r in rows), sum(r["count"] for r in rows)
        report[mode] = {
            "colour_accuracy": _mean([c == t[0] for c, t in zip(colours, truths, strict=True)]),
            "shape_accuracy": _mean([s == t[1] for s, t in zip(shapes, truths, strict=True)]),
            "exact_mask_iou": _mean([r["given_iou"] for r in rows]),
            "predicted_mask_iou": _mean([r["predicted_iou"] for r in rows]),
            "background_psnr": _psnr(sq_error, count),
        }
    report["goals"] = {
        "colour_accuracy": min(
            report["exact"]["colour_accuracy"], report["box"]["colour_accuracy"]
        ),
        "shape_accuracy": min(report["exact"]["shape_accuracy"], report["box"]["shape_accuracy"]),
        "exact_mask_iou": report["exact"]["exact_mask_iou"],
        "predicted_mask_iou": report["box"]["predicted_mask_iou"],
        "background_psnr": report["box"]["background_psnr"],
    }
    report["met"] = {k: bool(v >= GOALS[k]) for k, v in report["goals"].items()}
    if keep_examples:
        report["examples"] = examples
    return report


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _psnr(sq_error: float, count: int) -> float:
    if count == 0:
        return float("nan")
    mse = sq_error / count
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def default_classifier_path(world: str = "shapes") -> Path:
    # the embedded models' folders (smartbrush.method.pipeline.EMBEDDED_MODELS), without importing diffusers
    models = Path(__file__).resolve().parents[1] / "models"
    if world == "objects":
        return models / "demo" / "objects-classifier.safetensors"
    return models / "shapes" / CLASSIFIER_NAME


# -- command line ---------------------------------------------------------------------------------------


def format_report(report: dict, model: str) -> str:
    lines = [
        f"model {model}: {report['n']} test scenes, {report['steps']} steps, guidance {report['guidance_scale']}"
    ]
    real = report["classifier_on_real_objects"]
    lines.append(
        f"  classifier on real objects: colour {real['colour_accuracy']:.3f}, shape {real['shape_accuracy']:.3f}"
    )
    for mode in ("exact", "box"):
        m = report[mode]
        lines.append(
            f"  {mode:5s} mask: colour {m['colour_accuracy']:.3f}  shape {m['shape_accuracy']:.3f}  "
            f"exact-mask IoU {m['exact_mask_iou']:.3f}  predicted-mask IoU {m['predicted_mask_iou']:.3f}  "
            f"background PSNR {m['background_psnr']:.1f} dB"
        )
    lines.append("  goals: " + ", ".join(
        f"{k} {v:.3g} ({'met' if report['met'][k] else 'not met'}, goal {GOALS[k]})"
        for k, v in report["goals"].items()
    ))  # fmt: skip
    return "\n".join(lines)


def world_of(pipe, asked: str) -> str:
    """The world a model is evaluated on: as asked, or by its working resolution (shapes: 32 px)."""
    if asked != "auto":
        return asked
    return "shapes" if pipe.vae is None and pipe.resolution == 32 else "objects"

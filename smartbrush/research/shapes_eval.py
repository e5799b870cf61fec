"""`smartbrush eval --model M`: how well a model fills shapes-world holes, on the held-out test split.

(Models of the objects world -- the demo -- are measured by smartbrush.research.objects_eval; `--world` picks.
Both are measured in smartbrush.research.evaluation's frame, with its classifier.)

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

import numpy as np

from smartbrush.method.masks import bounding_box
from smartbrush.research import evaluation, world

CLASSIFIER = evaluation.ClassifierSpec(
    what="shape/colour classifier",
    model="shapes",
    file_name="classifier.safetensors",
    heads=(("colours", tuple(world.COLOUR_NAMES)), ("shapes", tuple(world.SHAPES))),
    crop=20,  # 10 x 10, then 5 x 5 after the two stages
    stages=((24, 24), (48, 48)),
    hidden=128,
    dropout=0.0,
    box_scale=1.0,  # a pixel of margin around the box
    relative_jitter=False,
    jitter=((-1.5, -1.5, -2), (1.5, 1.5, 3)),  # loose boxes, like fills
    steps=300,
    train_hint="`smartbrush train-classifier -o {path}`",
    mismatch="a different shapes world",
)
GOALS = {
    "colour_accuracy": evaluation.Goal(0.95, "both"),
    "shape_accuracy": evaluation.Goal(0.90, "both"),
    "exact_mask_iou": evaluation.Goal(0.85, "exact"),
    "predicted_mask_iou": evaluation.Goal(0.85, "box"),
    "background_psnr": evaluation.Goal(30.0, "box"),
}
COLOUR_TOLERANCE = (
    80  # max per-channel distance from the prompted colour (or ink) of a generated pixel
)


def real_objects(split: str, start: int, count: int):
    """(crop source image, box (x, y, w, h), colour index, shape index) per object of `count` scenes:
    the classifier's samples."""
    for index in range(start, start + count):
        scene = world.make_scene(split, index)
        for obj in [scene.target, *scene.distractors]:
            yield (
                scene.image,
                bounding_box(obj.mask),
                world.COLOUR_NAMES.index(obj.colour),
                world.SHAPES.index(obj.shape),
            )


def training_objects(scenes: int = 2000):
    """The classifier's training samples: world training scenes of a seed range training never reaches."""
    return real_objects("train", 9_000_000, scenes)


def generated_object(image: np.ndarray, background: np.ndarray, colour: str) -> np.ndarray:
    """Pixels that changed from the background and look like the prompted object (its colour or ink)."""
    ink = (10, 10, 10) if colour in world.LIGHT_COLOURS else (250, 250, 250)
    pixels = image.astype(np.int16)
    near = np.zeros(image.shape[:2], dtype=bool)
    for rgb in (world.COLOURS[colour], ink):
        near |= np.abs(pixels - np.array(rgb, dtype=np.int16)).max(axis=-1) <= COLOUR_TOLERANCE
    return world.object_pixels(image, background) & near


def evaluate(pipe, classifier, n: int = 64, steps: int = 20, guidance: float = 4.0, start: int = 0,
             keep_examples: int = 0, mask_threshold: float = 0.5) -> dict:  # fmt: skip
    """The metrics above over test scenes start .. start + n - 1 (seed = scene index)."""
    results = {"exact": [], "box": []}
    real_images, boxes, truths, examples = [], [], [], []

    def cases():
        for index in range(start, start + n):
            scene = world.make_scene("test", index)
            target = scene.target
            assert target is not None  # make_scene places a target unless target=False
            real_images.append(scene.image)
            boxes.append(bounding_box(target.mask))
            truths.append((target.colour, target.shape))
            yield evaluation.Case(index, scene, scene.background, target.mask, target.short_caption)

    def generated(after: np.ndarray, case: evaluation.Case) -> np.ndarray:
        return generated_object(after, case.background, case.scene.target.colour)

    for done in evaluation.fill_both_ways(pipe, cases(), generated, steps, guidance, mask_threshold,
                               examples, keep_examples):  # fmt: skip
        background = done.case.background
        seen = np.where(done.generated[..., None], done.after, background)  # for the classifier
        outside = done.boxed & ~done.generated
        error = (done.after[outside].astype(np.float64) - background[outside]) ** 2
        results[done.mode].append(
            {"seen": seen, **done.ious(), "sq_error": float(error.sum()), "count": int(error.size)}
        )

    real_colours, real_shapes = CLASSIFIER.classify(classifier, real_images, boxes)
    report: dict = evaluation.report_header(n, steps, guidance, mask_threshold)
    report["classifier_on_real_objects"] = {
        "colour_accuracy": evaluation.accuracy(real_colours, [t[0] for t in truths]),
        "shape_accuracy": evaluation.accuracy(real_shapes, [t[1] for t in truths]),
    }
    for mode, rows in results.items():
        colours, shapes = CLASSIFIER.classify(classifier, [r["seen"] for r in rows], boxes)
        sq_error, count = sum(r["sq_error"] for r in rows), sum(r["count"] for r in rows)
        report[mode] = {
            "colour_accuracy": evaluation.accuracy(colours, [t[0] for t in truths]),
            "shape_accuracy": evaluation.accuracy(shapes, [t[1] for t in truths]),
            **evaluation.mask_ious(rows),
            "background_psnr": evaluation.psnr(sq_error, count),
        }
    evaluation.judge(report, GOALS)
    if keep_examples:
        report["examples"] = examples
    return report


def format_report(report: dict, model: str) -> str:
    real = report["classifier_on_real_objects"]
    fields = ("colour {colour_accuracy:.3f}", "shape {shape_accuracy:.3f}", *evaluation.IOU_FIELDS,
              "background PSNR {background_psnr:.1f} dB")  # fmt: skip
    return "\n".join([
        evaluation.format_header(report, model, "test scenes"),
        f"  classifier on real objects: colour {real['colour_accuracy']:.3f}, "
        f"shape {real['shape_accuracy']:.3f}",
        *(evaluation.format_mode(report, mode, fields) for mode in ("exact", "box")),
        evaluation.format_goals(report, GOALS),
    ])  # fmt: skip

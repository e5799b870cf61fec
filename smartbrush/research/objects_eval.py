"""How well a model fills (and erases) objects on held-out photos of the objects world.

(The frame -- the two modes, IoUs, pooled PSNR/SSIM, goals, the classifier -- is
smartbrush.research.evaluation's; this module plugs in the objects world: its scenes, prompts, what counts
as the generated object, removal and colour words.)

Test scenes use the held-out background photos (objects.TEST_BACKGROUNDS) and seeds no training scene has.
For each scene the model gets the object-free background and a mask where the scene's object was:

    exact mode   the exact instance mask, precision 0      box mode   its bounding box, precision 1
    prompt       "a <label>"; the colour-word run uses held-out paraphrases and colour words instead

What counts as the generated object: pixels inside the box that differ from the object-free background by
more than CHANGED (max over channels). Metrics:

    object accuracy        a small CNN trained on real objects of training scenes names the box crop of the
                           result (its own accuracy on the real objects of the test scenes is reported)
    colour-word accuracy   coloured shapes asked for with held-out words ("a picture of a violet heart"):
                           the classifier's class has the asked colour
    colour on any object   recolourable objects asked for in a colour (objects.RECOLOURABLE; the colour
                           drawn per scene), half with training words ("a blue car"), half held-out
                           ("one azure car here"). The generated object's mean CIELAB colour is named by
                           the nearest (CIEDE2000) of the scene's own object recoloured in each of the
                           nine colours: colour accuracy = named as asked; hue error = CIELAB hue angle
                           against the object in the asked colour (chromatic colours); object accuracy
                           = the classifier names the class (it is trained on recoloured objects too).
                           Beside: the classifier on the real recoloured objects, and the colour rule on
                           the autoencoder's round trip of them (what a perfect latent could reach)
    exact-mask IoU         generated object vs the given mask (exact mode)
    predicted-mask IoU     the pipeline's predicted mask vs the generated object (box mode)
    background PSNR/SSIM   inside the box, outside the generated object, vs the true background (box mode),
                           beside the autoencoder's own round trip on the same pixels and the repainted ring
                           (where the loss comes from), and the true scene measured the same way (its own
                           shadow and soft edge lie outside its object: even the truth is not "inf")
    repainted share        pixels the result changed at all (paste alpha > 0) / generated object (box mode)
    removal PSNR/SSIM      scenes with their object, a lasso around it (the object grown by 8 %), empty
                           prompt (the pipeline's removal: infill at the scene's resolution); inside the
                           lasso vs the true background; beside a blur fill (normalised convolution) and,
                           for a model trained for removal, its own erasing (removal="model")
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from scipy import ndimage

from smartbrush.method import masks
from smartbrush.method.masks import bounding_box
from smartbrush.research import evaluation, objects

CLASSIFIER = evaluation.ClassifierSpec(
    what="object classifier",
    model="demo",
    file_name="objects-classifier.safetensors",
    heads=(("classes", tuple(objects.CLASS_NAMES)),),
    crop=32,  # 16, 8, then 4 after the three stages
    stages=((32, 32), (64, 64), (128,)),
    hidden=256,
    dropout=0.2,
    box_scale=1.1,
    relative_jitter=True,
    jitter=((-0.08, -0.08, 0.9), (0.08, 0.08, 1.5)),  # loose boxes, as a box-mode fill leaves them
    steps=800,
    train_hint="`smartbrush train-classifier --world objects`",
    mismatch="other object classes",
)
CHANGED = 32  # a pixel belongs to the generated object when it moved more than this (of 255)
GOALS = {
    "object_accuracy": evaluation.Goal(0.90, "both"),
    "colour_word_accuracy": evaluation.Goal(0.85, "both"),
    "exact_mask_iou": evaluation.Goal(0.85, "exact"),
    "predicted_mask_iou": evaluation.Goal(0.85, "box"),
    "background_psnr": evaluation.Goal(30.0, "box"),
    "background_ssim": evaluation.Goal(0.95, "box"),
    "repainted_share": evaluation.Goal(1.3, "box", at_most=True),
    "any_object_colour_accuracy": evaluation.Goal(0.85, "both"),
    "any_object_hue_error": evaluation.Goal(15.0, "both", at_most=True),
}


# the classifier's training objects are recoloured this often (of the recolourable ones), so that it
# names a blue car a car
CLASSIFIER_RECOLOUR_FRACTION = 0.4
# colours whose hue angle means something (black and white are greys)
CHROMATIC = tuple(c for c in objects.COLOURS if objects.RECOLOURS[c][0] is not None)


def training_objects(world, scenes: int = 4000):
    """The classifier's samples (image, box, class index): the real objects of training scenes from a
    seed range model training never reaches (recoloured as `world` recolours them)."""
    for index in range(9_000_000, 9_000_000 + scenes):
        scene = world.scene("train", index)
        yield scene.image, bounding_box(scene.mask), objects.CLASS_NAMES.index(scene.label)


# -- measures ------------------------------------------------------------------------------------------


def changed_pixels(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    difference = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=-1)
    return difference > CHANGED


def removal_lasso(mask: np.ndarray, margin: float = 0.08) -> np.ndarray:
    bounds = bounding_box(mask)
    assert bounds is not None, "removal_lasso needs a non-empty mask"
    _, _, width, height = bounds
    return ndimage.binary_dilation(mask, iterations=max(1, round(margin * max(height, width))))


def autoencoder_round_trip(pipe, image: np.ndarray) -> np.ndarray:
    """What the autoencoder alone makes of an image (the floor for any repainted pixel)."""
    import torch

    if getattr(pipe, "vae", None) is None:  # pixel space (or a stand-in filler): no round trip
        return image
    pixels = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1)
    with torch.no_grad():
        out = pipe.decode_image(pipe.encode_image(pixels.to(pipe.unet.device, pipe.unet.dtype)))
    return (
        ((out[0].float().cpu().numpy().transpose(1, 2, 0) + 1) * 127.5)
        .round()
        .clip(0, 255)
        .astype(np.uint8)
    )


def mean_lab(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The mean CIELAB colour of an image's pixels in a region."""
    from skimage import color

    return color.rgb2lab(image[region].astype(np.float64)[None] / 255)[0].mean(0)


def hue_error(measured: np.ndarray, asked: np.ndarray) -> float:
    """The CIELAB hue angle between two Lab colours, in degrees (0-180)."""
    difference = abs(
        np.degrees(np.arctan2(measured[2], measured[1]) - np.arctan2(asked[2], asked[1]))
    )
    return float(min(difference % 360, 360 - difference % 360))


def colour_named(measured: np.ndarray, references: dict[str, np.ndarray]) -> str:
    """The colour whose reference (Lab) is nearest to a measured Lab colour (CIEDE2000)."""
    from skimage import color

    return min(references, key=lambda c: float(color.deltaE_ciede2000(measured, references[c])))


@dataclass(frozen=True)
class RecolouredCase(evaluation.Case):
    colour: str = ""  # the colour asked for
    references: dict = field(default_factory=dict)  # colour -> the object's mean Lab in that colour
    held_out_words: bool = False


def recoloured_cases(world, n: int, split: str = "test") -> Iterator[RecolouredCase]:
    """n test scenes with a recolourable object, each asked for in a colour drawn from its index: even
    indices with training words ("a blue car"), odd ones with held-out words ("one azure car here")."""
    for index, scene in test_scenes(world, n, split=split, recolourable=True):
        rng = np.random.default_rng(index)
        colour = str(rng.choice(objects.COLOURS))
        recoloured = {c: world.scene(split, index, colour=c) for c in objects.COLOURS}
        held_out = index % 2 == 1
        prompt = (
            objects.held_out_prompt(scene.label, rng, colour)
            if held_out
            else f"a {colour} {scene.label}"
        )
        yield RecolouredCase(
            index, recoloured[colour], scene.background, scene.mask, prompt, colour,
            {c: mean_lab(s.image, scene.mask) for c, s in recoloured.items()}, held_out,
        )  # fmt: skip


def colour_on_any_object(pipe, world, classifier, n: int, steps: int, guidance: float | None,
                         mask_threshold: float, split: str = "test") -> dict:  # fmt: skip
    """The colour-on-any-object measures of this module's docstring, per mode, and the two beside."""
    cases = list(recoloured_cases(world, n, split))
    hits: dict[str, dict[str, list]] = {m: {"colour": [], "object": [], "hue": [], "held_out": []}
                                        for m in evaluation.MODES}  # fmt: skip
    for done in evaluation.fill_both_ways(pipe, cases, _generated, steps, guidance, mask_threshold):
        case = cast(RecolouredCase, done.case)
        row = hits[done.mode]
        (named,) = CLASSIFIER.classify(classifier, [done.after], [bounding_box(case.mask)])
        row["object"].append(named[0] == case.scene.label)
        chromatic = case.colour in CHROMATIC
        if done.generated.any():
            measured = mean_lab(done.after, done.generated)
            row["colour"].append(colour_named(measured, case.references) == case.colour)
            if chromatic:
                row["hue"].append(hue_error(measured, case.references[case.colour]))
        else:  # nothing painted: neither the colour nor its hue
            row["colour"].append(False)
            if chromatic:
                row["hue"].append(180.0)
        row["held_out"].append(case.held_out_words)
    result: dict = {}
    for mode, row in hits.items():
        held_out = np.array(row["held_out"], bool)
        colour = np.array(row["colour"], bool)
        result[mode] = {
            "any_object_colour_accuracy": evaluation.mean(colour),
            "any_object_colour_accuracy_held_out_words": evaluation.mean(colour[held_out]),
            "any_object_colour_accuracy_training_words": evaluation.mean(colour[~held_out]),
            "any_object_hue_error": float(np.median(row["hue"])) if row["hue"] else float("nan"),
            "any_object_accuracy": evaluation.mean(row["object"]),
        }
    (named,) = CLASSIFIER.classify(
        classifier, [c.scene.image for c in cases], [bounding_box(c.mask) for c in cases]
    )
    result["classifier_on_recoloured_objects"] = evaluation.accuracy(
        named, [c.scene.label for c in cases]
    )
    result["colour_rule_on_round_trip"] = evaluation.mean([
        colour_named(mean_lab(autoencoder_round_trip(pipe, c.scene.image), c.mask), c.references)
        == c.colour
        for c in cases
    ])  # fmt: skip
    return result


# -- evaluation ----------------------------------------------------------------------------------------


def test_scenes(world, n: int, start: int = 0, coloured: bool = False, split: str = "test",
                recolourable: bool = False):  # fmt: skip
    """The first n test scenes from `start` (with coloured: only those whose object is a coloured shape;
    with recolourable: only those whose object may be recoloured)."""
    index, found = start, 0
    while found < n:
        scene = world.scene(split, index)
        if (not coloured or objects.BY_NAME[scene.label].colour) and (
            not recolourable or scene.label in objects.RECOLOURABLE
        ):
            yield index, scene
            found += 1
        index += 1


def _generated(after: np.ndarray, case: evaluation.Case) -> np.ndarray:
    return changed_pixels(after, case.background)


def evaluate(pipe, world, classifier, n: int = 48, steps: int = 20, guidance: float | None = None,
             keep_examples: int = 0, split: str = "test",
             mask_threshold: float = 0.5) -> dict:  # fmt: skip
    """The metrics of this module's docstring over n test scenes (seed = scene index)."""
    started = time.monotonic()
    rows = {"exact": [], "box": []}
    background, round_trip, ring = evaluation.Pool(), evaluation.Pool(), evaluation.Pool()
    removal, removal_model, removal_blur = evaluation.Pool(), evaluation.Pool(), evaluation.Pool()
    erases_itself = bool(pipe.config["removal_prompt"])  # trained for removal: measure that too
    ring_share, truth_background, truth_share = [], evaluation.Pool(), []
    real, truths, boxes, examples = [], [], [], []

    def cases():
        for index, scene in test_scenes(world, n, split=split):
            real.append(scene.image)
            truths.append(scene.label)
            boxes.append(bounding_box(scene.mask))
            yield evaluation.Case(index, scene, scene.background, scene.mask, f"a {scene.label}")

    for done in evaluation.fill_both_ways(pipe, cases(), _generated, steps, guidance, mask_threshold,
                               examples, keep_examples):  # fmt: skip
        index, scene, boxed, generated = (
            done.case.index,
            done.case.scene,
            done.boxed,
            done.generated,
        )
        repainted = np.asarray(done.out.alphas[0]) > 0
        rows[done.mode].append({
            "after": done.after,
            **done.ious(),
            "repainted_share": repainted.sum() / max(1, generated.sum()),
        })  # fmt: skip
        if done.mode != "box":
            continue
        outside = boxed & ~generated
        # SSIM looks at 7 x 7 windows: put the object itself back to the background first, so
        # windows at its edge measure the background next to it, not the object
        kept = np.where(generated[..., None], scene.background, done.after)
        background.add(kept, scene.background, outside)
        round_trip.add(autoencoder_round_trip(pipe, scene.background), scene.background, outside)
        ring.add(kept, scene.background, outside & repainted)  # repainted, not the object
        ring_share.append((outside & repainted).sum() / max(1, outside.sum()))
        # the same measures of the true scene: its shadow and soft edge lie outside its object
        true_object = changed_pixels(scene.image, scene.background) & boxed
        kept = np.where(true_object[..., None], scene.background, scene.image)
        truth_background.add(kept, scene.background, boxed & ~true_object)
        truth_share.append(
            (scene.image != scene.background).any(-1).sum() / max(1, true_object.sum())
        )
        # removal, after both fills of the scene
        lasso = removal_lasso(scene.mask)
        _, erased = evaluation.fill(
            pipe, scene.image, lasso, "", 0.0, index, steps, guidance, mask_threshold
        )
        removal.add(erased, scene.background, lasso)
        removal_blur.add(masks.blur_fill(scene.image, lasso), scene.background, lasso)
        if erases_itself:  # the model's own erasing at its resolution, beside the pipeline's infill
            out = pipe(scene.image, lasso, "", precision=0.0, seed=index, num_inference_steps=steps,
                       guidance_scale=guidance, mask_threshold=mask_threshold,
                       removal="model")  # fmt: skip
            removal_model.add(np.asarray(out.images[0].convert("RGB")), scene.background, lasso)

    # colour words: coloured shapes asked for with held-out paraphrases and colour words
    colour_hits = {"exact": [], "box": []}
    coloured = [
        evaluation.Case(index, scene, scene.background, scene.mask,
             objects.held_out_prompt(scene.label, np.random.default_rng(index)))
        for index, scene in test_scenes(world, max(9, n // 2), coloured=True, split=split)
    ]  # fmt: skip
    for done in evaluation.fill_both_ways(
        pipe, coloured, _generated, steps, guidance, mask_threshold
    ):
        (named,) = CLASSIFIER.classify(classifier, [done.after], [bounding_box(done.case.mask)])
        asked = objects.BY_NAME[done.case.scene.label].colour
        colour_hits[done.mode].append(objects.BY_NAME[named[0]].colour == asked)

    any_object = colour_on_any_object(pipe, world, classifier, max(9, n // 2), steps, guidance,
                                      mask_threshold, split)  # fmt: skip

    report: dict = evaluation.report_header(n, steps, guidance, mask_threshold)
    (named,) = CLASSIFIER.classify(classifier, real, boxes)
    report["classifier_on_real_objects"] = evaluation.mean([c == t for c, t in zip(named, truths)])
    for mode, mode_rows in rows.items():
        (named,) = CLASSIFIER.classify(classifier, [r["after"] for r in mode_rows], boxes)
        report[mode] = {
            "object_accuracy": evaluation.mean([c == t for c, t in zip(named, truths)]),
            "per_class": dict(sorted(tally(named, truths).items())),
            "colour_word_accuracy": evaluation.mean(colour_hits[mode]),
            **evaluation.mask_ious(mode_rows),
            "repainted_share": evaluation.mean([r["repainted_share"] for r in mode_rows]),
            **any_object[mode],
        }
    for key in ("classifier_on_recoloured_objects", "colour_rule_on_round_trip"):
        report[key] = any_object[key]
    report["box"]["background_psnr"] = background.psnr()
    report["box"]["background_ssim"] = background.mean_ssim()
    report["box"]["autoencoder_round_trip_psnr"] = round_trip.psnr()
    report["box"]["autoencoder_round_trip_ssim"] = round_trip.mean_ssim()
    report["true_scenes"] = {
        "background_psnr": truth_background.psnr(),
        "background_ssim": truth_background.mean_ssim(),
        "repainted_share": evaluation.mean(truth_share),
    }
    # where the loss sits: the repainted ring between the object and the predicted mask's edge
    report["box"]["ring_share_of_background"] = evaluation.mean(ring_share)
    report["box"]["ring_psnr"] = ring.psnr()
    report["removal"] = {
        "psnr": removal.psnr(), "ssim": removal.mean_ssim(),
        "blur_fill_psnr": removal_blur.psnr(), "blur_fill_ssim": removal_blur.mean_ssim(),
    }  # fmt: skip
    if erases_itself:
        report["removal"]["model_psnr"] = removal_model.psnr()
        report["removal"]["model_ssim"] = removal_model.mean_ssim()
    evaluation.judge(report, GOALS)
    report["seconds"] = round(time.monotonic() - started, 1)
    if keep_examples:
        report["examples"] = examples
    return report


def tally(named: list[str], truths: list[str]) -> dict[str, list[int]]:
    """Per true label: [named right, scenes]."""
    counts: dict[str, list[int]] = {}
    for name, truth in zip(named, truths, strict=True):
        right, scenes = counts.get(truth, (0, 0))
        counts[truth] = [right + (name == truth), scenes + 1]
    return counts


def balanced_scenes(world, per_class: int, split: str = "test"):
    """(index, scene) of the first `per_class` test scenes of every class, in index order."""
    counts = dict.fromkeys(objects.CLASS_NAMES, 0)
    index = 0
    while min(counts.values()) < per_class:
        scene = world.scene(split, index)
        if counts[scene.label] < per_class:
            counts[scene.label] += 1
            yield index, scene
        index += 1


def per_class_accuracy(pipe, world, classifier, per_class: int = 4, steps: int = 20,
                       guidance: float | None = None, mask_threshold: float = 0.5,
                       split: str = "test") -> dict:  # fmt: skip
    """The weak classes' table: each class's object accuracy per mode over its first `per_class` test
    scenes, and what the classifier named its misses instead ({label: {mode: [right, scenes],
    "named_instead": {mode: [names]}}}), beside the classifier's own accuracy on the real objects."""
    cases = [evaluation.Case(index, scene, scene.background, scene.mask, f"a {scene.label}")
             for index, scene in balanced_scenes(world, per_class, split)]  # fmt: skip
    truths, boxes = [c.scene.label for c in cases], [bounding_box(c.mask) for c in cases]
    afters: dict[str, list[np.ndarray]] = {mode: [] for mode in evaluation.MODES}
    for done in evaluation.fill_both_ways(pipe, cases, _generated, steps, guidance, mask_threshold):
        afters[done.mode].append(done.after)
    named = {mode: CLASSIFIER.classify(classifier, afters[mode], boxes)[0] for mode in afters}
    named["real"] = CLASSIFIER.classify(classifier, [c.scene.image for c in cases], boxes)[0]
    counts = {key: tally(names, truths) for key, names in named.items()}
    return {
        label: {
            **{key: counts[key][label] for key in ("exact", "box", "real")},
            "named_instead": {mode: [n for n, t in zip(named[mode], truths) if t == label != n]
                              for mode in evaluation.MODES},
        }
        for label in objects.CLASS_NAMES
    }  # fmt: skip


def share(counts: list[int]) -> float:
    """A per-class table's [right, scenes] as a share."""
    return counts[0] / max(1, counts[1])


def weakest_first(table: dict) -> list[str]:
    """A per-class table's classes, by their worse mode's share, weakest first."""
    return sorted(
        table, key=lambda label: min(share(table[label]["exact"]), share(table[label]["box"]))
    )


def format_per_class(table: dict) -> str:
    """The table as Markdown, weakest class (the worse mode) first."""
    lines = ["| class | exact | box | classifier on the real objects | named instead (exact; box) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for label in weakest_first(table):
        row = table[label]
        instead = "; ".join(", ".join(row["named_instead"][m]) or "-" for m in evaluation.MODES)
        lines.append(f"| {label} | {share(row['exact']):.2f} | {share(row['box']):.2f} | "
                     f"{share(row['real']):.2f} | {instead} |")  # fmt: skip
    return "\n".join(lines)


def format_report(report: dict, model: str) -> str:
    fields = ("object {object_accuracy:.3f}", "colour words {colour_word_accuracy:.3f}", *evaluation.IOU_FIELDS,
              "repainted {repainted_share:.2f}x the object")  # fmt: skip
    m = report["box"]
    lines = [
        evaluation.format_header(report, model, "held-out objects-world scenes"),
        f"  classifier on the real objects: {report['classifier_on_real_objects']:.3f}, on them "
        f"recoloured: {report['classifier_on_recoloured_objects']:.3f}",
        evaluation.format_mode(report, "exact", fields),
        evaluation.format_mode(report, "box", fields)
        + f"\n              background PSNR {m['background_psnr']:.1f} dB, SSIM {m['background_ssim']:.3f} "
        f"(autoencoder round trip alone: {m['autoencoder_round_trip_psnr']:.1f} dB, "
        f"{m['autoencoder_round_trip_ssim']:.3f}); {100 * m['ring_share_of_background']:.0f} % of it "
        f"repainted (the ring), {m['ring_psnr']:.1f} dB there",
    ]
    any_object = ("colour on any object {any_object_colour_accuracy:.3f} (training words "
                  "{any_object_colour_accuracy_training_words:.3f}, held-out "
                  "{any_object_colour_accuracy_held_out_words:.3f})",
                  "hue error {any_object_hue_error:.1f} deg", "object {any_object_accuracy:.3f}")  # fmt: skip
    lines += [evaluation.format_mode(report, mode, any_object) for mode in evaluation.MODES]
    lines.append(
        "  the colour rule on the autoencoder's round trip of the true recoloured objects: "
        f"{report['colour_rule_on_round_trip']:.3f}"
    )
    t = report["true_scenes"]
    lines.append(
        f"  the true scenes, measured the same way: background PSNR {t['background_psnr']:.1f} dB, "
        f"SSIM {t['background_ssim']:.3f}, repainted {t['repainted_share']:.2f}x the object "
        "(shadows and soft edges)"
    )
    r = report["removal"]
    line = f"  removal: PSNR {r['psnr']:.1f} dB, SSIM {r['ssim']:.3f}; blur fill {r['blur_fill_psnr']:.1f} dB, {r['blur_fill_ssim']:.3f}"
    if "model_psnr" in r:
        line += f"; the model's own erasing {r['model_psnr']:.1f} dB, {r['model_ssim']:.3f}"
    lines.append(line)
    lines.append(evaluation.format_goals(report, GOALS))
    return "\n".join(lines)

"""How well a model fills (and erases) objects on held-out photos of the objects world.

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
    exact-mask IoU         generated object vs the given mask (exact mode)
    predicted-mask IoU     the pipeline's predicted mask vs the generated object (box mode)
    background PSNR/SSIM   inside the box, outside the generated object, vs the true background (box mode),
                           beside the autoencoder's own round trip on the same pixels and the repainted ring
                           (where the loss comes from), and the true scene measured the same way (its own
                           shadow and soft edge lie outside its object: even the truth is not "inf")
    repainted share        pixels the result changed at all (paste alpha > 0) / generated object (box mode)
    removal PSNR/SSIM      scenes with their object, a lasso around it (the object grown by 8 %), empty
                           prompt; inside the lasso vs the true background; beside two baselines: the shapes
                           model with an empty prompt, and a blur fill (normalised convolution)
"""

from __future__ import annotations

import time
from typing import cast

import numpy as np
from scipy import ndimage

from smartbrush.method import masks
from smartbrush.research import objects
from smartbrush.research.evaluation import (  # the shapes evaluation's measures, shared
    _mean,
    _psnr,
    iou,
    square_crop,
)

CROP = 32  # classifier input: the object's square box crop, CROP x CROP
CLASSIFIER_NAME = "objects-classifier.safetensors"
CHANGED = 32  # a pixel belongs to the generated object when it moved more than this (of 255)
GOALS = {
    "object_accuracy": 0.90,
    "colour_word_accuracy": 0.85,
    "exact_mask_iou": 0.85,
    "predicted_mask_iou": 0.85,
    "background_psnr": 30.0,
    "background_ssim": 0.95,
    "repainted_share": 1.3,  # at most
}


# -- the object classifier -----------------------------------------------------------------------------


def _net():
    from torch import nn

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(3, 32), *block(32, 32), nn.MaxPool2d(2),  # 16
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),  # 8
        *block(64, 128), nn.MaxPool2d(2),  # 4
        nn.Flatten(), nn.Linear(128 * 16, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, len(objects.CLASS_NAMES)),
    )  # fmt: skip


def box_crop(image: np.ndarray, box, jitter=None) -> np.ndarray:
    """The square crop around box (x, y, width, height), CROP x CROP, CHW float in [-1, 1]."""

    x, y, width, height = box
    side = max(height, width) * 1.1 + 2
    cy, cx = y + height / 2, x + width / 2
    if jitter is not None:  # loose boxes, as a box-mode fill leaves them
        cy, cx, side = cy + jitter[0] * side, cx + jitter[1] * side, side * jitter[2]
    return square_crop(image, cx, cy, side, CROP)


def train_classifier(world, scenes: int = 4000, steps: int = 800, batch: int = 64, seed: int = 0):
    """Train on real objects of training scenes from a seed range model training never reaches."""
    import torch
    import torch.nn.functional as F

    from smartbrush.method.masks import bounding_box

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = []
    for index in range(9_000_000, 9_000_000 + scenes):
        scene = world.scene("train", index)
        data.append((scene.image, bounding_box(scene.mask), objects.CLASS_NAMES.index(scene.label)))
    labels = torch.tensor([d[2] for d in data])
    net = _net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    net.train()
    for _ in range(steps):
        picks = rng.integers(0, len(data), batch)
        jitter = rng.uniform([-0.08, -0.08, 0.9], [0.08, 0.08, 1.5], size=(batch, 3))
        crops = np.stack([box_crop(data[k][0], data[k][1], j) for k, j in zip(picks, jitter)])
        loss = F.cross_entropy(net(torch.from_numpy(crops)), labels[picks])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return net.eval()


def save_classifier(net, path) -> None:
    from safetensors.torch import save_file

    meta = {"crop": str(CROP), "classes": ",".join(objects.CLASS_NAMES)}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)


def load_classifier(path):
    from pathlib import Path

    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no object classifier at {path}; train one with `smartbrush train-classifier --world objects`"
        )
    with safe_open(str(path), framework="pt") as file:
        meta = file.metadata()
        state = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    if meta.get("classes") != ",".join(objects.CLASS_NAMES):
        raise ValueError(f"{path} was trained on other object classes; retrain it")
    net = _net()
    net.load_state_dict(state)
    return net.eval()


def classify(net, images: list[np.ndarray], boxes: list) -> list[str]:
    import torch

    with torch.no_grad():
        crops = np.stack([box_crop(i, b) for i, b in zip(images, boxes, strict=True)])
        logits = net(torch.from_numpy(crops))
    return [objects.CLASS_NAMES[k] for k in logits.argmax(1).tolist()]


# -- measures ------------------------------------------------------------------------------------------


def changed_pixels(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    difference = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=-1)
    return difference > CHANGED


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
        return _psnr(self.sq_error, self.count)

    def mean_ssim(self) -> float:
        return self.ssim / self.pixels if self.pixels else float("nan")


def removal_lasso(mask: np.ndarray, margin: float = 0.08) -> np.ndarray:
    from smartbrush.method.masks import bounding_box

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


# -- evaluation ----------------------------------------------------------------------------------------


def test_scenes(world, n: int, start: int = 0, coloured: bool = False, split: str = "test"):
    """The first n test scenes from `start` (with coloured: only those whose object is a coloured shape)."""
    index, found = start, 0
    while found < n:
        scene = world.scene(split, index)
        if not coloured or objects.BY_NAME[scene.label].colour:
            yield index, scene
            found += 1
        index += 1


def evaluate(pipe, world, classifier, n: int = 48, steps: int = 20, guidance: float | None = None,
             removal_baseline=None, keep_examples: int = 0, split: str = "test",
             mask_threshold: float = 0.5) -> dict:  # fmt: skip
    """The metrics of this module's docstring over n test scenes (seed = scene index)."""
    from smartbrush.method.masks import bounding_box, box_mask

    def fill(image, mask, prompt, precision, seed, model=pipe):
        out = model(image, mask, prompt, precision=precision, seed=seed, num_inference_steps=steps,
                    guidance_scale=guidance, mask_threshold=mask_threshold)  # fmt: skip
        return out, np.asarray(out.images[0].convert("RGB"))

    started = time.monotonic()
    rows = {"exact": [], "box": []}
    background, round_trip, ring = Pool(), Pool(), Pool()
    removal, removal_shapes, removal_blur = Pool(), Pool(), Pool()
    ring_share, truth_background, truth_share = [], Pool(), []
    real, truths, boxes, examples = [], [], [], []
    for index, scene in test_scenes(world, n, split=split):
        box = bounding_box(scene.mask)
        boxed = box_mask(scene.mask)
        real.append(scene.image)
        truths.append(scene.label)
        boxes.append(box)
        prompt = f"a {scene.label}"
        for mode, mask, precision in (("exact", scene.mask, 0.0), ("box", boxed, 1.0)):
            out, after = fill(scene.background, mask, prompt, precision, index)
            generated = changed_pixels(after, scene.background) & boxed
            predicted = np.asarray(out.masks[0]) >= 128
            repainted = np.asarray(out.alphas[0]) > 0
            rows[mode].append({
                "after": after,
                "given_iou": iou(generated, scene.mask),
                "predicted_iou": iou(predicted, generated),
                "repainted_share": repainted.sum() / max(1, generated.sum()),
            })  # fmt: skip
            if mode == "box":
                outside = boxed & ~generated
                # SSIM looks at 7 x 7 windows: put the object itself back to the background first, so
                # windows at its edge measure the background next to it, not the object
                kept = np.where(generated[..., None], scene.background, after)
                background.add(kept, scene.background, outside)
                round_trip.add(
                    autoencoder_round_trip(pipe, scene.background), scene.background, outside
                )
                ring.add(kept, scene.background, outside & repainted)  # repainted, not the object
                ring_share.append((outside & repainted).sum() / max(1, outside.sum()))
                # the same measures of the true scene: its shadow and soft edge lie outside its object
                true_object = changed_pixels(scene.image, scene.background) & boxed
                kept = np.where(true_object[..., None], scene.background, scene.image)
                truth_background.add(kept, scene.background, boxed & ~true_object)
                truth_share.append(
                    (scene.image != scene.background).any(-1).sum() / max(1, true_object.sum())
                )
            if len(examples) < keep_examples * 2:
                examples.append((scene, mode, after, predicted, prompt))
        lasso = removal_lasso(scene.mask)
        _, erased = fill(scene.image, lasso, "", 0.0, index)
        removal.add(erased, scene.background, lasso)
        removal_blur.add(masks.blur_fill(scene.image, lasso), scene.background, lasso)
        if removal_baseline is not None:
            _, erased = fill(scene.image, lasso, "", 0.0, index, model=removal_baseline)
            removal_shapes.add(erased, scene.background, lasso)

    # colour words: coloured shapes asked for with held-out paraphrases and colour words
    colour_hits = {"exact": [], "box": []}
    for index, scene in test_scenes(world, max(9, n // 2), coloured=True, split=split):
        prompt = objects.held_out_prompt(scene.label, np.random.default_rng(index))
        asked = objects.BY_NAME[scene.label].colour
        for mode, mask, precision in (
            ("exact", scene.mask, 0.0),
            ("box", box_mask(scene.mask), 1.0),
        ):
            _, after = fill(scene.background, mask, prompt, precision, index)
            named = classify(classifier, [after], [bounding_box(scene.mask)])[0]
            colour_hits[mode].append(objects.BY_NAME[named].colour == asked)

    report: dict = {
        "n": n, "steps": steps, "guidance_scale": guidance, "mask_threshold": mask_threshold,
        "classifier_on_real_objects": _mean([c == t for c, t in zip(classify(classifier, real, boxes), truths)]),
    }  # fmt: skip
    for mode, mode_rows in rows.items():
        named = classify(classifier, [r["after"] for r in mode_rows], boxes)
        report[mode] = {
            "object_accuracy": _mean([c == t for c, t in zip(named, truths)]),
            "colour_word_accuracy": _mean(colour_hits[mode]),
            "exact_mask_iou": _mean([r["given_iou"] for r in mode_rows]),
            "predicted_mask_iou": _mean([r["predicted_iou"] for r in mode_rows]),
            "repainted_share": _mean([r["repainted_share"] for r in mode_rows]),
        }
    report["box"]["background_psnr"] = background.psnr()
    report["box"]["background_ssim"] = background.mean_ssim()
    report["box"]["autoencoder_round_trip_psnr"] = round_trip.psnr()
    report["box"]["autoencoder_round_trip_ssim"] = round_trip.mean_ssim()
    report["true_scenes"] = {
        "background_psnr": truth_background.psnr(),
        "background_ssim": truth_background.mean_ssim(),
        "repainted_share": _mean(truth_share),
    }
    # where the loss sits: the repainted ring between the object and the predicted mask's edge
    report["box"]["ring_share_of_background"] = _mean(ring_share)
    report["box"]["ring_psnr"] = ring.psnr()
    report["removal"] = {
        "psnr": removal.psnr(), "ssim": removal.mean_ssim(),
        "blur_fill_psnr": removal_blur.psnr(), "blur_fill_ssim": removal_blur.mean_ssim(),
    }  # fmt: skip
    if removal_baseline is not None:
        report["removal"]["shapes_model_psnr"] = removal_shapes.psnr()
        report["removal"]["shapes_model_ssim"] = removal_shapes.mean_ssim()
    report["goals"] = {
        "object_accuracy": min(
            report["exact"]["object_accuracy"], report["box"]["object_accuracy"]
        ),
        "colour_word_accuracy": min(
            report["exact"]["colour_word_accuracy"], report["box"]["colour_word_accuracy"]
        ),
        "exact_mask_iou": report["exact"]["exact_mask_iou"],
        "predicted_mask_iou": report["box"]["predicted_mask_iou"],
        "background_psnr": report["box"]["background_psnr"],
        "background_ssim": report["box"]["background_ssim"],
        "repainted_share": report["box"]["repainted_share"],
    }
    report["met"] = {
        k: bool(v <= GOALS[k]) if k == "repainted_share" else bool(v >= GOALS[k])
        for k, v in report["goals"].items()
    }
    report["seconds"] = round(time.monotonic() - started, 1)
    if keep_examples:
        report["examples"] = examples
    return report


def format_report(report: dict, model: str) -> str:
    lines = [
        f"model {model}: {report['n']} held-out objects-world scenes, {report['steps']} steps, "
        f"guidance {report['guidance_scale']}",
        f"  classifier on the real objects: {report['classifier_on_real_objects']:.3f}",
    ]
    for mode in ("exact", "box"):
        m = report[mode]
        line = (
            f"  {mode:5s} mask: object {m['object_accuracy']:.3f}  colour words {m['colour_word_accuracy']:.3f}  "
            f"exact-mask IoU {m['exact_mask_iou']:.3f}  predicted-mask IoU {m['predicted_mask_iou']:.3f}  "
            f"repainted {m['repainted_share']:.2f}x the object"
        )
        if mode == "box":
            line += (
                f"\n              background PSNR {m['background_psnr']:.1f} dB, SSIM {m['background_ssim']:.3f} "
                f"(autoencoder round trip alone: {m['autoencoder_round_trip_psnr']:.1f} dB, "
                f"{m['autoencoder_round_trip_ssim']:.3f}); {100 * m['ring_share_of_background']:.0f} % of it "
                f"repainted (the ring), {m['ring_psnr']:.1f} dB there"
            )
        lines.append(line)
    t = report["true_scenes"]
    lines.append(
        f"  the true scenes, measured the same way: background PSNR {t['background_psnr']:.1f} dB, "
        f"SSIM {t['background_ssim']:.3f}, repainted {t['repainted_share']:.2f}x the object "
        "(shadows and soft edges)"
    )
    r = report["removal"]
    line = f"  removal: PSNR {r['psnr']:.1f} dB, SSIM {r['ssim']:.3f}; blur fill {r['blur_fill_psnr']:.1f} dB, {r['blur_fill_ssim']:.3f}"
    if "shapes_model_psnr" in r:
        line += f"; shapes model {r['shapes_model_psnr']:.1f} dB, {r['shapes_model_ssim']:.3f}"
    lines.append(line)
    lines.append("  goals: " + ", ".join(
        f"{k} {v:.3g} ({'met' if report['met'][k] else 'not met'}, goal {'<=' if k == 'repainted_share' else '>='} {GOALS[k]})"
        for k, v in report["goals"].items()
    ))  # fmt: skip
    return "\n".join(lines)

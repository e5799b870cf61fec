"""`smartbrush eval`: metric definitions (checked with a perfect reference filler), the shipped classifier,
and the command on a real tiny model."""

import json
import math

import numpy as np
import PIL.Image
import pytest

from smartbrush.cli import main
from smartbrush.method.masks import box_mask
from smartbrush.research import shapes_eval, world
from smartbrush.research.shapes_eval import CLASSIFIER
from smartbrush.runtime.loading import load_pipeline
from smartbrush.testing import tiny_pipeline


@pytest.fixture(scope="module")
def classifier():
    return CLASSIFIER.load(CLASSIFIER.default_path)


class PerfectFiller:
    """Paints the test scene's real object into the hole: what an ideal model would do."""

    def __call__(self, image, mask, prompt, precision, seed, **kwargs):
        scene = world.make_scene("test", seed)  # evaluate() uses the scene index as the seed
        assert np.array_equal(image, scene.background) and prompt == scene.target.short_caption
        assert mask.sum() >= scene.mask.sum() and precision in (0.0, 1.0)

        class Output:
            images = [PIL.Image.fromarray(scene.image)]
            masks = [PIL.Image.fromarray(scene.mask.astype(np.uint8) * 255)]

        return Output()


def test_the_shipped_classifier_recognises_real_objects(classifier):
    images, boxes, truth = [], [], []
    for image, box, colour, shape in shapes_eval.real_objects("test", 500, 150):
        images.append(image)
        boxes.append(box)
        truth.append((world.COLOUR_NAMES[colour], world.SHAPES[shape]))
    colours, shapes = CLASSIFIER.classify(classifier, images, boxes)
    assert np.mean([c == t[0] for c, t in zip(colours, truth)]) >= 0.97
    assert np.mean([s == t[1] for s, t in zip(shapes, truth)]) >= 0.95


def test_both_shipped_classifiers_load_into_the_one_net():
    import torch
    from safetensors.torch import load_file

    from smartbrush.research import objects_eval

    for spec in (CLASSIFIER, objects_eval.CLASSIFIER):
        stored = load_file(str(spec.default_path))
        state = spec.load(spec.default_path).state_dict()
        assert set(state) == set(stored), spec.file_name
        assert all(torch.equal(state[key], stored[key]) for key in stored)


def test_a_perfect_filler_scores_perfectly(classifier):
    report = shapes_eval.evaluate(PerfectFiller(), classifier, n=12)
    real = report["classifier_on_real_objects"]
    for mode in ("exact", "box"):
        assert report[mode]["exact_mask_iou"] == 1.0
        assert report[mode]["predicted_mask_iou"] == 1.0
        assert report[mode]["colour_accuracy"] == real["colour_accuracy"]
        assert report[mode]["shape_accuracy"] == real["shape_accuracy"]
    assert report["box"]["background_psnr"] == math.inf  # the box around the object is untouched
    assert report["met"]["exact_mask_iou"] and report["met"]["background_psnr"]


def test_an_untrained_model_is_measured_honestly(classifier):
    pipe = tiny_pipeline(seed=3)
    pipe.set_progress_bar_config(disable=True)
    report = shapes_eval.evaluate(pipe, classifier, n=3, steps=2)
    for mode in ("exact", "box"):
        for key in ("colour_accuracy", "shape_accuracy", "exact_mask_iou", "predicted_mask_iou"):
            assert 0.0 <= report[mode][key] <= 1.0, (mode, key)
        assert report[mode]["background_psnr"] > 0
    assert not all(report["met"].values())  # random weights do not paint the asked-for shapes


def test_eval_command_prints_json(tmp_path, capsys):
    folder = tmp_path / "tiny"
    tiny_pipeline(seed=1).save_pretrained(folder)
    assert main(["eval", "--model", str(folder), "--n", "1", "--steps", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1 and set(report["met"]) == set(shapes_eval.GOALS)
    assert main(["eval", "--model", str(tmp_path / "nothing"), "--n", "1"]) == 2
    assert "(no such file or folder): expected demo, shapes, a folder" in capsys.readouterr().err
    assert main(["eval", "--model", str(folder), "--n", "0"]) == 2
    assert main(["eval", "--model", str(folder), "--per-class", "0"]) == 2
    assert main(["eval", "--model", str(folder), "--per-class", "2"]) == 2  # a shapes model
    assert "--per-class measures the objects world's classes" in capsys.readouterr().err


def test_box_mask_of_a_scene_covers_its_object():
    scene = world.make_scene("test", 4)
    assert box_mask(scene.mask)[scene.mask].all()


def test_demo_command_writes_before_after_and_mask(tmp_path, capsys):
    folder = tmp_path / "tiny"
    tiny_pipeline(seed=2).save_pretrained(folder)
    out = tmp_path / "out"
    args = [
        "demo",
        "--model",
        str(folder),
        "-o",
        str(out),
        "--steps",
        "2",
        "--scale",
        "2",
        "--no-grid",
    ]
    assert main(args) == 0
    before = np.asarray(PIL.Image.open(out / "before.png"))
    after = np.asarray(PIL.Image.open(out / "after.png"))
    mask = np.asarray(PIL.Image.open(out / "mask.png")) >= 128
    assert before.shape == (64, 64, 3) and mask.shape == (64, 64) and mask.any()
    assert np.array_equal(after[~mask], before[~mask])  # only the hole changed
    for name in ("after-box.png", "box-mask.png", "predicted-mask.png"):
        assert (out / name).is_file()
    assert "after.png" in capsys.readouterr().out
    assert main(["demo", "--model", str(folder), "-o", str(out), "--scale", "0"]) == 2


def test_the_shipped_shapes_model_fills_offline(monkeypatch):

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = load_pipeline("shapes")
    pipe.set_progress_bar_config(disable=True)
    scene = world.make_scene("test", 7)  # a large star's hole
    result = pipe(scene.background, box_mask(scene.mask), "a yellow star", precision=1.0, seed=0)
    after = np.asarray(result.images[0])
    generated = world.object_pixels(after, scene.background)
    assert generated.sum() > 30  # it painted something clearly visible into the box
    assert not generated[~box_mask(scene.mask)].any()

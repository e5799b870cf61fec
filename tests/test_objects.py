"""The objects world: reading Debian's emoji font, preparing a cache, scenes, splits, captions, and the
latent + removal training path on a small world the tests make (the real one needs ~100 MB of packages)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from needs import needs
from scipy import ndimage

from smartbrush.cli import main
from smartbrush.research import objects


def make_fixture_dirs(root: Path) -> tuple[Path, Path]:
    """A photo folder (train photos reddish, test photos blue: which split a scene used is visible) and a
    sprites cache without the font: a disc per class, in a colour of its own."""
    photos = root / "photos"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    stems = ["meadow", "street", "lake", *sorted(objects.TEST_BACKGROUNDS)[:2]]
    for stem in stems:
        colour = (40, 40, 200) if stem in objects.TEST_BACKGROUNDS else (200, 60, 40)
        pixels = np.clip(np.array(colour) + rng.normal(0, 8, (300, 400, 3)), 0, 255)
        PIL.Image.fromarray(pixels.astype(np.uint8)).save(photos / f"{stem}.jpg")
    return photos, root


def fixture_sprites() -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[0:40, 0:40]
    disc = (np.hypot(yy - 19.5, xx - 19.5) < 18).astype(np.uint8) * 255
    sprites = {}
    for k, name in enumerate(objects.CLASS_NAMES):
        rgb = np.array([(k * 37) % 256, (k * 91) % 256, (k * 53) % 256], np.uint8)
        sprites[name] = np.dstack([np.broadcast_to(rgb, (40, 40, 3)), disc])
    return sprites


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    """A prepared cache from the fixture photos, with fixture sprites in place of the font's."""
    root = tmp_path_factory.mktemp("objects")
    photos, _ = make_fixture_dirs(root)
    cache = root / "cache"
    original = objects.emoji_sprites
    objects.emoji_sprites = lambda font=None: fixture_sprites()
    try:
        objects.prepare(cache, dirs=(photos,))
    finally:
        objects.emoji_sprites = original
    return cache


EMOJI = objects.EMOJI_FONT.is_file()


@needs(EMOJI, "fonts-noto-color-emoji is not installed")
def test_every_class_has_a_real_drawing_in_the_emoji_font():
    sprites = objects.emoji_sprites()
    assert set(sprites) == set(objects.CLASS_NAMES) and len(sprites) >= 60
    for name, rgba in sprites.items():
        assert rgba.dtype == np.uint8 and rgba.shape[2] == 4, name
        assert 60 <= max(rgba.shape[:2]) <= 140 and (rgba[..., 3] > 128).mean() > 0.2, name
    # the drawings differ: an apple is not a dog, the red heart not the blue one
    assert not np.array_equal(sprites["red apple"], sprites["dog"])
    red, blue = sprites["red heart"], sprites["blue heart"]
    opaque = red[..., 3] > 200
    assert red[..., 0][opaque].mean() > 150 > blue[..., 0][blue[..., 3] > 200].mean()


def test_prepare_refuses_without_the_packages(tmp_path):
    with pytest.raises(objects.UserError, match="smartbrush data install"):
        objects.prepare(tmp_path / "cache", dirs=(tmp_path / "none",), font=tmp_path / "x.ttf")
    empty = tmp_path / "empty"
    empty.mkdir()
    if EMOJI:
        with pytest.raises(objects.UserError, match="too few background photos"):
            objects.prepare(tmp_path / "cache", dirs=(empty,))
    assert not (tmp_path / "cache").exists()  # nothing half-written


def test_prepared_cache_splits_backgrounds_by_file(small_world):
    index = json.loads((small_world / "index.json").read_text())
    assert len(index["backgrounds"]["test"]) == 2 and len(index["backgrounds"]["train"]) == 3
    world = objects.ObjectsWorld(small_world, procedural_fraction=0.0)
    for split, reddish in (("train", True), ("test", False)):
        for index in range(6):
            scene = world.scene(split, index)
            corner = scene.background[:8, :8].reshape(-1, 3).mean(0)
            assert (corner[0] > corner[2]) == reddish, (split, index)


def test_scenes_are_deterministic_with_exact_masks_and_object_free_backgrounds(small_world):
    world = objects.ObjectsWorld(small_world)
    a, b = world.scene("train", 5), world.scene("train", 5)
    assert np.array_equal(a.image, b.image) and a.captions == b.captions
    assert not np.array_equal(world.scene("train", 6).image, a.image)
    for index in range(20):
        scene = world.scene("train", index)
        assert scene.image.shape == (128, 128, 3) and scene.mask.shape == (128, 128)
        assert 0.01 < scene.mask.mean() < 0.5 and scene.label in objects.CLASS_NAMES
        sprite_colour = fixture_sprites()[scene.label][
            0, 0, :3
        ]  # the class's own colour, as painted
        inner = scene.image[scene.mask].astype(int)
        assert np.abs(np.median(inner, 0) - sprite_colour).max() <= 12
        # outside the object (and its shadow, a few pixels on) the scene is its background
        from scipy import ndimage

        near = ndimage.binary_dilation(scene.mask, iterations=12)
        assert np.array_equal(scene.image[~near], scene.background[~near])
        assert all(scene.label.split()[-1] in c or any(s in c for s in objects.BY_NAME[scene.label].synonyms)
                   for c in scene.captions)  # fmt: skip


def test_recoloured_objects_take_the_colour_and_say_it_and_test_scenes_stay_as_they_were(
    small_world,
):
    """Issue 32: a share of training objects is recoloured (hue set, shading kept) and its captions
    name the colour; the coloured shapes and colour-named classes never are; test scenes do not move."""
    from skimage import color

    plain, recolouring = (objects.ObjectsWorld(small_world, recolour_fraction=f) for f in (0, 0.5))
    for index in range(8):
        assert np.array_equal(
            plain.scene("test", index).image, recolouring.scene("test", index).image
        )
    said = 0
    for index in range(60):
        scene = recolouring.scene("train", index)
        words = [w for w in objects.COLOURS if w in scene.captions[0].split()]
        if scene.label not in objects.RECOLOURABLE or not words:
            continue
        said += 1
        assert all(colour in scene.captions[0] for colour in words)
        hue, saturation, _ = color.rgb2hsv(np.median(scene.image[scene.mask], 0) / 255)
        wanted = objects.RECOLOURS[words[0]][0]
        if wanted is not None and saturation > 0.3:
            assert min(abs(hue * 360 - wanted), 360 - abs(hue * 360 - wanted)) < 25, scene.captions
    assert 15 < said < 45  # about half of the recolourable ones
    drawing = fixture_sprites()["car"]
    blue = objects.recolour(drawing, "blue")
    assert np.array_equal(blue[..., 3], drawing[..., 3])
    assert objects.RECOLOURABLE >= {"car", "teddy bear", "dog"}
    assert not objects.RECOLOURABLE & {"blue heart", "green apple", "red apple", "orange"}


def test_a_scene_asked_in_a_colour_is_the_same_scene_with_its_object_recoloured(small_world):
    """The evaluation's colour on any object: scene(split, i, colour=c) moves nothing but the object's
    pixels, and refuses what may not be recoloured."""
    from skimage import color

    world = objects.ObjectsWorld(small_world, recolour_fraction=0.4)
    checked = 0
    for index in range(12):
        plain = world.scene("test", index)
        if plain.label not in objects.RECOLOURABLE:
            with pytest.raises(ValueError, match="cannot be recoloured"):
                world.scene("test", index, colour="blue")
            continue
        blue = world.scene("test", index, colour="blue")
        assert np.array_equal(blue.mask, plain.mask) and blue.label == plain.label
        assert np.array_equal(blue.background, plain.background)
        moved = (blue.image != plain.image).any(-1)  # the object and its soft edge, nothing else
        assert moved[blue.mask].mean() > 0.9
        assert ndimage.distance_transform_edt(~blue.mask)[moved].max() < 6  # resampling's fringe
        hue = color.rgb2hsv(np.median(blue.image[blue.mask], 0) / 255)[0] * 360
        assert abs(hue - objects.RECOLOURS["blue"][0]) < 15
        checked += 1
    assert checked >= 3
    with pytest.raises(ValueError, match="cannot be recoloured"):
        world.scene("test", 0, colour="teal")


def test_no_colour_synonym_is_an_objects_name():
    """ "a lemon" asks for the fruit, not the yellow shapes' "lemon circle" (the per-class table found it)."""
    names = {
        w for c in objects.CLASSES if not c.colour for n in (c.name, *c.synonyms) for w in n.split()
    }
    for colour, synonyms in objects.COLOUR_SYNONYMS.items():
        assert not {w for s in synonyms for w in s.split()} - set(objects.COLOURS) & names, colour


def test_evaluation_prompts_are_never_trained_on():
    training = set(objects.all_training_prompts())
    rng = np.random.default_rng(0)
    for name in objects.CLASS_NAMES:
        prompt = objects.held_out_prompt(name, rng)
        assert prompt not in training, prompt
        colour = objects.BY_NAME[name].colour
        if colour:
            assert objects.HELD_OUT_COLOUR_WORDS[colour] in prompt and colour not in prompt
    for name in sorted(objects.RECOLOURABLE):  # a colour asked of any object ("one azure car here")
        for colour, word in objects.HELD_OUT_COLOUR_WORDS.items():
            prompt = objects.held_out_prompt(name, rng, colour)
            assert prompt not in training and word in prompt and colour not in prompt, prompt
    words = set(" ".join(training).split())
    assert not words & set(objects.HELD_OUT_COLOUR_WORDS.values())
    assert {"crimson", "navy", "lavender"} <= words  # the training colour synonyms are trained on


def test_data_prepare_command(small_world, tmp_path, capsys):
    assert main(["data", "prepare", "--cache-dir", str(small_world)]) == 0
    assert (
        f"{len(objects.CLASSES)} object classes, 3 training and 2 test backgrounds"
        in capsys.readouterr().out
    )
    command = objects.install_packages(dry_run=True)
    assert command[-len(objects.PACKAGES) :] == list(objects.PACKAGES) and "apt-get" in command


def test_removal_examples_target_the_object_free_background(small_world, monkeypatch):
    from smartbrush.research.datasets import ObjectsDataset
    from smartbrush.research.training import REMOVAL_PROMPT, RecipeDataset
    from smartbrush.research.training_config import DEFAULTS

    monkeypatch.setenv("SMARTBRUSH_DATA_DIR", str(small_world.parent))
    monkeypatch.setattr(objects, "CACHE_VERSION", small_world.name)
    raw = ObjectsDataset("train", 128)
    recipe = {**DEFAULTS["recipe"], "removal_fraction": 1.0}
    data = RecipeDataset(raw, recipe, num_levels=5)
    for index in range(8):
        example, scene = data[index], raw[data.raw_index(index)]
        coarse = example["coarse"][0] > 0
        assert example["prompt"] == REMOVAL_PROMPT
        assert (
            coarse[scene["mask"]].all() and coarse.sum() > scene["mask"].sum()
        )  # a lasso around it
        pixels = np.round((example["pixels"].transpose(1, 2, 0) + 1) * 127.5).astype(int)
        assert np.array_equal(pixels[coarse], scene["background"][coarse])  # the object is gone
        assert np.array_equal(pixels[~coarse], scene["image"][~coarse])
        assert np.array_equal(example["mask"], example["coarse"])  # regenerate all of the lasso
    plain = RecipeDataset(raw, DEFAULTS["recipe"], num_levels=5)
    assert all(plain[i]["prompt"] != REMOVAL_PROMPT for i in range(8))


def test_latent_model_with_removal_trains_exports_and_erases(small_world, tmp_path, monkeypatch):
    """train-autoencoder, then a latent SmartBrush on it with removal, loaded as users load models."""
    from smartbrush.runtime.loading import load_pipeline

    monkeypatch.setenv("SMARTBRUSH_DATA_DIR", str(small_world.parent))
    monkeypatch.setattr(objects, "CACHE_VERSION", small_world.name)
    ae = tmp_path / "ae"
    assert main(["train-autoencoder", "configs/demo-autoencoder.toml", "--set", f"run.output_dir={ae}",
                 "--set", "model.block_out_channels=[8, 16]", "--set", "train.max_steps=3",
                 "--set", "train.batch_size=2", "--set", "train.crop=32", "--set", "train.max_minutes=0",
                 "--set", "model.norm_num_groups=4"]) == 0  # fmt: skip
    config = json.loads((ae / "autoencoder" / "config.json").read_text())
    assert config["latent_channels"] == 4 and 0.01 < config["scaling_factor"] < 100
    run = tmp_path / "run"
    assert main(["train", "configs/demo.toml", "--set", f"run.output_dir={run}",
                 "--set", f"model.vae={ae / 'autoencoder'}", "--set", "model.resolution=64",
                 "--set", "model.block_out_channels=[16, 32]", "--set", "model.norm_num_groups=8",
                 "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "train.max_minutes=0",
                 "--set", "train.mixed_precision=no", "--set", "export.dir="]) == 0  # fmt: skip
    pipe = load_pipeline(str(run / "pipeline"))
    pipe.set_progress_bar_config(disable=True)
    assert (
        pipe.vae is not None and pipe.resolution == 64 and pipe.config.removal_prompt == "<remove>"
    )
    image = np.full((96, 96, 3), 120, np.uint8)
    mask = np.zeros((96, 96), bool)
    mask[30:60, 20:70] = True
    seen = []
    pipe.encode_prompt = (
        lambda original: lambda prompts: seen.extend(prompts) or original(prompts)
    )(pipe.encode_prompt)
    out = pipe(image, mask, "", seed=0, num_inference_steps=2, removal="model")
    assert "<remove>" in seen  # an empty prompt asks the model for its own removal
    after = np.asarray(out.images[0])
    assert np.array_equal(after[~mask], image[~mask])


class PerfectFiller:
    """What an ideal model does on a test scene: paints the scene's own object, or erases it exactly."""

    config = {"removal_prompt": None}  # erases through the pipeline's removal only

    def __init__(self, world, colour_shift: int = 0):
        self.world = world
        self.colour_shift = colour_shift  # paint an asked colour this many COLOURS further on

    def __call__(self, image, mask, prompt, precision, seed, **kwargs):
        scene = self.world.scene("test", seed)  # evaluate() uses the scene index as the seed
        words = {
            w: c for c, held_out in objects.HELD_OUT_COLOUR_WORDS.items() for w in (c, held_out)
        }
        asked = [words[w] for w in prompt.replace(",", "").split() if w in words]
        if asked and scene.label in objects.RECOLOURABLE:  # a colour asked of any object
            k = (objects.COLOURS.index(asked[0]) + self.colour_shift) % len(objects.COLOURS)
            scene = self.world.scene("test", seed, colour=objects.COLOURS[k])
        erase = prompt == ""
        result = scene.background if erase else scene.image
        changed = (result != image).any(-1)
        mask_image = (changed if not erase else mask).astype(np.uint8) * 255

        class Output:
            images = [PIL.Image.fromarray(result)]
            masks = [PIL.Image.fromarray(scene.mask.astype(np.uint8) * 255)]
            alphas = [PIL.Image.fromarray(mask_image)]

        return Output()


def test_objects_evaluation_scores_a_perfect_filler_perfectly(small_world):
    from smartbrush.research import objects_eval

    world = objects.ObjectsWorld(small_world)
    classifier = objects_eval.CLASSIFIER.train(objects_eval.training_objects(world, 200), steps=60)
    report = objects_eval.evaluate(PerfectFiller(world), world, classifier, n=6)
    real = report["classifier_on_real_objects"]
    for mode in ("exact", "box"):
        assert report[mode]["object_accuracy"] == real
        per_class = report[mode]["per_class"]  # the weak classes' table: every scene counted once
        assert sum(n for _, n in per_class.values()) == 6
        assert sum(right for right, _ in per_class.values()) / 6 == real
        assert (
            report[mode]["exact_mask_iou"] > 0.9
        )  # the object's own pixels (less the faintest edge)
        # soft edges and shadows change pixels by less than CHANGED: even the truth repaints a bit more
        assert 1.0 <= report[mode]["repainted_share"] < 1.3
    # the truth's own shadows and soft edges lie outside its object: the filler scores what the truth does
    truth = report["true_scenes"]
    assert report["box"]["background_psnr"] == truth["background_psnr"] < math.inf
    assert report["box"]["background_ssim"] == pytest.approx(truth["background_ssim"])
    assert report["box"]["repainted_share"] == pytest.approx(truth["repainted_share"])
    assert report["removal"]["psnr"] == math.inf
    assert report["removal"]["blur_fill_psnr"] < 60  # the baseline is measured, not perfect
    assert report["met"]["background_psnr"] and report["met"]["repainted_share"]  # ideal fills pass
    assert "removal: PSNR inf dB" in objects_eval.format_report(report, "perfect")
    # colour on any object: the asked colour painted is named so, and its hue is the asked one's
    for mode in ("exact", "box"):
        assert report[mode]["any_object_colour_accuracy"] == 1.0
        assert report[mode]["any_object_hue_error"] < 3
        assert report[mode]["any_object_accuracy"] == report["classifier_on_recoloured_objects"]
    assert report["met"]["any_object_colour_accuracy"] and report["met"]["any_object_hue_error"]
    assert report["colour_rule_on_round_trip"] == 1.0  # no autoencoder here: the truth itself


def test_the_per_class_table_counts_every_class_alike(small_world):
    from smartbrush.research import objects_eval

    world = objects.ObjectsWorld(small_world)
    classifier = objects_eval.CLASSIFIER.train(objects_eval.training_objects(world, 200), steps=60)
    table = objects_eval.per_class_accuracy(PerfectFiller(world), world, classifier, per_class=2)
    assert set(table) == set(objects.CLASS_NAMES)
    for row in table.values():  # a perfect filler is named as its real object is, in both modes
        assert row["exact"] == row["box"] == row["real"] and row["real"][1] == 2
        assert row["named_instead"]["exact"] == row["named_instead"]["box"]
    lines = objects_eval.format_per_class(table).splitlines()
    assert len(lines) == 2 + len(objects.CLASS_NAMES)
    shares = [float(line.split("|")[2]) for line in lines[2:]]
    assert shares == sorted(shares)  # weakest first


def test_a_fill_in_the_wrong_colour_is_named_so(small_world):
    """The colour rule is not lenient: the right object in the next colour of COLOURS is never counted."""
    from smartbrush.research import objects_eval

    world = objects.ObjectsWorld(small_world)
    classifier = objects_eval.CLASSIFIER.train(objects_eval.training_objects(world, 100), steps=20)
    result = objects_eval.colour_on_any_object(
        PerfectFiller(world, colour_shift=1), world, classifier, n=9, steps=1, guidance=None,
        mask_threshold=0.5,
    )  # fmt: skip
    for mode in ("exact", "box"):
        assert result[mode]["any_object_colour_accuracy"] == 0.0
        assert result[mode]["any_object_hue_error"] > 15

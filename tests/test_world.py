"""The shapes world: deterministic scenes, exact masks, captions, disjoint splits."""

import numpy as np
import pytest

from smartbrush.method.masks import bounding_box
from smartbrush.research import world


def test_same_arguments_give_the_same_scene_and_others_differ():
    a, b = world.make_scene("train", 123), world.make_scene("train", 123)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.background, b.background)
    assert np.array_equal(a.mask, b.mask) and a.target.caption == b.target.caption
    assert not np.array_equal(a.image, world.make_scene("train", 124).image)
    assert not np.array_equal(a.image, world.make_scene("test", 123).image)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_the_target_changes_exactly_its_mask(split):
    for index in range(60):
        scene = world.make_scene(split, index)
        assert scene.image.shape == (32, 32, 3) and scene.image.dtype == np.uint8
        changed = np.any(scene.image != scene.background, axis=-1)
        assert np.array_equal(changed, scene.mask), index
        # and every object pixel is clearly different from the background (what eval relies on)
        assert np.array_equal(world.object_pixels(scene.image, scene.background), scene.mask)


def test_distractors_stay_in_the_background_and_never_touch_the_target():
    scenes = [world.make_scene("train", i) for i in range(80)]
    with_distractor = [s for s in scenes if s.distractors]
    assert len(with_distractor) >= 10
    for scene in with_distractor:
        for other in scene.distractors:
            assert not (other.mask & scene.mask).any()
            assert world.object_pixels(scene.background, scene.image)[other.mask].sum() == 0


def test_the_world_covers_every_shape_colour_texture_and_size():
    seen = {"shape": set(), "colour": set(), "texture": set(), "size": set()}
    for index in range(400):
        target = world.make_scene("train", index).target
        for key in seen:
            seen[key].add(getattr(target, key))
    assert seen == {
        "shape": set(world.SHAPES),
        "colour": set(world.COLOURS),
        "texture": set(world.TEXTURES),
        "size": set(world.SIZES),
    }
    assert len(world.SHAPES) >= 6 and len(world.COLOURS) >= 8


def test_shapes_have_distinct_masks_inside_their_box():
    box = (4, 4, 24, 24)
    masks = {shape: world.shape_mask(shape, box, 32) for shape in world.SHAPES}
    for shape, mask in masks.items():
        assert mask.sum() > 100, shape
        x, y, width, height = bounding_box(mask)
        assert 3 <= x and 3 <= y and x + width <= 25 and y + height <= 25, shape  # within a pixel
    names = list(masks)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert (masks[a] ^ masks[b]).sum() > 20, (a, b)


def test_captions_and_prompts():
    scene = world.make_scene("val", 7)
    target = scene.target
    assert target.label == target.shape
    words = target.caption.split()
    assert words[0] == "a" and words[1] in world.SIZES and words[2] == target.colour
    assert words[-1] == target.shape
    assert ("striped" in words or "dotted" in words) == (target.texture != "plain")
    prompts = world.all_prompts()
    assert "" in prompts and target.caption in prompts and target.short_caption in prompts


def test_bad_split_or_index_is_refused():
    with pytest.raises(ValueError, match="unknown split"):
        world.make_scene("holdout", 0)
    with pytest.raises(ValueError, match="out of range"):
        world.make_scene("test", world.SPLIT_SIZES["test"])

"""The shapes world: synthetic scenes with exact instance masks, labels and captions (deterministic by seed).

A scene is a background (gradients, stripes, checks, smooth noise, blobs; several layered per image) with
one *target* object and sometimes a smaller distractor. Objects are one of SHAPES in one of COLOURS, plain
or textured (striped/dotted), small or large. Every scene keeps the target's exact mask (the pixels that
were painted, no antialiasing) and the target-free background, so evaluation can measure what changed.

Colours are chosen so that object pixels always stand out from the background: backgrounds are desaturated
mid-tones (every channel in about [0.35, 0.75]), objects are saturated, white or black, and texture "ink" is
black on light colours and white on dark ones. `object_pixels` uses that margin to find a generated object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw

SHAPES = ("circle", "square", "triangle", "star", "heart", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 25, 25),
    "green": (20, 180, 40),
    "blue": (25, 55, 225),
    "yellow": (245, 225, 20),
    "orange": (250, 130, 10),
    "purple": (150, 30, 200),
    "white": (250, 250, 250),
    "black": (10, 10, 10),
}
COLOUR_NAMES = tuple(COLOURS)
LIGHT_COLOURS = ("yellow", "orange", "white")  # textured with black ink; the others with white ink
TEXTURES = ("plain", "striped", "dotted")
SIZES = {
    "small": (0.34, 0.44),
    "large": (0.52, 0.68),
}  # object side as a fraction of the image side

# Seeds of the splits: disjoint ranges, so no test scene is ever seen in training.
SPLIT_OFFSETS = {"train": 0, "val": 10_000_000, "test": 20_000_000}
SPLIT_SIZES = {"train": 10_000_000, "val": 10_000, "test": 10_000}

OBJECT_MARGIN = (
    40 / 255
)  # every object pixel differs from the background by more (max over channels)


@dataclass
class WorldObject:
    shape: str
    colour: str
    texture: str
    size: str
    mask: np.ndarray  # HxW bool, exact

    @property
    def label(self) -> str:
        return self.shape

    @property
    def caption(self) -> str:
        """The full caption, e.g. "a small red striped circle"."""
        texture = "" if self.texture == "plain" else f" {self.texture}"
        return f"a {self.size} {self.colour}{texture} {self.shape}"

    @property
    def short_caption(self) -> str:
        return f"a {self.colour} {self.shape}"


@dataclass
class Scene:
    image: np.ndarray  # HxWx3 uint8, with the target
    background: np.ndarray  # HxWx3 uint8, the same scene without the target
    target: WorldObject | None
    distractors: list[WorldObject]

    @property
    def mask(self) -> np.ndarray:
        if self.target is None:  # the AttributeError `None.mask` raised before, with a reason
            raise AttributeError("a scene made with target=False has no target mask")
        return self.target.mask


def all_prompts() -> list[str]:
    """Every prompt training can use (labels, short and full captions) and the empty prompt."""
    prompts = {""}
    for shape in SHAPES:
        prompts.add(shape)
        for colour in COLOUR_NAMES:
            for texture in TEXTURES:
                for size in SIZES:
                    obj = WorldObject(shape, colour, texture, size, np.zeros((1, 1), bool))
                    prompts.update((obj.caption, obj.short_caption))
    return sorted(prompts)


def scene_rng(split: str, index: int) -> np.random.Generator:
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_OFFSETS)}")
    if not 0 <= index < SPLIT_SIZES[split]:
        raise ValueError(f"scene index {index} out of range for split {split!r}")
    return np.random.default_rng(SPLIT_OFFSETS[split] + index)


def make_scene(
    split: str, index: int, size: int = 32, distractors: bool = True, target: bool = True
) -> Scene:
    """Scene `index` of a split, rendered at size x size pixels; the same arguments give the same scene."""
    rng = scene_rng(split, index)
    background = random_background(rng, size)
    objects: list[WorldObject] = []
    boxes: list[tuple[int, int, int, int]] = []
    count = (1 if target else 0) + int(distractors and rng.random() < 0.4)
    for k in range(count):
        size_name = "small" if k > 0 else str(rng.choice(list(SIZES)))  # distractors are small
        placed = _place(rng, size, SIZES[size_name], boxes)
        if placed is None:
            break
        boxes.append(placed)
        shape = str(rng.choice(SHAPES))
        objects.append(
            WorldObject(
                shape=shape,
                colour=str(rng.choice(COLOUR_NAMES)),
                texture=str(rng.choice(TEXTURES, p=[0.5, 0.25, 0.25])),
                size=size_name,
                mask=shape_mask(shape, placed, size),
            )
        )
    texture_phase = rng.integers(0, 6, size=len(objects))
    without_target = background.copy()
    for obj, phase in zip(objects[1:] if target else objects, texture_phase[1:], strict=False):
        paint_object(without_target, obj, int(phase))
    image = without_target.copy()
    if target and objects:
        paint_object(image, objects[0], int(texture_phase[0]))
    to_u8 = lambda a: (np.clip(a, 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
    return Scene(
        image=to_u8(image),
        background=to_u8(without_target),
        target=objects[0] if target and objects else None,
        distractors=objects[1:] if target else objects,
    )


# -- objects --------------------------------------------------------------------------------------------


def _place(rng, size, fraction_range, boxes, tries: int = 20):
    """A square (x0, y0, x1, y1) for an object, inside the image and clear of `boxes` by a pixel."""
    for _ in range(tries):
        side = int(round(rng.uniform(*fraction_range) * size))
        x0 = int(rng.integers(1, size - side))
        y0 = int(rng.integers(1, size - side))
        box = (x0, y0, x0 + side, y0 + side)
        if all(
            box[2] + 1 < b[0] or b[2] + 1 < box[0] or box[3] + 1 < b[1] or b[3] + 1 < box[1]
            for b in boxes
        ):
            return box
    return None


def shape_outline(shape: str, box: tuple[int, int, int, int]) -> list[tuple[float, float]] | None:
    """Polygon vertices of a shape inside box (None for the circle, drawn as an ellipse)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = x0 + w / 2, y0 + h / 2
    if shape == "circle":
        return None
    if shape == "square":
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if shape == "triangle":
        return [(cx, y0), (x1, y1), (x0, y1)]
    if shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.24)
        cy_star = cy + 0.06 * h  # the star's centroid sits a little below its top point
        return [
            (cx + r * w * np.cos(a), cy_star - r * h * np.sin(a))
            for r, a in zip(radii, angles, strict=True)
        ]
    if shape == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        hx = 16 * np.sin(t) ** 3
        hy = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return [(cx + x / 34 * w, cy - (y + 2.5) / 31 * h) for x, y in zip(hx, hy, strict=True)]
    if shape == "cross":
        a, b = 0.32, 0.68  # arms one third of the side wide
        pts = [
            (a, 0),
            (b, 0),
            (b, a),
            (1, a),
            (1, b),
            (b, b),
            (b, 1),
            (a, 1),
            (a, b),
            (0, b),
            (0, a),
            (a, a),
        ]
        return [(x0 + u * w, y0 + v * h) for u, v in pts]
    raise ValueError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")


def shape_mask(shape: str, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """The exact (aliased) mask of a shape drawn in box (to within a pixel) on a size x size canvas."""
    canvas = PIL.Image.new("1", (size, size), 0)
    draw = PIL.ImageDraw.Draw(canvas)
    outline = shape_outline(shape, box)
    if outline is None:
        draw.ellipse([box[0], box[1], box[2] - 1, box[3] - 1], fill=1)
    else:
        # Pillow fills pixels whose centres lie inside; shift so the box [x0, x1) is covered
        draw.polygon([(x - 0.5, y - 0.5) for x, y in outline], fill=1)
    return np.asarray(canvas, dtype=bool)


def paint_object(canvas: np.ndarray, obj: WorldObject, phase: int = 0) -> None:
    """Paint an object into a float HxWx3 canvas in place: flat colour, plus ink for its texture."""
    colour = np.asarray(COLOURS[obj.colour], dtype=np.float64) / 255
    ink = np.zeros(3) if obj.colour in LIGHT_COLOURS else np.ones(3) * 0.98
    height, width = obj.mask.shape
    yy, xx = np.mgrid[0:height, 0:width]
    if obj.texture == "striped":
        pattern = (xx + yy + phase) % 4 == 0  # one-pixel diagonal stripes
    elif obj.texture == "dotted":
        pattern = ((xx + phase) % 3 == 0) & ((yy + phase // 3) % 3 == 0)
    else:
        pattern = np.zeros_like(obj.mask)
    canvas[obj.mask] = colour
    canvas[obj.mask & pattern] = ink


# -- backgrounds ----------------------------------------------------------------------------------------


def background_colour(rng: np.random.Generator) -> np.ndarray:
    """A desaturated mid-tone: each channel within about [0.37, 0.73]."""
    value = rng.uniform(0.45, 0.62)
    tint = rng.uniform(-1, 1, size=3) * rng.uniform(0, 0.17)
    return value * (1 + tint)


def random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float HxWx3 background: a base pattern, maybe a second one over a half-plane, maybe blobs."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = _pattern(rng, size, xx, yy)
    if rng.random() < 0.5:  # a second pattern over a random half-plane
        angle = rng.uniform(0, 2 * np.pi)
        side = (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle) > rng.uniform(-0.3, 0.3)
        image = np.where(side[..., None], _pattern(rng, size, xx, yy), image)
    if rng.random() < 0.5:  # soft-edged blobs
        for _ in range(int(rng.integers(1, 5))):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.3)
            blob = np.clip(1.5 - np.hypot(xx - cx, yy - cy) / r, 0, 1)[..., None]
            image = image * (1 - blob) + background_colour(rng) * blob
    image += rng.normal(0, 0.012, size=image.shape)  # sensor-like grain
    return np.clip(image, 0.33, 0.77)


def _pattern(rng, size, xx, yy) -> np.ndarray:
    a, b = background_colour(rng), background_colour(rng)
    kind = rng.choice(("flat", "gradient", "stripes", "checks", "noise"))
    angle = rng.uniform(0, np.pi)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    if kind == "flat":
        weight = np.zeros((size, size))
    elif kind == "gradient":
        weight = (along - along.min()) / max(np.ptp(along), 1e-6)
    elif kind == "stripes":
        period = rng.uniform(3, 9) / size
        weight = (np.floor(along / period * 2) % 2).astype(float)
    elif kind == "checks":
        period = int(rng.integers(2, 7))
        grid = np.arange(size) // period
        weight = ((grid[:, None] + grid[None, :]) % 2).astype(float)
    else:  # smooth noise: bilinearly upsampled random grid
        cells = int(rng.integers(3, 8))
        coarse = PIL.Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
        weight = (
            np.asarray(coarse.resize((size, size), PIL.Image.Resampling.BILINEAR), dtype=float)
            / 255
        )
    return a * (1 - weight[..., None]) + b * weight[..., None]


# -- measuring what was generated -----------------------------------------------------------------------


def object_pixels(
    image: np.ndarray, background: np.ndarray, margin: float = OBJECT_MARGIN
) -> np.ndarray:
    """Pixels where `image` differs from the object-free `background` by more than `margin` (HxW bool)."""
    difference = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=-1)
    return difference > margin * 255


def render_grid(rows: list[list[np.ndarray]], scale: int = 4, gap: int = 2) -> PIL.Image.Image:
    """Tile RGB (or grey) arrays into one image, each upscaled `scale` x with nearest neighbours."""
    tiles = [[_rgb(t) for t in row] for row in rows]
    h = max(t.shape[0] for row in tiles for t in row) * scale
    w = max(t.shape[1] for row in tiles for t in row) * scale
    columns = max(len(row) for row in tiles)
    grid = PIL.Image.new("RGB", (columns * (w + gap) + gap, len(tiles) * (h + gap) + gap), "white")
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            image = PIL.Image.fromarray(tile).resize((w, h), PIL.Image.Resampling.NEAREST)
            grid.paste(image, (gap + c * (w + gap), gap + r * (h + gap)))
    return grid


def _rgb(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return array.astype(np.uint8)

"""The objects world: real object drawings with exact masks, pasted on crops of real photos.

Objects are the colour bitmaps of Noto Color Emoji (Debian's fonts-noto-color-emoji; 136 x 128 RGBA in
the font's CBDT table, read with fontTools), named from their Unicode names ("red apple", "dog face").
Backgrounds are Debian's wallpaper photos (mate-backgrounds, ukui-wallpapers, gnome-backgrounds) and
Krita's paper patterns, as random crops, scales and flips, plus the shapes world's procedural backgrounds.

A scene pastes one target object (random scale, position, rotation, mirror, sometimes a soft shadow) and
sometimes a smaller distractor. Its exact mask is the pasted alpha (>= 0.5); the scene without the target
is kept, for removal training and for evaluation. Splits: whole background images are held out for
"test" (TEST_BACKGROUNDS) and scene seeds are disjoint, as in the shapes world. The emoji font has one
drawing per class, so test objects are the training drawings in unseen poses and on unseen photos.

`smartbrush data install` apt-installs the packages; `smartbrush data prepare` (also run on first use)
reads them into a cache of small arrays, so training never decodes a 4096-px wallpaper.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageFilter
from scipy import ndimage

from smartbrush.research import world
from smartbrush.wire.errors import UserError

PACKAGES = ("fonts-noto-color-emoji", "mate-backgrounds", "ukui-wallpapers", "gnome-backgrounds")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
BACKGROUND_DIRS = (Path("/usr/share/backgrounds"), Path("/usr/share/krita/patterns"))
PHOTO_SIDE = 512  # cached backgrounds: shorter side in pixels
# Held out from training (file stems): photos of several kinds, so the test split is varied.
TEST_BACKGROUNDS = frozenset(
    {"Garden", "LadyBird", "Storm", "calla", "city", "goldfish", "wood-l", "truchet-d",
     "05_paper-torchon", "09_drawed_crosshatched"}
)  # fmt: skip
CACHE_VERSION = "objects-world-1"


@dataclass(frozen=True)
class ObjectClass:
    name: str  # the label, e.g. "dog"
    emoji: str  # the Unicode name of its drawing
    synonyms: tuple[str, ...] = ()  # more names used in training captions
    colour: str | None = None  # for the coloured shapes: their colour word
    shape: str | None = None


# More words for each colour, used in training captions so that the text encoder's sense of colour, not
# nine fixed words, is what the model learns to follow; evaluation's colour words (HELD_OUT_COLOUR_WORDS,
# below) are none of these, and none is an object's name: "lemon", "tangerine", "cherry red" and "coffee"
# were, and the lemon and the orange came out as yellow and orange shapes (issue 32's per-class table).
COLOUR_SYNONYMS = {
    "red": ("crimson", "ruby", "blood red"), "orange": ("apricot", "pumpkin", "bright orange"),
    "yellow": ("mustard", "canary yellow", "sunny yellow"), "green": ("lime", "jade", "forest green"),
    "blue": ("navy", "cobalt", "sky blue"), "purple": ("lavender", "plum", "lilac"),
    "brown": ("tan", "walnut", "chestnut"), "black": ("jet black", "coal", "pitch black"),
    "white": ("snow white", "pearl", "milky white"),
}  # fmt: skip


def _coloured(shape: str, emoji_names: dict[str, str]) -> list[ObjectClass]:
    return [
        ObjectClass(
            f"{colour} {shape}",
            emoji,
            tuple(f"{word} {shape}" for word in COLOUR_SYNONYMS[colour]),
            colour=colour,
            shape=shape,
        )
        for colour, emoji in emoji_names.items()
    ]


CLASSES: tuple[ObjectClass, ...] = (
    # fruit, vegetables and food
    ObjectClass("red apple", "red apple", ("apple",)),
    ObjectClass("green apple", "green apple"),
    ObjectClass("banana", "banana"),
    ObjectClass("grapes", "grapes", ("bunch of grapes",)),
    ObjectClass("strawberry", "strawberry"),
    ObjectClass("cherries", "cherries", ("cherry",)),
    ObjectClass("lemon", "lemon"),
    ObjectClass("orange", "tangerine", ("tangerine", "orange fruit")),
    ObjectClass("pineapple", "pineapple"),
    ObjectClass("watermelon", "watermelon", ("melon slice",)),
    ObjectClass("carrot", "carrot"),
    ObjectClass("mushroom", "mushroom"),
    ObjectClass("doughnut", "doughnut", ("donut",)),
    ObjectClass("pizza", "slice of pizza", ("slice of pizza",)),
    ObjectClass("cake", "birthday cake", ("birthday cake",)),
    # animals
    ObjectClass("dog", "dog face", ("puppy", "dog face")),
    ObjectClass("cat", "cat face", ("kitten", "cat face")),
    ObjectClass("rabbit", "rabbit face", ("bunny",)),
    ObjectClass("pig", "pig face", ("piglet",)),
    ObjectClass("frog", "frog face", ("toad",)),
    ObjectClass("panda", "panda face", ("panda bear",)),
    ObjectClass("lion", "lion face", ("lion face",)),
    ObjectClass("penguin", "penguin"),
    ObjectClass("chicken", "chicken", ("hen",)),
    ObjectClass("fish", "tropical fish", ("tropical fish",)),
    ObjectClass("turtle", "turtle", ("tortoise",)),
    ObjectClass("octopus", "octopus"),
    ObjectClass("butterfly", "butterfly"),
    ObjectClass("ladybug", "lady beetle", ("ladybird", "beetle")),
    ObjectClass("snail", "snail"),
    # plants
    ObjectClass("sunflower", "sunflower"),
    ObjectClass("tulip", "tulip"),
    ObjectClass("rose", "rose", ("red rose",)),
    ObjectClass("cactus", "cactus"),
    ObjectClass("fir tree", "evergreen tree", ("pine tree", "christmas tree")),
    ObjectClass("palm tree", "palm tree"),
    ObjectClass("clover", "four leaf clover", ("four leaf clover", "shamrock")),
    ObjectClass("maple leaf", "maple leaf", ("autumn leaf",)),
    # vehicles
    ObjectClass("car", "automobile", ("automobile", "red car")),
    ObjectClass("bus", "bus"),
    ObjectClass("bicycle", "bicycle", ("bike",)),
    ObjectClass("airplane", "airplane", ("plane", "aeroplane")),
    ObjectClass("rocket", "rocket"),
    ObjectClass("sailboat", "sailboat", ("boat",)),
    ObjectClass("fire truck", "fire engine", ("fire engine",)),
    ObjectClass("tractor", "tractor"),
    # everyday objects
    ObjectClass("alarm clock", "alarm clock", ("clock",)),
    ObjectClass("umbrella", "umbrella"),
    ObjectClass("guitar", "guitar"),
    ObjectClass("soccer ball", "soccer ball", ("football", "ball")),
    ObjectClass("teddy bear", "teddy bear", ("toy bear",)),
    ObjectClass("light bulb", "electric light bulb", ("lamp bulb",)),
    ObjectClass("books", "books", ("stack of books",)),
    ObjectClass("key", "key"),
    ObjectClass("crown", "crown"),
    ObjectClass("coffee cup", "hot beverage", ("cup of coffee", "mug")),
    ObjectClass("balloon", "balloon"),
    ObjectClass("gift", "wrapped present", ("present", "gift box")),
    ObjectClass("candle", "candle"),
    ObjectClass("trophy", "trophy", ("cup trophy",)),
    ObjectClass("anchor", "anchor"),
    ObjectClass("house", "house building", ("home",)),
    ObjectClass("star", "white medium star", ("yellow star",)),
    # the coloured geometric shapes
    *_coloured(
        "circle",
        {
            "red": "large red circle",
            "orange": "large orange circle",
            "yellow": "large yellow circle",
            "green": "large green circle",
            "blue": "large blue circle",
            "purple": "large purple circle",
            "brown": "large brown circle",
            "black": "medium black circle",
            "white": "medium white circle",
        },
    ),  # fmt: skip
    *_coloured(
        "square",
        {
            "red": "large red square",
            "orange": "large orange square",
            "yellow": "large yellow square",
            "green": "large green square",
            "blue": "large blue square",
            "purple": "large purple square",
            "brown": "large brown square",
            "black": "black large square",
            "white": "white large square",
        },
    ),  # fmt: skip
    *_coloured(
        "heart",
        {
            "red": "heavy black heart",
            "orange": "orange heart",
            "yellow": "yellow heart",
            "green": "green heart",
            "blue": "blue heart",
            "purple": "purple heart",
            "brown": "brown heart",
            "black": "black heart",
            "white": "white heart",
        },
    ),  # fmt: skip
)
CLASS_NAMES = tuple(c.name for c in CLASSES)
BY_NAME = {c.name: c for c in CLASSES}
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "brown", "black", "white")


def says_a_colour(name: str) -> bool:
    return bool(set(COLOURS) & set(name.split()))


# what may be recoloured: not the coloured shapes, nor a class whose name says a colour ("green apple")
RECOLOURABLE = frozenset(c.name for c in CLASSES if not c.colour and not says_a_colour(c.name))


def colourless_names(cls: ObjectClass) -> list[str]:
    """The class's names that say no colour (a recoloured car is not a "red car")."""
    return [n for n in (cls.name, *cls.synonyms) if not says_a_colour(n)]


# Caption words. Training uses these; evaluation's paraphrases and colour words below are never trained on.
SIZE_WORDS = {"small": (0.22, 0.4), "large": (0.4, 0.62)}  # object side / image side
TEMPLATES = (
    "{name}",
    "a {name}",
    "a {size} {name}",
    "a {name} {where}",
    "the {name}",
    "an image of a {name}",
)
HELD_OUT_TEMPLATES = ("a picture of a {name}", "one {name} here", "a {name}, painted")
HELD_OUT_COLOUR_WORDS = {
    "red": "scarlet", "orange": "amber", "yellow": "golden", "green": "emerald", "blue": "azure",
    "purple": "violet", "brown": "chocolate", "black": "ebony", "white": "ivory",
}  # fmt: skip


@dataclass
class ObjectScene:
    image: np.ndarray  # HxWx3 uint8, with the target
    background: np.ndarray  # HxWx3 uint8, the same scene without the target
    mask: np.ndarray  # HxW bool: the target's exact mask
    label: str
    captions: list[str] = field(default_factory=list)


# -- the data: install, prepare, load --------------------------------------------------------------------


def install_packages(dry_run: bool = False) -> list[str]:
    """apt-get install the packages the world is made of (sudo when not root); the command run."""
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    if os.geteuid() != 0:
        command.insert(0, "sudo")
    if not dry_run:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL)
        if done.returncode:
            raise UserError(f"`{' '.join(command)}` failed (exit {done.returncode})")
    return command


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return (
        Path(os.environ.get("SMARTBRUSH_DATA_DIR") or user_cache_dir("smartbrush")) / CACHE_VERSION
    )


def emoji_sprites(font: Path = EMOJI_FONT) -> dict[str, np.ndarray]:
    """Every class's drawing as an RGBA uint8 array, trimmed to its alpha."""
    from fontTools.ttLib import TTFont

    if not font.is_file():
        raise UserError(
            f"the emoji font is missing ({font}): run `smartbrush data install` "
            f"(apt-get install {PACKAGES[0]})"
        )
    ttf = TTFont(str(font))
    glyph_of = {}
    cmap = ttf.getBestCmap()
    assert cmap is not None, f"{font} has no Unicode character map"  # Noto Color Emoji has one
    for code, glyph in cmap.items():
        try:
            glyph_of[unicodedata.name(chr(code)).lower()] = glyph
        except ValueError:
            continue
    strike = ttf["CBDT"].strikeData[0]
    sprites = {}
    for cls in CLASSES:
        bitmap = strike[glyph_of[cls.emoji]]
        bitmap.decompile()
        rgba = np.asarray(PIL.Image.open(io.BytesIO(bitmap.imageData)).convert("RGBA"))
        alpha = rgba[..., 3] > 0
        rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
        sprites[cls.name] = rgba[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    return sprites


def background_files(dirs=BACKGROUND_DIRS) -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png", ".webp"}
    files = [
        p for d in dirs if d.is_dir() for p in sorted(d.rglob("*")) if p.suffix.lower() in suffixes
    ]
    # several packages ship one photo at several sizes: keep the first of each name stem
    seen, unique = set(), []
    for path in files:
        stem = path.stem.split("_3840")[0].split("_5640")[0]
        if stem not in seen:
            seen.add(stem)
            unique.append(path)
    return unique


def prepare(cache_dir: Path | None = None, dirs=BACKGROUND_DIRS, font: Path = EMOJI_FONT) -> Path:
    """Read the packages once into cache_dir: sprites.npz, backgrounds/<split>/*.png, index.json."""
    cache_dir = Path(cache_dir or default_cache_dir())
    if (cache_dir / "index.json").is_file():
        return cache_dir
    sprites = emoji_sprites(font)
    files = background_files(dirs)
    if len(files) < 4 or not any(p.stem in TEST_BACKGROUNDS for p in files):
        raise UserError(
            "too few background photos in "
            f"{', '.join(map(str, dirs))}: run `smartbrush data install` ({' '.join(PACKAGES[1:])})"
        )
    partial = cache_dir.with_name(cache_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    index: dict = {"backgrounds": {"train": [], "test": []}, "sources": {}}
    for split in index["backgrounds"]:
        (partial / "backgrounds" / split).mkdir(parents=True)
    for path in files:
        with PIL.Image.open(path) as opened:
            opened.draft("RGB", (PHOTO_SIDE * 2, PHOTO_SIDE * 2))  # JPEG: decode at a lower scale
            image = opened.convert("RGB")
        scale = PHOTO_SIDE / min(image.size)
        if scale < 1:
            image = image.resize(
                (round(image.width * scale), round(image.height * scale)),
                PIL.Image.Resampling.LANCZOS,
            )
        split = "test" if path.stem in TEST_BACKGROUNDS else "train"
        name = f"{hashlib.sha1(str(path).encode()).hexdigest()[:8]}-{path.stem}.png"
        image.save(partial / "backgrounds" / split / name)
        index["backgrounds"][split].append(name)
        index["sources"][name] = str(path)
    # the keys are class names, never savez_compressed's own allow_pickle keyword
    np.savez_compressed(partial / "sprites.npz", **sprites)  # pyright: ignore[reportArgumentType]
    (partial / "index.json").write_text(json.dumps(index, indent=1))
    shutil.rmtree(cache_dir, ignore_errors=True)
    partial.rename(cache_dir)
    return cache_dir


class ObjectsWorld:
    """The prepared data in memory; `scene(split, index)` renders scene `index` (same index, same scene)."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        procedural_fraction: float = 0.2,
        recolour_fraction: float = 0.0,
    ):
        cache_dir = prepare(cache_dir)
        index = json.loads((cache_dir / "index.json").read_text())
        with np.load(cache_dir / "sprites.npz") as data:
            self.sprites = {name: data[name] for name in CLASS_NAMES}
        self.backgrounds = {
            split: [
                np.asarray(PIL.Image.open(cache_dir / "backgrounds" / split / n)) for n in names
            ]
            for split, names in index["backgrounds"].items()
        }
        self.backgrounds["val"] = self.backgrounds["train"]
        self.procedural_fraction = procedural_fraction
        # training scenes whose object (not a coloured shape) is recoloured and named by its colour
        self.recolour_fraction = recolour_fraction

    def scene(
        self,
        split: str,
        index: int,
        size: int = 128,
        distractors: bool = True,
        colour: str | None = None,
    ) -> ObjectScene:
        """Scene `index` of a split; with `colour` (one of COLOURS) the same scene with its object
        recoloured (the evaluation's colour on any object: the object must be RECOLOURABLE)."""
        rng = world.scene_rng(split, index)
        background = self.background(rng, "test" if split == "test" else "train", size)
        label = str(rng.choice(CLASS_NAMES))
        drawn = None  # drawn for training scenes only: the test split stays as it was
        if split == "train" and self.recolour_fraction and label in RECOLOURABLE:
            if rng.random() < self.recolour_fraction:
                drawn = str(rng.choice(COLOURS))
        if colour is not None and (colour not in COLOURS or label not in RECOLOURABLE):
            raise ValueError(f"scene {split}/{index} ({label}) cannot be recoloured {colour!r}")
        colour = colour or drawn
        target, alpha, box = self.place(
            rng, label, size, SIZE_WORDS["small"][0], SIZE_WORDS["large"][1], colour=colour
        )
        # with nothing to avoid, the first try fits: place never gives up on the target
        assert target is not None and alpha is not None and box is not None
        without_target = background
        if distractors and rng.random() < 0.3:
            other = str(rng.choice([n for n in CLASS_NAMES if n != label]))
            sprite, d_alpha, d_box = self.place(rng, other, size, 0.15, 0.28, avoid=box)
            if sprite is not None and d_alpha is not None:  # else (None, None, None): no room
                without_target = composite(background, sprite, d_alpha)
        shadow = rng.random() < 0.3
        scene_image = without_target
        if shadow:
            scene_image = cast_shadow(scene_image, alpha, rng)
        scene_image = composite(scene_image, target, alpha)
        side = max(box[2] - box[0], box[3] - box[1]) / size
        return ObjectScene(
            image=scene_image,
            background=without_target,
            mask=alpha >= 0.5,
            label=label,
            captions=training_captions(label, side, box, size, rng, colour),
        )

    def background(self, rng: np.random.Generator, split: str, size: int) -> np.ndarray:
        if rng.random() < self.procedural_fraction:
            return (world.random_background(rng, size) * 255).round().astype(np.uint8)
        photo = self.backgrounds[split][int(rng.integers(len(self.backgrounds[split])))]
        height, width = photo.shape[:2]
        side = int(rng.uniform(0.2, 1.0) * min(height, width))
        y0, x0 = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        crop = PIL.Image.fromarray(photo[y0 : y0 + side, x0 : x0 + side])
        crop = crop.resize(
            (size, size), PIL.Image.Resampling.BILINEAR if side < size else PIL.Image.Resampling.BOX
        )
        array = np.asarray(crop)
        return array[:, ::-1].copy() if rng.random() < 0.5 else array

    def place(
        self, rng, label: str, size: int, low: float, high: float, avoid=None, colour=None
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]] | tuple[None, None, None]:
        """(RGB float HxWx3, alpha float HxW, box (x0, y0, x1, y1)) of an object placed on the canvas
        (recoloured to `colour`, one of COLOURS, if given)."""
        drawing = self.sprites[label] if colour is None else recolour(self.sprites[label], colour)
        sprite = PIL.Image.fromarray(drawing)
        if rng.random() < 0.5:
            sprite = sprite.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT)
        angle = float(rng.uniform(-25, 25))
        sprite = sprite.rotate(angle, PIL.Image.Resampling.BICUBIC, expand=True)
        bbox = sprite.getchannel("A").getbbox()
        sprite = sprite.crop(bbox)
        for _ in range(20):
            side = rng.uniform(low, high) * size
            scale = side / max(sprite.size)
            w, h = max(2, round(sprite.width * scale)), max(2, round(sprite.height * scale))
            x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            box = (x0, y0, x0 + w, y0 + h)
            if (
                avoid is None
                or box[2] < avoid[0]
                or avoid[2] < box[0]
                or box[3] < avoid[1]
                or avoid[3] < box[1]
            ):
                break
        else:
            return None, None, None
        small = (
            np.asarray(sprite.resize((w, h), PIL.Image.Resampling.LANCZOS), dtype=np.float32) / 255
        )
        rgb = np.zeros((size, size, 3), np.float32)
        alpha = np.zeros((size, size), np.float32)
        rgb[y0 : y0 + h, x0 : x0 + w] = small[..., :3]
        alpha[y0 : y0 + h, x0 : x0 + w] = np.clip(small[..., 3], 0, 1)
        return rgb, alpha, box


# hue (degrees), saturation, value scale of each colour word for recolour(); None: keep the drawing's
RECOLOURS: dict[str, tuple[float | None, float, float]] = {
    "red": (0, 0.85, 1.0), "orange": (28, 0.9, 1.0), "yellow": (55, 0.85, 1.05),
    "green": (120, 0.75, 0.85), "blue": (220, 0.85, 0.95), "purple": (280, 0.7, 0.85),
    "brown": (25, 0.7, 0.55), "black": (None, 0.1, 0.22), "white": (None, 0.06, 1.6),
}  # fmt: skip


def recolour(sprite: np.ndarray, colour: str) -> np.ndarray:
    """An RGBA drawing in another colour, its shading kept: every pixel takes the colour's hue and a
    saturation, its brightness scaled (black: dark and grey, white: light and grey); alpha unchanged.
    Plausible and implausible alike: a blue car, a purple banana."""
    from skimage import color

    hue, saturation, value_scale = RECOLOURS[colour]
    hsv = color.rgb2hsv(sprite[..., :3])
    if hue is not None:
        hsv[..., 0] = hue / 360
    hsv[..., 1] = hsv[..., 1] * 0.3 + saturation * 0.7
    hsv[..., 2] = np.clip(hsv[..., 2] * value_scale + (0.35 if colour == "white" else 0), 0, 1)
    rgb = (color.hsv2rgb(hsv) * 255).round().astype(np.uint8)
    return np.dstack([rgb, sprite[..., 3]])


def composite(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Paste an (unpremultiplied) RGB float layer with alpha over a uint8 canvas."""
    out = canvas.astype(np.float32) / 255 * (1 - alpha[..., None]) + rgb * alpha[..., None]
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def cast_shadow(canvas: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft drop shadow of the object, offset down and to one side (it stays near the object)."""
    size = alpha.shape[0]
    dx, dy = int(rng.integers(-3, 4)) * size // 128, int(rng.integers(1, 5)) * size // 128
    shifted = ndimage.shift(alpha, (dy, dx), order=0, cval=0.0)  # no wrap-around at the edges
    blurred = PIL.Image.fromarray((shifted * 255).astype(np.uint8)).filter(
        PIL.ImageFilter.GaussianBlur(size / 96)
    )
    darkness = np.asarray(blurred, dtype=np.float32) / 255 * float(rng.uniform(0.25, 0.45))
    return (canvas.astype(np.float32) * (1 - darkness[..., None])).round().astype(np.uint8)


# -- words ----------------------------------------------------------------------------------------------


def _where(box, size: int) -> str:
    cx, cy = (box[0] + box[2]) / 2 / size, (box[1] + box[3]) / 2 / size
    vertical = "at the top" if cy < 0.38 else "at the bottom" if cy > 0.62 else ""
    horizontal = "on the left" if cx < 0.38 else "on the right" if cx > 0.62 else ""
    return " ".join(w for w in (vertical, horizontal) if w) or "in the middle"


def training_captions(
    label: str, side: float, box, size: int, rng: np.random.Generator, colour: str | None = None
) -> list[str]:
    """Two captions for a scene's object: a template with its name and one with a synonym; a
    recoloured object's names carry its colour word (the first: the plain word, the second: it or
    one of its synonyms)."""
    cls = BY_NAME[label]
    size_word = "small" if side < SIZE_WORDS["large"][0] else "large"
    names = [label, *cls.synonyms] if colour is None else colourless_names(cls)
    first, second = label, str(rng.choice(names))
    if colour is not None:
        first = f"{colour} {first}"
        second = f"{rng.choice((colour, *COLOUR_SYNONYMS[colour]))} {second}"
    captions = []
    for name in (first, second):
        template = str(rng.choice(TEMPLATES))
        captions.append(template.format(name=name, size=size_word, where=_where(box, size)))
    return captions


def all_training_prompts() -> list[str]:
    """Every prompt training can produce (so their embeddings can be cached) and the empty prompt."""
    prompts = {""}
    wheres = {_where((x, y, x, y), 100) for x in (20, 50, 80) for y in (20, 50, 80)}
    for cls in CLASSES:
        prompts.add(cls.name)
        names = [cls.name, *cls.synonyms]
        if cls.name in RECOLOURABLE:
            words = {w for c in COLOURS for w in (c, *COLOUR_SYNONYMS[c])}
            names += [f"{word} {name}" for word in words for name in colourless_names(cls)]
        for name in names:
            for template in TEMPLATES:
                for size_word in SIZE_WORDS:
                    for where in wheres:
                        prompts.add(template.format(name=name, size=size_word, where=where))
    return sorted(prompts)


def held_out_prompt(label: str, rng: np.random.Generator, colour: str | None = None) -> str:
    """An evaluation prompt no training example used: a held-out template, and for the coloured shapes
    (or with `colour`, for a recoloured object) a held-out colour word ("a violet heart", "one azure car
    here")."""
    cls = BY_NAME[label]
    colour = colour or cls.colour
    name = f"{HELD_OUT_COLOUR_WORDS[colour]} {cls.shape or label}" if colour else label
    return str(rng.choice(HELD_OUT_TEMPLATES)).format(name=name)


# -- command line ---------------------------------------------------------------------------------------

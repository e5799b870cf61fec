"""Training data: the shapes world, the objects world and COCO-format instance segmentation sets.

Every dataset yields raw examples, one object each: {"image": HxWx3 uint8, "mask": HxW bool (the exact
instance mask), "label": str, "captions": list[str]} at the training resolution. The training recipe
(precision levels, text-to-image samples, prompt choice) is applied on top by smartbrush.research.training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
from torch.utils.data import Dataset

from smartbrush.research import world


class WorldDataset(Dataset):
    """Scenes of one split of the shapes world; example i is always the same scene."""

    shuffled = True  # scenes are already random: no per-epoch permutation needed

    def __init__(self, split: str = "train", resolution: int = 32, length: int | None = None):
        self.split, self.resolution = split, resolution
        self.length = world.SPLIT_SIZES[split] if length is None else int(length)
        if not 0 < self.length <= world.SPLIT_SIZES[split]:
            raise ValueError(f"length must be in 1..{world.SPLIT_SIZES[split]} for split {split!r}")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        scene = world.make_scene(self.split, index, self.resolution)
        target = scene.target
        assert target is not None  # make_scene places a target unless target=False
        return {
            "image": scene.image,
            "mask": target.mask,
            "label": target.label,
            "captions": [target.caption, target.short_caption],
        }

    def prompts(self) -> list[str]:
        """Every prompt this dataset can produce (a finite set: its text embeddings can be cached)."""
        return world.all_prompts()


class ObjectsDataset(Dataset):
    """Scenes of the objects world (smartbrush.research.objects); example i is always the same scene.

    Examples also carry the object-free "background", which the recipe's removal task trains towards.
    """

    shuffled = True

    def __init__(
        self,
        split: str = "train",
        resolution: int = 128,
        length: int | None = None,
        recolour_fraction: float = 0.0,
    ):
        from smartbrush.research.objects import ObjectsWorld

        self.world = ObjectsWorld(recolour_fraction=recolour_fraction)
        self.split, self.resolution = split, resolution
        self.length = world.SPLIT_SIZES[split] if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        scene = self.world.scene(self.split, index, self.resolution)
        return {
            "image": scene.image,
            "mask": scene.mask,
            "label": scene.label,
            "captions": scene.captions,
            "background": scene.background,
        }

    def prompts(self) -> None:
        return None  # thousands of caption variants: encoded as they come


class CocoInstances(Dataset):
    """Instances of a COCO-format set (polygons or RLE masks), each in a square crop with context.

    annotation_file: COCO instances JSON; image_dir: where its `file_name`s live (default: next to the
    JSON); captions_file: optional JSON {annotation id: caption} (as written by `smartbrush caption`).
    The crop is the object's box grown by `context` of its size on each side, made square, clamped to the
    image, and resized to `resolution` -- like the pipeline's context crop at sampling time.
    """

    shuffled = False

    def __init__(
        self,
        annotation_file: str | Path,
        image_dir: str | Path | None = None,
        resolution: int = 512,
        captions_file: str | Path | None = None,
        min_area: float = 64.0,
        context: float = 0.5,
    ):
        from pycocotools.coco import COCO

        annotation_file = Path(annotation_file)
        if not annotation_file.is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {annotation_file}")
        try:
            self.coco = _quiet(COCO, str(annotation_file))
        except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as error:
            raise ValueError(f"{annotation_file} is not a COCO instances file: {error}") from None
        self.image_dir = Path(image_dir) if image_dir else annotation_file.parent
        self.resolution, self.context = resolution, context
        self.captions = load_captions(captions_file) if captions_file else {}
        self.annotation_ids = [
            a["id"]
            for a in self.coco.loadAnns(self.coco.getAnnIds(iscrowd=False))
            if a.get("area", 0) >= min_area and a.get("segmentation")
        ]
        if not self.annotation_ids:
            raise ValueError(
                f"{annotation_file} has no usable (non-crowd, area >= {min_area}) instances"
            )

    def __len__(self) -> int:
        return len(self.annotation_ids)

    def __getitem__(self, index: int) -> dict:
        annotation = self.coco.loadAnns(self.annotation_ids[index])[0]
        info = self.coco.loadImgs(annotation["image_id"])[0]
        image = PIL.Image.open(self.image_dir / info["file_name"]).convert("RGB")
        if image.size != (info["width"], info["height"]):
            raise ValueError(f"{info['file_name']}: size {image.size} differs from the annotation")
        mask = self.coco.annToMask(annotation).astype(bool)  # polygons, RLE and uncompressed RLE
        crop = self.crop_box(mask)
        size = (self.resolution, self.resolution)
        image = image.crop(crop).resize(size, PIL.Image.Resampling.BICUBIC)
        mask_image = PIL.Image.fromarray(mask.astype(np.uint8) * 255).crop(crop)
        label = self.coco.loadCats(annotation["category_id"])[0]["name"]
        caption = self.captions.get(annotation["id"])
        return {
            "image": np.asarray(image),
            "mask": np.asarray(mask_image.resize(size, PIL.Image.Resampling.NEAREST)) >= 128,
            "label": label,
            "captions": [caption] if caption else [f"a {label}"],
        }

    def crop_box(self, mask: np.ndarray) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): a square around the mask's box with `context` margin, inside the image."""
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        height, width = mask.shape
        side = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) * (1 + 2 * self.context)
        side = int(min(max(side, 8), height, width))
        cy, cx = (rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2
        x0 = int(np.clip(round(cx - side / 2), 0, width - side))
        y0 = int(np.clip(round(cy - side / 2), 0, height - side))
        return x0, y0, x0 + side, y0 + side

    def prompts(self) -> None:
        return None  # open-ended: encoded as they come


def load_captions(path: str | Path) -> dict[int, str]:
    """A captions file: JSON object {annotation id: caption}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions file not found: {path}")
    try:
        data = json.loads(path.read_text())
        return {int(key): str(value) for key, value in data.items()}
    except (json.JSONDecodeError, AttributeError, ValueError) as error:
        raise ValueError(
            f"{path}: expected a JSON object {{annotation id: caption}} ({error})"
        ) from None


def build_dataset(config: dict, resolution: int) -> Dataset:
    """The training dataset a config's [data] table describes."""
    kind = config.get("dataset", "world")
    if kind == "world":
        return WorldDataset("train", resolution)
    if kind == "objects":
        return ObjectsDataset(
            "train", resolution, recolour_fraction=float(config.get("recolour_fraction", 0.0))
        )
    if kind == "coco":
        if not config.get("annotations"):
            raise ValueError(
                "data.annotations (a COCO instances JSON) is required for dataset 'coco'"
            )
        return CocoInstances(
            config["annotations"],
            config.get("images"),
            resolution,
            config.get("captions"),
            config.get("min_area", 64.0),
        )
    raise ValueError(f"unknown dataset {kind!r}; use 'world', 'objects' or 'coco'")


def _quiet(function, *args):
    """pycocotools prints progress to stdout; keep the CLI's output clean."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)

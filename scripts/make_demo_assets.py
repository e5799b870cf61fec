"""Write smartbrush/demo_assets/: the real photos and masks `smartbrush demo` fills (needs `smartbrush data
install`; the assets are committed, so the demo runs on a machine without the packages).

Photos are crops of wallpapers held out from training (objects.TEST_BACKGROUNDS); masks are silhouettes
of emoji drawings placed on them; the removal case pastes a drawing on a photo and lassos it.
"""

import json
from pathlib import Path

import numpy as np
import PIL.Image

from smartbrush.method.masks import bounding_box
from smartbrush.research import objects

OUT = Path(__file__).resolve().parents[1] / "smartbrush" / "demo_assets"
SIZE = (384, 256)
# (photo stem, crop (x0, y0, x1, y1) of the cached photo, silhouette class, its box (x0, y0, side), prompt)
FILLS = [
    ("Storm", (100, 112, 700, 512), "car", (150, 150, 90), "a car"),
    ("LadyBird", (40, 40, 640, 440), "sunflower", (200, 60, 100), "a sunflower"),
    ("Garden", (0, 60, 600, 460), "butterfly", (70, 50, 90), "a butterfly"),
    ("LadyBird", (219, 100, 819, 500), "red heart", (60, 90, 80), "a blue heart"),
]
REMOVAL = ("Storm", (168, 112, 768, 512), "teddy bear", (210, 120, 100))


def photo(cache: Path, stem: str, crop) -> PIL.Image.Image:
    (path,) = (cache / "backgrounds" / "test").glob(f"*-{stem}.png")
    return PIL.Image.open(path).convert("RGB").crop(crop).resize(SIZE, PIL.Image.Resampling.LANCZOS)


def silhouette(sprites, label: str, x0: int, y0: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGBA layer, alpha) of a drawing whose longer side is `side`, at (x0, y0), on a SIZE canvas."""
    sprite = PIL.Image.fromarray(sprites[label])
    scale = side / max(sprite.size)
    sprite = sprite.resize(
        (round(sprite.width * scale), round(sprite.height * scale)), PIL.Image.Resampling.LANCZOS
    )
    layer = PIL.Image.new("RGBA", SIZE, (0, 0, 0, 0))
    layer.paste(sprite, (x0, y0))
    rgba = np.asarray(layer)
    return rgba, rgba[..., 3] >= 128


def main() -> None:
    cache = objects.prepare()
    with np.load(cache / "sprites.npz") as data:
        sprites = {name: data[name] for name in objects.CLASS_NAMES}
    OUT.mkdir(exist_ok=True)
    cases = []
    for k, (stem, crop, label, (x0, y0, side), prompt) in enumerate(FILLS):
        photo(cache, stem, crop).save(OUT / f"photo-{k}.jpg", quality=92)
        _, mask = silhouette(sprites, label, x0, y0, side)
        PIL.Image.fromarray(mask).save(OUT / f"mask-{k}.png")
        cases.append({"image": f"photo-{k}.jpg", "mask": f"mask-{k}.png", "prompt": prompt,
                      "source": stem, "silhouette": label})  # fmt: skip
    stem, crop, label, (x0, y0, side) = REMOVAL
    base = np.asarray(photo(cache, stem, crop))
    rgba, mask = silhouette(sprites, label, x0, y0, side)
    alpha = rgba[..., 3:] / 255
    with_object = (base * (1 - alpha) + rgba[..., :3] * alpha).round().astype(np.uint8)
    PIL.Image.fromarray(with_object).save(OUT / "removal.jpg", quality=92)
    PIL.Image.fromarray(base).save(OUT / "removal-truth.jpg", quality=92)  # the photo without it
    bounds = bounding_box(mask)
    assert bounds is not None  # the silhouette of a placed sprite is never empty
    _, _, width, height = bounds
    from scipy import ndimage

    lasso = ndimage.binary_dilation(mask, iterations=round(0.08 * max(height, width)))
    PIL.Image.fromarray(lasso).save(OUT / "removal-mask.png")
    removal = {"image": "removal.jpg", "mask": "removal-mask.png", "truth": "removal-truth.jpg",
               "source": stem, "object": label}  # fmt: skip
    (OUT / "cases.json").write_text(
        json.dumps({"fills": cases, "removal": removal}, indent=1) + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

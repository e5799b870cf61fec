"""Render docs/precision-levels.png: one star mask at every precision level (red = shape, yellow = m_s)."""

import math

import numpy as np
import PIL.Image
import PIL.ImageDraw

from smartbrush.method import masks


def star(size: int = 128) -> np.ndarray:
    image = PIL.Image.new("L", (size, size), 0)
    points = []
    for k in range(10):
        radius = 50 if k % 2 == 0 else 20
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((64 + 0.9 * radius * math.cos(angle), 66 + radius * math.sin(angle)))
    PIL.ImageDraw.Draw(image).polygon(points, fill=255)
    return np.asarray(image) >= 128


def main() -> None:
    shape = star()
    grid = PIL.Image.new("RGB", ((masks.NUM_LEVELS + 1) * 196, 214), "white")
    for s in range(masks.NUM_LEVELS + 1):
        coarse = masks.precision_mask(shape, s)
        tile = np.where(coarse[..., None], (240, 200, 60), (40, 40, 60)).astype(np.uint8)
        tile[shape] = (220, 60, 40)
        grid.paste(
            PIL.Image.fromarray(tile).resize((192, 192), PIL.Image.Resampling.NEAREST),
            (s * 196, 22),
        )
        label = f"s={s}  p={masks.level_to_precision(s):.1f}"
        PIL.ImageDraw.Draw(grid).text((s * 196 + 6, 4), label, fill="black")
    grid.save("docs/precision-levels.png")


if __name__ == "__main__":
    main()

"""Wire images (protocol maps) <-> PIL images, with the pixel limit applied before any decoding.

Used by the jobs code (the daemon and `fill --local`).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from PIL import Image

from smartbrush.wire import protocol


def to_pil(image: dict[str, Any], mode: str) -> Image.Image:
    """A checked wire image (see protocol.check_image) as a PIL image in `mode`."""
    if "png" in image:
        return _decode_png(image["png"], mode)
    pil = Image.frombytes(image["mode"], (image["width"], image["height"]), image["data"])
    return pil if pil.mode == mode else pil.convert(mode)


def _decode_png(data: bytes, mode: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as pil:
                # Image.open reads only the header: check the size before pixels are decoded
                if pil.width * pil.height > protocol.MAX_PIXELS:
                    raise protocol.ProtocolError(
                        protocol.TOO_LARGE,
                        f"PNG of {pil.width}x{pil.height} is over the pixel limit",
                    )
                pil.load()
                return pil.convert(mode) if pil.mode != mode else pil.copy()
    except protocol.ProtocolError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise protocol.ProtocolError(protocol.TOO_LARGE, f"PNG refused: {error}") from None
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error ...
        raise protocol.ProtocolError(protocol.BAD_IMAGE, f"PNG does not decode: {error}") from None


def from_pil(pil: Image.Image, mode: str | None = None) -> dict[str, Any]:
    """A PIL image as a raw wire image (converted to `mode` when given)."""
    if mode is not None and pil.mode != mode:
        pil = pil.convert(mode)
    if pil.mode not in protocol.CHANNELS:
        pil = pil.convert("RGB")
    return protocol.raw_image(pil.width, pil.height, pil.mode, pil.tobytes())


def rectangle_mask(box: list[int], width: int, height: int) -> Image.Image:
    """An L mask, 255 inside the box [x, y, w, h], 0 elsewhere."""
    x, y, w, h = box
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (x, y, x + w, y + h))
    return mask


def preview(pil: Image.Image) -> dict[str, Any]:
    """A small RGB preview (longest side at most MAX_PREVIEW_SIDE)."""
    pil = pil.convert("RGB")
    pil.thumbnail((protocol.MAX_PREVIEW_SIDE, protocol.MAX_PREVIEW_SIDE))
    return from_pil(pil, "RGB")

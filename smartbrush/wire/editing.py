"""Editor-independent plugin logic shared by the Krita and GIMP plugins.

Plain Python only (no numpy, no torch, no Qt): this file is copied into each editor's plugin folder
together with smartbrush/wire/protocol.py (whose limits it checks against) and smartbrush/wire/client.py.
Pixel buffers are `bytes` and images are the protocol's raw image dicts
``{"width": w, "height": h, "mode": "RGB" | "RGBA" | "L", "data": bytes}``. Per-pixel work uses
extended slices (``out[0::4] = rgb[2::3]``), which run at C speed.

A fill in an editor is:

1. ``context_rect(selection_bounds, canvas_size)``: the part of the canvas the daemon sees (the
   selection plus context around it, clamped to the canvas, so a large canvas isn't sent whole);
2. read the visible pixels and the selection inside that rectangle from the editor;
3. ``image_from_pixels`` / ``mask_from_selection`` / ``build_fill_request``;
4. send it with ``smartbrush.wire.client.Client.fill`` (which does not check it again);
5. ``layer_pixels(result image, result alpha)`` -> a new layer at the context rectangle's origin,
   named ``layer_name(prompt, seed)``: transparent outside the filled region, so nothing underneath
   changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smartbrush.wire import protocol
from smartbrush.wire.errors import UserError

CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}
# Where each of R, G, B, A sits in an editor's 4-byte pixel.
PIXEL_ORDERS = {"BGRA": (2, 1, 0, 3), "RGBA": (0, 1, 2, 3)}

PROMPT_CHARS_IN_NAME = 40
# the `detail` option's values as both editors name them
DETAIL_LABELS = {"off": "Off (resampled)", "fast": "Fast (Real-ESRGAN)", "best": "Best (slower)"}
MIN_CONTEXT_PADDING = 32  # pixels of context around a selection, at least


class EditingError(UserError):
    """A problem the user can fix; str(error) is the message to show them."""


class NoSelection(EditingError):
    """There is no (usable) selection to fill."""


NO_SELECTION_MESSAGE = (
    "Nothing is selected. Select the area to fill first (any selection tool; soft edges are kept)."
)
NO_SELECTION_TO_REMOVE_MESSAGE = (
    "Nothing is selected. Select the object to remove first, with a little margin around it "
    "(any selection tool)."
)
FAINT_SELECTION_MESSAGE = (
    "The selection is too faint: no pixel is selected by 50 % or more. "
    "Select the area to fill with a stronger selection."
)
EMPTY_PROMPT_MESSAGE = (
    "Describe what to paint in the prompt box first (or use Remove to erase what is selected)."
)
REMOVAL_NAME = "removed"  # in layer names, for a removal (an empty prompt)


@dataclass(frozen=True)
class Rect:
    """A pixel rectangle; right and bottom are exclusive."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0


def _default(name: str):
    return field(default=protocol.FILL_OPTIONS[name].default)


@dataclass
class FillOptions:
    """What the user asked for (docker, dialog or script); fields and defaults are protocol.FILL_OPTIONS.

    precision: "auto" (the daemon decides: rectangle -> 1, otherwise from the soft edge's feather) or
    0 (follow the selection's shape) .. 1 (anywhere in its bounding box). guidance None: the model's
    own default; seed None: the daemon picks one (the result says which).
    """

    prompt: str
    negative_prompt: str = ""
    remove: bool = (
        False  # erase what is selected and continue the background (the prompt is unused)
    )
    precision: float | str = _default("precision")
    steps: int = _default("steps")
    guidance: float | None = _default("guidance")
    seed: int | None = _default("seed")
    variations: int = _default("variations")
    preview_interval: int = _default("preview_interval")
    detail: str = _default("detail")


# --- geometry ------------------------------------------------------------------------------------


def mask_bounds(data: bytes, width: int, height: int) -> Rect | None:
    """The tight bounds of the non-zero pixels of a 1 byte/pixel mask, or None if it is all zero."""
    _check_length(data, width, height, 1)
    top = bottom = None
    left, right = width, 0
    for row in range(height):
        line = data[row * width : (row + 1) * width]
        leading = len(line) - len(line.lstrip(b"\x00"))
        if leading == width:
            continue
        trailing = len(line) - len(line.rstrip(b"\x00"))
        top = row if top is None else top
        bottom = row
        left = min(left, leading)
        right = max(right, width - trailing)
    if top is None or bottom is None:
        return None
    return Rect(left, top, right - left, bottom + 1 - top)


def mask_rectangles(data: bytes, width: int, height: int) -> list[Rect]:
    """The non-zero pixels of a 1 byte/pixel mask as disjoint rectangles that cover exactly them:
    each row's runs, a run merged with the same run in the rows below. An editor that draws a
    selection's outline from rectangles (Krita's marching ants for a selection set by a script)
    gets the exact outline from these."""
    _check_length(data, width, height, 1)
    started: dict[tuple[int, int], int] = {}  # (left, right) of an open run -> its first row
    rectangles = []
    for row in range(height + 1):
        runs = set()
        if row < height:
            line = data[row * width : (row + 1) * width]
            x = 0
            while x < width:
                if line[x]:
                    end = x + 1
                    while end < width and line[end]:
                        end += 1
                    runs.add((x, end))
                    x = end
                else:
                    x += 1
        for run in [run for run in started if run not in runs]:  # these runs ended above
            top = started.pop(run)
            rectangles.append(Rect(run[0], top, run[1] - run[0], row - top))
        for run in runs:
            started.setdefault(run, row)
    return sorted(rectangles, key=lambda rect: (rect.y, rect.x))


def outline_rectangles(data: bytes, width: int, height: int) -> list[Rect]:
    """`mask_rectangles`, plus a 2-row bridge wherever one rectangle sits on another: still exactly
    the non-zero pixels together, but neighbours overlap instead of only touching. United one by
    one into an outline (Qt's QPainterPath, in Krita) touching rectangles left their shared edges
    as seams across the shape; overlapping ones do not."""
    pieces = mask_rectangles(data, width, height)
    starting: dict[int, list[Rect]] = {}
    for piece in pieces:
        starting.setdefault(piece.y, []).append(piece)
    bridges = []
    for piece in pieces:
        for below in starting.get(piece.y + piece.height, []):
            left = max(piece.x, below.x)
            right = min(piece.x + piece.width, below.x + below.width)
            if left < right:
                bridges.append(Rect(left, piece.y + piece.height - 1, right - left, 2))
    return pieces + bridges


def context_padding(width: int, height: int) -> int:
    """Context around a selection (or mask) of this size: half its larger side, at least 32 px.

    The one rule for the editors' crop and the pipeline's own crop around the mask.
    """
    return max(MIN_CONTEXT_PADDING, max(width, height) // 2)


def context_rect(
    selection: Rect,
    canvas_width: int,
    canvas_height: int,
    *,
    padding: int | None = None,
) -> Rect:
    """The selection's bounds grown by `padding` pixels of context on each side, clamped to the canvas.

    The default is `context_padding`: the model needs to see the surroundings to fill in something
    that fits, but not the whole of a large canvas.
    """
    if padding is None:
        padding = context_padding(selection.width, selection.height)
    left = max(0, selection.x - padding)
    top = max(0, selection.y - padding)
    right = min(canvas_width, selection.right + padding)
    bottom = min(canvas_height, selection.bottom + padding)
    rect = Rect(left, top, right - left, bottom - top)
    if rect.is_empty():
        raise NoSelection(NO_SELECTION_MESSAGE)
    return rect


def model_context(
    selected: Rect,
    touched: Rect,
    canvas_width: int,
    canvas_height: int,
    *,
    padding: int | None = None,
) -> Rect:
    """The one context rule, for every client: the part of the canvas the model sees around a mask.

    `selected`: the bounds of the mask's selected pixels (>= protocol.MASK_SELECTED), whose size sets
    the padding (default `context_padding`); `touched`: the bounds of all its non-zero pixels, soft
    edge included, all of which the context holds (the paste can blend all of a feathered edge). Grown
    by the padding, then to a square (the model's shape) about the middle, as much of it as the canvas
    holds. An editor sends exactly this rectangle and the pipeline, applying the rule again to what it
    was sent, takes all of it: the same pixels, mask and seed give the same fill as the whole image
    through `smartbrush fill`."""
    if padding is None:
        padding = context_padding(selected.width, selected.height)
    left, top = max(0, touched.x - padding), max(0, touched.y - padding)
    right = min(canvas_width, touched.right + padding)
    bottom = min(canvas_height, touched.bottom + padding)
    side = max(right - left, bottom - top)
    left, right = _grow(left, right, side, canvas_width)
    top, bottom = _grow(top, bottom, side, canvas_height)
    return Rect(left, top, right - left, bottom - top)


def _grow(start: int, end: int, size: int, limit: int) -> tuple[int, int]:
    """[start, end) grown about its middle to `size`, shifted to lie in [0, limit), cut there."""
    extra = size - (end - start)
    start, end = start - extra // 2, end + extra - extra // 2
    if end > limit:
        start, end = start - (end - limit), limit
    if start < 0:
        start, end = 0, min(limit, end - start)
    return start, end


def selected_bounds(selection: bytes, width: int, height: int) -> Rect | None:
    """The bounds of a selection's selected pixels (>= protocol.MASK_SELECTED), or None."""
    return mask_bounds(selection.translate(_SELECTED), width, height)


# --- precision from a selection ----------------------------------------------------------------

FEATHER_FOR_BOX = (
    0.25  # a feather radius of a quarter of the selection's size means "anywhere in it"
)
# soft values count from protocol.MASK_SELECTED (128)
_SELECTED = bytes(1 if value >= protocol.MASK_SELECTED else 0 for value in range(256))


def auto_precision(selection: bytes, width: int, height: int) -> float:
    """The precision a selection (1 byte a pixel, soft edges kept) implies: a rectangle -> 1
    (anywhere in the box), otherwise its feather relative to its size (0 = follow the shape).

    The one implementation: the pipeline's masks.auto_precision calls it, and the editors show the
    value before a fill. The feather is the soft band's area over the shape's perimeter, halved
    (editors' Gaussian feathers have 1/255 tails one radius either side of the edge). Pixel work is
    done on whole rows and big integers, at C speed, as the rest of this module does.
    """
    _check_length(selection, width, height, 1)
    binary = selection.translate(_SELECTED)
    bounds = mask_bounds(binary, width, height)
    if bounds is None:
        return 0.0
    if crop(binary, width, bounds, 1).count(0) == 0:
        return 1.0  # fills its box
    band = len(selection) - selection.count(0) - selection.count(255)
    if band == 0:
        return 0.0
    radius = band / max(_perimeter(binary, width), 1) / 2
    return min(1.0, radius / (FEATHER_FOR_BOX * max(bounds.width, bounds.height)))


def describe_precision(precision: float) -> str:
    """The auto precision a selection gives, and why, for people: "1.00, a rectangle: ..."."""
    if precision >= 1.0:
        return "1.00, a rectangle: anywhere in the box"
    if precision < 0.05:
        return f"{precision:.2f}: this exact shape"
    return f"{precision:.2f}, feathered: looser than this shape"


def _perimeter(binary: bytes, width: int) -> int:
    """Selected pixels with an unselected (or outside) 4-neighbour, one byte a pixel in a big int."""
    count = len(binary)
    pixels = int.from_bytes(binary, "big")  # pixel i is the byte 8 * (count - 1 - i) bits up
    everything = int.from_bytes(b"\x01" * count, "big")
    not_first = int.from_bytes((b"\x00" + b"\x01" * (width - 1)) * (count // width), "big")
    not_last = int.from_bytes((b"\x01" * (width - 1) + b"\x00") * (count // width), "big")
    left = (pixels >> 8) & not_first  # the pixel to the left, where there is one
    right = (pixels << 8) & not_last & everything
    up = pixels >> (8 * width)
    down = (pixels << (8 * width)) & everything
    inner = pixels & left & right & up & down
    return (pixels & ~inner).bit_count()


# --- editor pixels -> request --------------------------------------------------------------------


def mask_from_selection(data: bytes, width: int, height: int) -> dict:
    """A selection's bytes (1 byte/pixel, 0 = unselected, 255 = selected, soft values kept) as a mask.

    Raises NoSelection when nothing is selected in the area, or nothing by 50 % or more (the model
    thresholds soft masks at protocol.MASK_SELECTED, 128). The editor's one check that the mask is
    not empty (build_fill_request does not repeat it; the daemon checks what it receives).
    """
    _check_length(data, width, height, 1)
    strongest = max(data, default=0)
    if strongest == 0:
        raise NoSelection(NO_SELECTION_MESSAGE)
    if strongest < protocol.MASK_SELECTED:
        raise NoSelection(FAINT_SELECTION_MESSAGE)
    return {"width": width, "height": height, "mode": "L", "data": bytes(data)}


def image_from_pixels(data: bytes, width: int, height: int, order: str = "BGRA") -> dict:
    """4-byte editor pixels (Krita "BGRA", GIMP "RGBA") as an RGB image, transparent parts over white."""
    _check_length(data, width, height, 4)
    r, g, b, a = (data[i::4] for i in PIXEL_ORDERS[order])
    # Not opaque everywhere: composite over white, as the canvas shows it.
    if a.count(255) != len(a):
        r, g, b = (_over_white(channel, a) for channel in (r, g, b))
    rgb = bytearray(width * height * 3)
    rgb[0::3], rgb[1::3], rgb[2::3] = r, g, b
    return {"width": width, "height": height, "mode": "RGB", "data": bytes(rgb)}


def build_fill_request(image: dict, mask: dict, options: FillOptions) -> dict:
    """The fill request for the daemon, checked by the protocol's own rules (one set of limits): the
    editor's one check of what it sends (Client.fill sends it as it is). The mask's pixels are
    mask_from_selection's to check."""
    prompt = "" if options.remove else " ".join((options.prompt or "").split())
    if not prompt and not options.remove:
        raise EditingError(EMPTY_PROMPT_MESSAGE)
    request = {
        "image": image,
        "mask": mask,
        "prompt": prompt,
        "negative_prompt": " ".join((options.negative_prompt or "").split()) or None,
        "precision": check_precision(options.precision),
        **{name: getattr(options, name) for name in protocol.CHECKED_OPTIONS},
    }
    try:
        protocol.validate_fill({"type": protocol.FILL, **request})
    except protocol.ProtocolError as error:
        raise EditingError(_sentence(error.message)) from None
    return request


def check_precision(precision: float | str) -> float | str:
    """Return "auto" or a number in [0, 1] (0 = exact shape, 1 = anywhere in the box)."""
    if isinstance(precision, str):
        if precision.strip().lower() == protocol.PRECISION_AUTO:
            return protocol.PRECISION_AUTO
        try:
            precision = float(precision)
        except ValueError:
            raise EditingError(
                f'Precision must be "auto" or a number from 0 to 1, not {precision!r}.'
            ) from None
    return precision


# --- result -> editor layer ----------------------------------------------------------------------


def layer_pixels(image: dict, alpha: dict | None = None, order: str = "BGRA") -> bytes:
    """A result image as 4-byte layer pixels in the editor's byte order.

    The opacity is `alpha` (the daemon's paste alpha: 0 outside the filled region, soft at its edge),
    else the image's own alpha channel, so the new layer is transparent where nothing was filled.
    """
    width, height, mode = image["width"], image["height"], image["mode"]
    if mode not in ("RGB", "RGBA"):
        raise ValueError(f"result image must be RGB or RGBA, not {mode}")
    channels = CHANNELS[mode]
    _check_length(image["data"], width, height, channels)
    if alpha is not None:
        if (alpha["width"], alpha["height"], alpha["mode"]) != (width, height, "L"):
            raise ValueError("result alpha must be an L image of the result's size")
        _check_length(alpha["data"], width, height, 1)
        opacity = alpha["data"]
    elif mode == "RGBA":
        opacity = image["data"][3::4]
    else:
        raise ValueError("an RGB result needs an alpha to know where the fill is")
    data = image["data"]
    out = bytearray(width * height * 4)
    for channel, position in enumerate(PIXEL_ORDERS[order]):
        out[position::4] = opacity if channel == 3 else data[channel::channels]
    return bytes(out)


def layer_name(prompt: str, seed: int) -> str:
    """ "SmartBrush: <prompt> (seed N)", a long prompt shortened at a word boundary; an empty prompt
    (a removal) is "SmartBrush: removed (seed N)"."""
    return f"SmartBrush: {short_prompt(prompt) or REMOVAL_NAME} (seed {seed})"


def group_name(prompt: str, count: int) -> str:
    """The group holding several variations of one fill."""
    return f"SmartBrush: {short_prompt(prompt) or REMOVAL_NAME} ({count} variations)"


def crop(data: bytes, width: int, rect: Rect, channels: int) -> bytes:
    """The pixels of `rect` from a `width`-wide buffer of `channels` bytes a pixel."""
    row = width * channels
    return b"".join(
        data[y * row + rect.x * channels : y * row + rect.right * channels]
        for y in range(rect.y, rect.bottom)
    )


def union(rects: list[Rect]) -> Rect | None:
    """The smallest rectangle holding all of `rects`; None for none."""
    if not rects:
        return None
    left, top = min(r.x for r in rects), min(r.y for r in rects)
    right, bottom = max(r.right for r in rects), max(r.bottom for r in rects)
    return Rect(left, top, right - left, bottom - top)


def short_prompt(prompt: str, limit: int = PROMPT_CHARS_IN_NAME) -> str:
    text = " ".join(prompt.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # End at a word boundary, unless the cut already is one or that would drop too much.
    if text[limit - 1] != " " and " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


# --- messages ------------------------------------------------------------------------------------


ENDPOINT_PATTERN = re.compile(
    r"(tcp://(\[[0-9a-fA-F:.]+\]|[\w.*-]+):\d{1,5}|ipc://\S+|inproc://\S+)"
)


def endpoint_problem(endpoint: str) -> str | None:
    """Why `endpoint` (a settings field; empty: the default) is not a daemon address, or None."""
    endpoint = endpoint.strip()
    if not endpoint or ENDPOINT_PATTERN.fullmatch(endpoint):
        return None
    return (
        f"The daemon endpoint {endpoint!r} is not an address like {protocol.LOOPBACK_ENDPOINT}; "
        "fix it under Daemon > Endpoint (or empty it for the default)."
    )


START_COMMAND = "smartbrush serve"  # how a user starts a daemon, for messages


def daemon_down_message(endpoint: str, start_command: str | None = START_COMMAND) -> str:
    message = f"The SmartBrush daemon is not answering at {endpoint}."
    if start_command:
        message += f" Start it with `{start_command}`, or check the endpoint."
    return message


def user_message(
    error: BaseException, endpoint: str | None = None, start_command: str | None = None
) -> str:
    """One line for the user for anything a fill can raise; never a traceback. `start_command`:
    how the user starts a daemon, named when none answers (editors with a Start button say theirs).

    Knows smartbrush.wire.client's errors by name, so this module doesn't need zmq to import.
    """
    if isinstance(error, EditingError):
        return str(error)
    kinds = {cls.__name__ for cls in type(error).__mro__}
    text = str(getattr(error, "message", "") or error).strip() or type(error).__name__
    if "DaemonUnavailable" in kinds:
        message = daemon_down_message(endpoint or "the configured endpoint", start_command)
        # a daemon under CURVE drops a client with no or the wrong key without a word
        if "CURVE" in text or (endpoint and not protocol.is_local_endpoint(endpoint)):
            message += (
                " If it is running, authentication may be the cause: check that this client has "
                "the daemon's CURVE keys (SMARTBRUSH_CURVE_DIR) and that they match."
            )
        return message
    if "NotYourDaemon" in kinds:
        return text  # already a sentence that says whose it is and what to do
    if "FillCancelled" in kinds:
        return "Cancelled."
    if "EndpointError" in kinds:
        return f"Check the daemon endpoint: {text}."
    if "ClientError" in kinds:
        return f"SmartBrush can't send this fill: {text}"
    if "SmartBrushError" in kinds:
        return f"The SmartBrush daemon reported an error: {text}"
    return f"SmartBrush failed: {text}"


# --- helpers -------------------------------------------------------------------------------------


def _over_white(channel: bytes, alpha: bytes) -> bytes:
    return bytes(255 - ((255 - c) * a + 127) // 255 for c, a in zip(channel, alpha, strict=True))


def _check_length(data: bytes, width: int, height: int, channels: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, not {width}x{height}")
    if len(data) != width * height * channels:
        raise ValueError(
            f"expected {width}x{height}x{channels} = {width * height * channels} bytes, got {len(data)}"
        )


def _sentence(text: str) -> str:
    """A protocol message as a sentence for people: capitalised, with a full stop."""
    text = text.replace("_", " ")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")

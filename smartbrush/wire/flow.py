"""The editor flow, written once for Krita, GIMP and scripts: selection -> request -> daemon -> layers.

An editor adapter implements `Canvas` (read the selection and the visible pixels, add layers); the
rest is here: `prepare` reads the canvas and builds the request, `send` runs it on the daemon,
`place` turns the result into new layers. `fill` does the three in a row; a plugin's GUI runs `send`
on a worker thread and the other two on its GUI thread. What the user can fix raises an
EditingError; `editing.user_message(error)` turns anything raised here into one line.

Plain Python like the rest of smartbrush.wire; zmq is imported only by `send`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from smartbrush.wire import editing, protocol
from smartbrush.wire.editing import EditingError, FillOptions, NoSelection, Rect

CONNECT_TIMEOUT = 5.0  # seconds for the daemon to accept a job: "no daemon" is said this fast
SILENCE_TIMEOUT = 60.0  # seconds of silence during a fill; a working daemon speaks every 2 s


@dataclass(frozen=True)
class NewLayer:
    """A result layer to add: `pixels` cover the rectangle given with it (what was painted, not the
    whole context), 4 bytes a pixel in the canvas' pixel order, transparent where nothing was filled.
    `object_mask` is the object's shape the model predicted there (1 byte a pixel), for selecting it."""

    name: str
    pixels: bytes
    visible: bool
    object_mask: bytes = b""


class Canvas(Protocol):
    """What the flow needs from an editor's document (one adapter per editor implements it)."""

    pixel_order: str  # where R, G, B, A sit in a 4-byte pixel: "BGRA" (Krita) or "RGBA" (GIMP)

    def size(self) -> tuple[int, int]:
        """(width, height) of the image in pixels."""
        ...

    def selection_bounds(self) -> Rect | None:
        """The selection's bounding box, None when nothing is selected."""
        ...

    def read_selection(self, rect: Rect) -> bytes:
        """The selection inside `rect`, 1 byte a pixel (0 unselected .. 255 selected, soft kept)."""
        ...

    def read_visible(self, rect: Rect) -> bytes:
        """The visible pixels inside `rect` (4 bytes a pixel in `pixel_order`)."""
        ...

    def add_layers(self, rect: Rect, layers: list[NewLayer], group: str | None) -> list:
        """Add `layers` at `rect` above the active layer, the first on top; in a new group named
        `group` when it is not None. All or nothing, one undo step. Returns the editor's layers."""
        ...


@dataclass
class PreparedFill:
    """A fill read from the canvas, ready to send: the result covers `context`."""

    context: Rect
    request: dict[str, Any]
    selection: Rect | None = None  # the selection's bounds on the canvas: what the user chose


def selection_context(canvas: Canvas, padding: int | None = None) -> tuple[Rect, Rect]:
    """(the selection's bounds on the canvas, the context the model sees around it): the one context
    rule, editing.model_context, that the pipeline applies to a whole image too. Raises NoSelection."""
    width, height = canvas.size()
    bounds = canvas.selection_bounds()
    if bounds is None:
        raise NoSelection(editing.NO_SELECTION_MESSAGE)
    # clamped to the canvas (NoSelection when nothing of it is on the canvas)
    bounds = editing.context_rect(bounds, width, height, padding=0)
    selected = editing.selected_bounds(canvas.read_selection(bounds), bounds.width, bounds.height)
    if selected is None:  # only faint soft edge: as the mask check says, nothing is selected
        raise NoSelection(editing.NO_SELECTION_MESSAGE)
    selected = Rect(bounds.x + selected.x, bounds.y + selected.y, selected.width, selected.height)
    return bounds, editing.model_context(selected, bounds, width, height, padding=padding)


def prepare(canvas: Canvas, options: FillOptions, *, padding: int | None = None) -> PreparedFill:
    """Read the selection and the visible pixels around it; raise EditingError if there's a problem."""
    try:
        bounds, context = selection_context(canvas, padding)
        mask = editing.mask_from_selection(
            canvas.read_selection(context), context.width, context.height
        )
    except NoSelection as error:  # said in the words of what the user is doing
        if options.remove and str(error) == editing.NO_SELECTION_MESSAGE:
            raise NoSelection(editing.NO_SELECTION_TO_REMOVE_MESSAGE) from None
        raise
    image = editing.image_from_pixels(
        canvas.read_visible(context), context.width, context.height, canvas.pixel_order
    )
    return PreparedFill(context, editing.build_fill_request(image, mask, options), bounds)


UPSCALE_NOTE_FACTOR = 3  # from this much upscaling on, the fill is soft enough to say so


def upscale_note(
    area: Rect,
    resolution: int | None,
    selection: Rect | None = None,
    detail: str | None = None,
) -> str | None:
    """A note when the model, working at `resolution` px, must enlarge the fill of the context `area`
    a lot; said of the `selection` the user made (the context's margin is ours), and of how it is
    enlarged (the `detail` option; None: its default)."""
    if not resolution:
        return None
    factor = max(area.width, area.height) / resolution
    if factor < UPSCALE_NOTE_FACTOR:
        return None
    chosen = f"this {selection.width}x{selection.height} selection" if selection else "this area"
    painted = (
        f"The model works at {resolution} px: {chosen} is painted with the picture around it at "
    )
    if (detail or protocol.FILL_OPTIONS["detail"].default) == "off":
        return painted + (
            f"that size, then enlarged {factor:.0f}x, so fine detail will be soft (a smaller "
            "selection, or Detail other than Off, gives a sharper fill)."
        )
    return painted + (
        f"that size, then enlarged {factor:.0f}x by the detail stage: its edges stay crisp, its "
        "fine texture is what the model painted (a smaller selection gives more of it)."
    )


def upscale_note_for(prepared: PreparedFill, resolution: int | None) -> str | None:
    """upscale_note for a prepared request: none for a removal, which works at the photo's resolution."""
    if not prepared.request["prompt"].strip():
        return None
    return upscale_note(
        prepared.context, resolution, prepared.selection, prepared.request.get("detail")
    )


def send(
    prepared: PreparedFill,
    *,
    endpoint: str | None = None,
    on_progress: Callable[[dict], Any] | None = None,
    client_name: str = "smartbrush.wire.flow",
    connect_timeout: float = CONNECT_TIMEOUT,
    timeout: float = SILENCE_TIMEOUT,
) -> dict[str, Any]:
    """Run the fill on the daemon; returns its result (with the model's "resolution", for
    `upscale_note`). If `on_progress(message)` returns False the fill is cancelled (FillCancelled).
    The request was checked by `prepare`; it goes as it is (the daemon checks what arrives)."""
    from smartbrush.wire.client import Client  # zmq: only when a fill is sent

    with Client(endpoint, timeout=timeout, client_name=client_name) as client:
        return client.fill(prepared.request, on_progress, connect_timeout=connect_timeout)


def result_layers(
    prepared: PreparedFill, result: dict[str, Any], pixel_order: str
) -> tuple[Rect, list[NewLayer], str | None]:
    """(where, layers, group name for variations) for a daemon result, checked first so a bad answer
    adds nothing. `where` is the part of the canvas any variation painted: layers are cropped to it."""
    context, prompt = prepared.context, prepared.request["prompt"]
    images, alphas, seeds = (result.get(key) or [] for key in ("images", "alphas", "seeds"))
    masks = result.get("masks") or [None] * len(images)
    if not images or not len(images) == len(alphas) == len(seeds) == len(masks):
        raise EditingError("The daemon's answer was incomplete (no images); nothing was added.")
    for image in images:
        if (image["width"], image["height"]) != (context.width, context.height):
            raise EditingError(
                f"The daemon answered with a {image['width']}x{image['height']} image for a "
                f"{context.width}x{context.height} area; nothing was added."
            )
    width, height = context.width, context.height
    painted = editing.union(
        [b for a in alphas if (b := editing.mask_bounds(a["data"], width, height)) is not None]
    )
    if painted is None:
        raise EditingError("SmartBrush painted nothing here; nothing was added. Try another seed.")
    layers = []
    for index, (image, alpha, seed, mask) in enumerate(
        zip(images, alphas, seeds, masks, strict=True)
    ):
        pixels = editing.crop(editing.layer_pixels(image, alpha, pixel_order), width, painted, 4)
        shape = b"" if mask is None else editing.crop(mask["data"], width, painted, 1)
        name = editing.layer_name(prompt, seed)
        layers.append(NewLayer(name, pixels, visible=index == 0, object_mask=shape))
    where = Rect(context.x + painted.x, context.y + painted.y, painted.width, painted.height)
    group = editing.group_name(prompt, len(layers)) if len(layers) > 1 else None
    return where, layers, group


def place(canvas: Canvas, prepared: PreparedFill, result: dict[str, Any]) -> list:
    """Add the result's layers to the canvas; returns the editor's new layers (first on top)."""
    where, layers, group = result_layers(prepared, result, canvas.pixel_order)
    return canvas.add_layers(where, layers, group)


def fill(
    canvas: Canvas, options: FillOptions, *, padding: int | None = None, **send_options: Any
) -> list:
    """prepare -> send -> place; `send_options` are send's keyword arguments."""
    prepared = prepare(canvas, options, padding=padding)
    return place(canvas, prepared, send(prepared, **send_options))

"""The plugin's only contact with Krita's document API: read the selection and the visible image,
add the result layers. Everything else is smartbrush.wire.editing (shared with the GIMP plug-in).

Scripting (Krita's Scripter, or kritarunner):

    import smartbrush_krita
    doc = Krita.instance().activeDocument()
    layers = smartbrush_krita.fill_selection(doc, "a red ball", seed=7)

A fill is three steps, so the docker can run the middle one off the GUI thread:
``prepare_fill`` (read Krita) -> ``run_fill`` (talk to the daemon) -> ``add_result_layers`` (write Krita).
``fill_selection`` does the three in a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartbrush.wire import editing
from smartbrush.wire.client import Client
from smartbrush.wire.editing import EditingError, FillOptions, NoSelection, Rect

BYTE_ORDER = "BGRA"  # Node.pixelData / setPixelData for 8-bit RGBA
MASK_TYPES = ("selectionmask", "transparencymask", "filtermask", "transformmask", "colorizemask")
HELLO_TIMEOUT = 3.0  # seconds: how long "is a daemon there?" may take
FILL_TIMEOUT = 60.0  # seconds of silence; a working daemon sends a keep-alive every 2 s


@dataclass
class PendingFill:
    """A fill read from the document, ready to send; the result goes into `parent` above `above`."""

    document: Any  # krita.Document
    context: Rect  # the canvas area sent to the daemon; result layers cover exactly this area
    request: dict
    parent: Any  # krita.Node
    above: Any  # krita.Node or None (then: the top of `parent`)


def fill_selection(
    document: Any,
    prompt: str,
    *,
    negative_prompt: str = "",
    precision: float | str = "auto",
    steps: int = 20,
    guidance: float | None = None,
    seed: int | None = None,
    variations: int = 1,
    layer: Any = None,
    endpoint: str | None = None,
    timeout: float = FILL_TIMEOUT,
    padding: int | None = None,
    on_progress: Callable[[dict], Any] | None = None,
) -> list:
    """Fill the document's selection with what `prompt` describes; return the new layers.

    The result is a new paint layer directly above `layer` (default: the active layer; with no active
    layer, e.g. under kritarunner, the top of the stack), named "SmartBrush: <prompt> (seed N)" and
    transparent outside the filled region. With variations > 1 the layers go into a group, all but the
    first hidden. No existing layer is changed. `precision`: "auto" (rectangle -> anywhere in the box,
    other shapes -> this shape, softened by feathering) or 0 (exact shape) ... 1 (anywhere in the box).

    Raises smartbrush.wire.editing.EditingError (e.g. NoSelection) for what the user can fix and
    smartbrush.wire.client errors (DaemonUnavailable, DaemonError, FillCancelled) from the daemon;
    ``smartbrush.wire.editing.user_message(error)`` turns any of them into one line for people. If
    `on_progress(message)` returns False the fill is cancelled.
    """
    document.refreshProjection()  # a script may just have changed pixels
    options = FillOptions(
        prompt,
        negative_prompt=negative_prompt,
        precision=precision,
        steps=steps,
        guidance=guidance,
        seed=seed,
        variations=variations,
    )
    pending = prepare_fill(document, options, layer=layer, padding=padding)
    with Client(endpoint, timeout=timeout, client_name="smartbrush_krita") as client:
        result = run_fill(client, pending.request, on_progress)
    return add_result_layers(pending, result)


def prepare_fill(
    document: Any, options: FillOptions, *, layer: Any = None, padding: int | None = None
) -> PendingFill:
    """Read the selection and the visible image around it; raise EditingError if there's a problem."""
    if document is None:
        raise EditingError("Open an image first.")
    if (document.colorModel(), document.colorDepth()) != ("RGBA", "U8"):
        raise EditingError(
            "SmartBrush works on 8-bit RGB images; this one is "
            f"{document.colorModel()} {document.colorDepth()}. Convert it with "
            "Image > Convert Image Color Space (RGB/Alpha, 8-bit integer)."
        )
    selection = document.selection()
    if selection is None:
        raise NoSelection(editing.NO_SELECTION_MESSAGE)
    bounds = _clamp(
        Rect(selection.x(), selection.y(), selection.width(), selection.height()),
        document.width(),
        document.height(),
    )
    if bounds.is_empty():
        raise NoSelection(editing.NO_SELECTION_MESSAGE)
    context = editing.context_rect(bounds, document.width(), document.height(), padding=padding)
    area = (context.x, context.y, context.width, context.height)
    mask = editing.mask_from_selection(
        bytes(selection.pixelData(*area)), context.width, context.height
    )
    document.waitForDone()  # the projection must include the last stroke
    image = editing.image_from_pixels(
        bytes(document.pixelData(*area)), context.width, context.height, BYTE_ORDER
    )
    request = editing.build_fill_request(image, mask, options)
    parent, above = _placement(document, layer)
    return PendingFill(document, context, request, parent, above)


def run_fill(
    client: Client, request: dict, on_progress: Callable[[dict], Any] | None = None
) -> dict:
    """Send the fill: first a quick hello (so "no daemon" is said in seconds), then the job."""
    timeout = client.timeout
    client.timeout = min(timeout, HELLO_TIMEOUT)
    try:
        client.hello()
    finally:
        client.timeout = timeout
    return client.fill(request, on_progress=on_progress)


def add_result_layers(pending: PendingFill, result: dict) -> list:
    """Add one paint layer per result image above the reference layer; return them (first on top)."""
    document, context = pending.document, pending.context
    prompt = pending.request["prompt"]
    images, alphas, seeds = result["images"], result["alphas"], result["seeds"]
    if not images or not len(images) == len(alphas) == len(seeds):
        raise EditingError("The daemon's answer was incomplete (no images); nothing was added.")
    layers = []
    for image, alpha, seed in zip(images, alphas, seeds, strict=True):
        if (image["width"], image["height"]) != (context.width, context.height):
            raise EditingError(
                f"The daemon answered with a {image['width']}x{image['height']} image for a "
                f"{context.width}x{context.height} area; nothing was added."
            )
        pixels = editing.layer_pixels(image, alpha, BYTE_ORDER)
        layer = document.createNode(editing.layer_name(prompt, seed), "paintlayer")
        layer.setPixelData(pixels, context.x, context.y, context.width, context.height)
        layers.append(layer)
    # Only now touch the layer stack: a bad answer above leaves the document unchanged.
    if len(layers) == 1:
        pending.parent.addChildNode(layers[0], pending.above)
    else:
        group = document.createGroupLayer(editing.group_name(prompt, len(layers)))
        for index, layer in reversed(list(enumerate(layers))):  # the first variation ends on top
            layer.setVisible(index == 0)
            group.addChildNode(layer, None)
        pending.parent.addChildNode(group, pending.above)
    document.refreshProjection()
    return layers


def _placement(document: Any, layer: Any) -> tuple[Any, Any]:
    """(parent, above): where a result goes so it sits directly above `layer` or the active layer."""
    reference = layer if layer is not None else document.activeNode()
    while reference is not None and reference.type() in MASK_TYPES:
        reference = reference.parentNode()  # a mask is active: go above the layer that owns it
    root = document.rootNode()
    if reference is None or reference.parentNode() is None:  # nothing active (or the root)
        layers = [node for node in root.childNodes() if node.type() not in MASK_TYPES]
        return root, layers[-1] if layers else None
    return reference.parentNode(), reference


def _clamp(rect: Rect, width: int, height: int) -> Rect:
    left, top = max(rect.x, 0), max(rect.y, 0)
    right, bottom = min(rect.right, width), min(rect.bottom, height)
    return Rect(left, top, right - left, bottom - top)

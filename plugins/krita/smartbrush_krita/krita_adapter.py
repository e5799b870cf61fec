"""The plugin's only contact with Krita's document API: `KritaCanvas`, smartbrush.wire.flow's Canvas
for a Krita document. The flow itself (request, daemon, layers, messages) is shared with GIMP.

Scripting (Krita's Scripter, or kritarunner):

    import smartbrush_krita
    doc = Krita.instance().activeDocument()
    layers = smartbrush_krita.fill_selection(doc, "a red ball", seed=7)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smartbrush.wire import editing, flow
from smartbrush.wire.editing import EditingError, FillOptions, Rect

CLIENT_NAME = "smartbrush_krita"
MASK_TYPES = ("selectionmask", "transparencymask", "filtermask", "transformmask", "colorizemask")
# Krita unites the outline rectangle by rectangle, in time that grows with the shape: 1065
# overlapping rectangles (a 1000 px disc) take 2.2 s, 1079 of a shape in many pieces 2.9 s; 1067
# that only touch (a 2000 px disc) 0.06 s, but touching ones at times leave seams across the
# shape (measured in Krita 5.1.5). Beyond this many: touching ones; beyond it again: no outline.
MAX_OUTLINE_RECTANGLES = 1200


class KritaCanvas:
    """A Krita document as the flow's canvas. Where results go (directly above `layer`, default the
    active layer) is decided when the canvas is made, i.e. when the fill is prepared."""

    pixel_order = "BGRA"  # Node.pixelData / setPixelData for 8-bit RGBA

    def __init__(self, document: Any, layer: Any = None) -> None:
        if document is None:
            raise EditingError("Open an image first.")
        if document.colorModel() != "RGBA" or document.colorDepth() not in ("U8", "U16"):
            raise EditingError(
                "SmartBrush works on 8- and 16-bit integer RGB images; this one is "
                f"{document.colorModel()} {document.colorDepth()}. Convert it with "
                "Image > Convert Image Color Space (RGB/Alpha, 8- or 16-bit integer)."
            )
        self.document = document
        # 16-bit: read as 8-bit (the high byte) and write the layer in 16 bits (v * 257)
        self.wide = document.colorDepth() == "U16"
        self.parent, self.above = _placement(document, layer)
        self.placed: tuple[Rect, list[flow.NewLayer]] | None = None  # the last add_layers

    def size(self) -> tuple[int, int]:
        return self.document.width(), self.document.height()

    def selection_bounds(self) -> Rect | None:
        selection = self.document.selection()
        if selection is None:
            return None
        return Rect(selection.x(), selection.y(), selection.width(), selection.height())

    def read_selection(self, rect: Rect) -> bytes:
        return bytes(self.document.selection().pixelData(rect.x, rect.y, rect.width, rect.height))

    def read_visible(self, rect: Rect) -> bytes:
        """What the new layer will sit on: the image without the layers above the insertion point
        (they stay above the result, so none is painted twice). They are hidden for the read only."""
        hidden = [node for node in self._nodes_above() if node.visible()]
        for node in hidden:
            node.setVisible(False)
        try:
            if hidden:
                self.document.refreshProjection()
            self.document.waitForDone()  # the projection must include the last stroke
            data = bytes(self.document.pixelData(rect.x, rect.y, rect.width, rect.height))
            return data[1::2] if self.wide else data  # little-endian 16 bit: the high bytes
        finally:
            for node in hidden:
                node.setVisible(True)
            if hidden:
                self.document.refreshProjection()

    def _nodes_above(self) -> list:
        """The layers above where the result goes, at its level and every level up."""
        above, parent, child = [], self.parent, self.above
        while parent is not None:
            siblings = [n for n in parent.childNodes() if n.type() not in MASK_TYPES]
            index = next((i for i, n in enumerate(siblings) if n == child), None)
            if index is not None:
                above += siblings[index + 1 :]  # childNodes() go bottom to top
            parent, child = parent.parentNode(), parent
        return above

    def add_layers(self, rect: Rect, layers: list[flow.NewLayer], group: str | None) -> list:
        document = self.document
        nodes = []
        for layer in layers:
            node = document.createNode(layer.name, "paintlayer")
            node.setPixelData(_widen(layer.pixels) if self.wide else layer.pixels, *rect_args(rect))
            node.setVisible(layer.visible)
            nodes.append(node)
        # Only now touch the layer stack, in one go.
        if group is None:
            [node] = nodes
            self.parent.addChildNode(node, self.above)
        else:
            folder = document.createGroupLayer(group)
            for node in reversed(nodes):  # the first ends on top
                folder.addChildNode(node, None)
            self.parent.addChildNode(folder, self.above)
        document.refreshProjection()
        self.placed = (rect, layers)
        return nodes

    def select_painted_object(self, index: int = 0) -> bool:
        """Make the object the model predicted in the last result (variation `index`) the document's
        selection, so it can be moved, recoloured or cut out; False when there is none."""
        from krita import Selection

        if self.placed is None or not self.placed[1][index].object_mask:
            return False
        rect, layers = self.placed
        mask = layers[index].object_mask
        selection = Selection()
        # Krita draws the marching ants from an outline a new Selection keeps beside its pixels:
        # empty, and marked valid, so setPixelData alone gave a selection nobody saw. select()
        # adds each rectangle to that outline; setPixelData then writes the exact (soft) values.
        pieces = editing.outline_rectangles(mask, rect.width, rect.height)
        if len(pieces) > MAX_OUTLINE_RECTANGLES:
            pieces = editing.mask_rectangles(mask, rect.width, rect.height)
        if len(pieces) <= MAX_OUTLINE_RECTANGLES:
            for piece in pieces:
                selection.select(rect.x + piece.x, rect.y + piece.y, piece.width, piece.height, 255)
        selection.setPixelData(mask, rect.x, rect.y, rect.width, rect.height)
        self.document.setSelection(selection)
        return True

    def holds(self, nodes: list, active: Any = None) -> bool:
        """Whether any of `nodes` hangs in this document's layer tree (undone, a group keeps its
        children: they are not enough), and, given the `active` document, this is the one."""
        if active is None or not active == self.document:
            return False
        root = self.document.rootNode().uniqueId()
        for node in nodes:
            while node.parentNode() is not None:
                node = node.parentNode()
            if node.uniqueId() == root:
                return True
        return False

    def is_open(self) -> bool:
        from krita import Krita

        try:
            return any(doc == self.document for doc in Krita.instance().documents())
        except Exception:  # a deleted wrapper
            return False


def fill_selection(
    document: Any,
    prompt: str,
    *,
    layer: Any = None,
    endpoint: str | None = None,
    timeout: float = flow.SILENCE_TIMEOUT,
    padding: int | None = None,
    on_progress: Callable[[dict], Any] | None = None,
    select_object: bool = False,
    **options: Any,
) -> list:
    """Fill the document's selection with what `prompt` describes; return the new layers.

    The result is a new paint layer directly above `layer` (default: the active layer; with no active
    layer, e.g. under kritarunner, the top of the stack), named "SmartBrush: <prompt> (seed N)" and
    transparent outside the filled region. With variations > 1 the layers go into a group, all but the
    first hidden. No existing layer is changed. `options` are smartbrush.wire.editing.FillOptions'
    fields (negative_prompt, precision, steps, guidance, seed, variations): precision "auto"
    (rectangle -> anywhere in the box, other shapes -> this shape, softened by feathering) or 0
    (exact shape) ... 1 (anywhere in the box).

    `remove=True` erases what is selected and continues the background instead (the prompt is
    unused; the hole is filled from what surrounds it, with any model). `select_object=True` then makes the object the
    model painted the selection.

    Raises EditingError (e.g. NoSelection) for what the user can fix and smartbrush.wire.client
    errors (DaemonUnavailable, DaemonError, FillCancelled) from the daemon;
    ``smartbrush.wire.editing.user_message(error)`` turns any of them into one line for people. If
    `on_progress(message)` returns False the fill is cancelled.
    """
    document.refreshProjection()  # a script may just have changed pixels
    canvas = KritaCanvas(document, layer)
    prepared = flow.prepare(canvas, FillOptions(prompt, **options), padding=padding)
    result = flow.send(
        prepared, endpoint=endpoint, on_progress=on_progress, client_name=CLIENT_NAME,
        timeout=timeout,
    )  # fmt: skip
    layers = flow.place(canvas, prepared, result)
    if select_object:
        canvas.select_painted_object()
    return layers


def selection_box(document: Any) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the document's selection, None without one."""
    selection = document.selection() if document is not None else None
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return None
    return selection.x(), selection.y(), selection.width(), selection.height()


def selection_wait(document: Any) -> float:
    """Seconds a fill without a selection waits for one. A selection tool sets its selection a
    moment after the mouse is released, not when the mouse is released: an empty selection first
    (Krita 5.1.5 makes one there), filled 0.1-0.4 s later (measured idle; more under load). An empty
    one says a selection is on its way; none at all is still one 0.1 s after the release."""
    selection = document.selection() if document is not None else None
    if selection is None:
        return 1.0
    return 3.0 if selection.width() <= 0 or selection.height() <= 0 else 0.0


def selection_precision(document: Any) -> float | None:
    """The auto precision the document's selection gives (None without a selection)."""
    box = selection_box(document)
    if box is None:
        return None
    pixels = bytes(document.selection().pixelData(*box))
    return editing.auto_precision(pixels, box[2], box[3])


def focus_canvas() -> None:
    """Give the keyboard back to the canvas, so Ctrl+Z undoes the fill and tool keys reach tools."""
    from krita import Krita
    from PyQt5.QtWidgets import QMdiArea

    window = Krita.instance().activeWindow()
    area = window.qwindow().findChild(QMdiArea) if window is not None else None
    view = area.activeSubWindow() if area is not None else None
    if view is not None and view.widget() is not None:
        view.widget().setFocus()


def rect_args(rect: Rect) -> tuple[int, int, int, int]:
    return rect.x, rect.y, rect.width, rect.height


def _widen(data: bytes) -> bytes:
    """8-bit channel values as little-endian 16-bit ones (v * 257: 255 becomes 65535)."""
    wide = bytearray(2 * len(data))
    wide[0::2] = wide[1::2] = data
    return bytes(wide)


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

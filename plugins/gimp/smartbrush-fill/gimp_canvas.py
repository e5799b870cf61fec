"""The plug-in's only contact with GIMP's image API: `GimpCanvas`, smartbrush.wire.flow's Canvas for
a GIMP image. The flow itself (request, daemon, layers, messages) is shared with Krita."""

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

from smartbrush.wire.editing import EditingError, Rect  # noqa: E402

PIXELS = "R'G'B'A u8"  # what GIMP shows, 4 bytes a pixel
SELECTION = "Y u8"  # the same values as Gimp.Selection.value; "Y' u8" would bend soft edges


class GimpCanvas:
    """A GIMP image as the flow's canvas; results go directly above the active drawable."""

    pixel_order = "RGBA"

    def __init__(self, image, drawables):
        self.image = image
        self.parent, self.position = _insertion_point(image, drawables)
        self.path = _path(image, self.parent, self.position)

    def size(self):
        return self.image.get_width(), self.image.get_height()

    def selection_bounds(self):
        _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(self.image)
        if not non_empty or x2 <= x1 or y2 <= y1:
            return None
        return Rect(x1, y1, x2 - x1, y2 - y1)

    def read_selection(self, rect):
        return _read(self.image.get_selection(), rect.x, rect.y, rect.width, rect.height, SELECTION)

    def read_visible(self, rect):
        """What the new layer will sit on: a merged copy of the visible layers below the insertion
        point inside `rect` (layers above it stay above the result, so none is painted twice); the
        image itself is untouched."""
        copy = self.image.duplicate()
        try:
            layers = copy.get_layers()
            for depth, position in enumerate(self.path):  # hide what lies above, level by level
                for layer in layers[:position]:
                    layer.set_visible(False)
                if depth + 1 < len(self.path):
                    layers = layers[position].get_children()
            copy.crop(rect.width, rect.height, rect.x, rect.y)
            if not any(layer.get_visible() for layer in copy.get_layers()):
                raise EditingError("No layer is visible: there is nothing to fill from.")
            merged = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
            return _read(merged, 0, 0, rect.width, rect.height, PIXELS)
        finally:
            copy.delete()

    def add_layers(self, rect, layers, group):
        """New layers (in a new group for variations) above the active drawable, one undo step."""
        image = self.image
        gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
        layer_type = Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE
        added = []
        folder = None
        image.undo_group_start()
        try:
            parent, position = self.parent, self.position
            if group is not None:
                folder = Gimp.GroupLayer.new(image, group)
                image.insert_layer(folder, parent, position)
                parent, position = folder, 0
            # Each insert at `position` pushes the earlier ones down: insert the last first.
            for new in reversed(layers):
                layer = Gimp.Layer.new(
                    image, new.name, rect.width, rect.height, layer_type, 100.0,
                    Gimp.LayerMode.NORMAL,
                )  # fmt: skip
                image.insert_layer(layer, parent, position)
                layer.set_offsets(rect.x, rect.y)
                buffer = layer.get_buffer()
                buffer.set(Gegl.Rectangle.new(0, 0, rect.width, rect.height), PIXELS, new.pixels)
                buffer.flush()
                layer.update(0, 0, rect.width, rect.height)
                layer.set_visible(new.visible)
                added.insert(0, layer)
            # every variation's object, so whichever the user keeps can be selected (first on top)
            for new in reversed(layers):
                if new.object_mask:
                    self._add_object_channel(rect, new)
        finally:
            image.undo_group_end()
        # the group, not a variation in it, is active: the next fill goes above it, not into it
        image.set_selected_layers([folder if folder is not None else added[0]])
        return added

    def _add_object_channel(self, rect, layer):
        """The object the model predicted, as a hidden channel: Channel to Selection (one click in
        the Channels dialog) selects what was painted, to move, recolour or cut it out."""
        image = self.image
        channel = Gimp.Channel.new(
            image, f"{layer.name}: object", image.get_width(), image.get_height(), 50.0,
            Gegl.Color.new("red"),
        )  # fmt: skip
        image.insert_channel(channel, None, 0)
        buffer = channel.get_buffer()
        buffer.set(Gegl.Rectangle.new(rect.x, rect.y, rect.width, rect.height), SELECTION,
                   layer.object_mask)  # fmt: skip
        buffer.flush()
        channel.set_visible(False)


def _insertion_point(image, drawables):
    """(parent, position) that puts a new layer directly above the active drawable."""
    drawable = drawables[0] if drawables else None
    if isinstance(drawable, Gimp.LayerMask):
        drawable = Gimp.Layer.from_mask(drawable)
    if drawable is not None and isinstance(drawable, Gimp.Layer):
        return drawable.get_parent(), image.get_item_position(drawable)
    return None, 0  # a channel or nothing: on top of the layer stack


def _path(image, parent, position):
    """Positions from the top level down to the insertion point (0 = top of a stack)."""
    path = [position]
    while parent is not None:
        path.insert(0, image.get_item_position(parent))
        parent = parent.get_parent()
    return path


def _read(drawable, x, y, width, height, babl_format):
    buffer = drawable.get_buffer()
    rect = Gegl.Rectangle.new(x, y, width, height)
    return bytes(buffer.get(rect, 1.0, babl_format, Gegl.AbyssPolicy.NONE))

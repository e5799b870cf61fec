#!/usr/bin/env python3
"""SmartBrush Fill for GIMP 3: paint what a prompt describes into the selection, as a new layer.

This is the only file that talks to GIMP. The editor-independent steps (mask from the selection,
context crop, request, layer pixels, names, messages) are smartbrush.wire.editing; the daemon is reached
through smartbrush.wire.client. `smartbrush install-plugin gimp` copies both next to this file.

Procedure plug-in-smartbrush-fill (Filters > SmartBrush Fill..., also Edit > SmartBrush Fill...):
- interactive: a dialog (prompt, negative prompt, precision, steps, guidance, seed, variations, endpoint);
- non-interactive / last values: every option is a procedure argument, for batch scripts.
The result is a new layer directly above the active layer, named "SmartBrush: <prompt> (seed N)" and
transparent outside the filled region; further variations are hidden layers above it. All of it is one
undo step and no existing layer is touched. Errors come back as a message, never as a traceback.
"""

import os
import subprocess
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
# install-plugin puts the vendored smartbrush package (and pyzmq/msgpack wheels, if GIMP's Python
# lacks them) into vendor/.
VENDOR_DIR = os.path.join(PLUGIN_DIR, "vendor")
sys.path.insert(0, VENDOR_DIR)

PROCEDURE = "plug-in-smartbrush-fill"
HELLO_TIMEOUT = 5.0  # seconds to wait for the daemon to answer at all
SILENCE_TIMEOUT = 60.0  # longest silence during a fill (the daemon sends keep-alives every 2 s)
MAX_INT = 2**31 - 1  # GIMP's int arguments are 32-bit
DIALOG_FIELDS = [
    "prompt",
    "negative-prompt",
    "auto-precision",
    "precision",
    "steps",
    "guidance",
    "seed",
    "variations",
    "endpoint",
]
MISSING_MODULES_MESSAGE = (
    "SmartBrush needs the Python modules pyzmq and msgpack in GIMP's Python ({error}). "
    "Run `smartbrush install-plugin gimp` again, or install python3-zmq and python3-msgpack."
)
# Run in a child process while a fill runs. GIMP cancels a plug-in's progress by killing the
# plug-in outright (SIGKILL), so the plug-in cannot tell the daemon itself: this watchdog sees its
# stdin close without the word "done" and cancels the job, so the daemon stops working for nothing.
CANCEL_WATCHDOG = """
import sys
from smartbrush.wire.client import Client
endpoint, job_id = sys.argv[1:3]
if sys.stdin.read() != "done":
    try:
        Client(endpoint, timeout=5.0).cancel(job_id)
    except Exception:
        pass
"""


class UserFacingError(Exception):
    """Stops the fill with `message` for the user and the given PDB status."""

    def __init__(self, message, status=Gimp.PDBStatusType.EXECUTION_ERROR):
        super().__init__(message)
        self.status = status


class SmartBrushFill(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(
            Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
        )
        procedure.set_menu_label("SmartBrush _Fill...")
        procedure.add_menu_path("<Image>/Filters")
        procedure.add_menu_path("<Image>/Edit")
        procedure.set_documentation(
            "Paint what the prompt describes into the selection, as a new layer",
            "Sends the visible pixels around the selection, the selection (soft edges kept) and the "
            "prompt to the SmartBrush daemon and adds the result as a new layer directly above the "
            "active layer, transparent outside the filled region. Variations become hidden layers "
            "above it. Existing layers are never changed; the whole fill is one undo step.",
            name,
        )
        procedure.set_attribution("SmartBrush contributors", "SmartBrush contributors", "2026")
        rw = GObject.ParamFlags.READWRITE
        procedure.add_string_argument(
            "prompt", "_Prompt", "What to paint into the selection", "", rw
        )
        procedure.add_string_argument(
            "negative-prompt", "_Negative prompt", "What to avoid (may be empty)", "", rw
        )
        procedure.add_boolean_argument(
            "auto-precision",
            "_Auto precision",
            "Let the daemon choose: a rectangle may be filled anywhere inside it, other shapes "
            "are followed exactly, softer (feathered) edges more loosely",
            True,
            rw,
        )
        procedure.add_double_argument(
            "precision",
            "Prec_ision",
            "Used when Auto precision is off: 0 = follow the selection's shape exactly, "
            "1 = anywhere inside its bounding box",
            0.0,
            1.0,
            0.0,
            rw,
        )
        procedure.add_int_argument("steps", "S_teps", "Denoising steps", 1, 200, 20, rw)
        procedure.add_double_argument(
            "guidance", "_Guidance", "How strongly to follow the prompt; 0 uses the model's own default",
            0.0, 50.0, 0.0, rw,
        )  # fmt: skip
        procedure.add_int_argument(
            "seed", "S_eed", "Random seed; -1 picks a new one each time", -1, MAX_INT, -1, rw
        )
        procedure.add_int_argument(
            "variations",
            "_Variations",
            "How many results (extra ones as hidden layers)",
            1,
            8,
            1,
            rw,
        )
        procedure.add_string_argument(
            "endpoint",
            "_Daemon endpoint",
            "Where the SmartBrush daemon listens; empty: $SMARTBRUSH_ENDPOINT or the default "
            "tcp://127.0.0.1:5737",
            "",
            rw,
        )
        procedure.add_layer_return_value(
            "layer", "Layer", "The new layer (the first variation)", True, rw
        )
        procedure.add_int_return_value(
            "seed", "Seed", "The seed of the new layer (reproduces it)", -1, MAX_INT, -1, rw
        )
        return procedure


def run(procedure, run_mode, image, drawables, config, run_data):
    try:
        selection = selection_bounds(image)  # before the dialog: no selection, no questions
        if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, config):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        endpoint = config.get_property("endpoint") or None  # None: $SMARTBRUSH_ENDPOINT or default
        layer, seed = fill(image, drawables, selection, read_options(config), endpoint)
    except UserFacingError as error:
        return failure(procedure, error.status, str(error))
    except Exception as error:  # never a traceback for the user; the log keeps it for us
        traceback.print_exc()
        return failure(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, describe(error, config))
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.displays_flush()
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
    set_value(values, 1, GObject.Value(Gimp.Layer, layer))
    set_value(values, 2, GObject.Value(GObject.TYPE_INT, seed if seed <= MAX_INT else -1))
    return values


def set_value(values, index, value):
    values.remove(index)
    values.insert(index, value)


def failure(procedure, status, message):
    print(f"SmartBrush: {message}", file=sys.stderr)
    return procedure.new_return_values(
        status, GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
    )


def describe(error, config):
    """One line for the user, using the shared wording when the vendored modules are importable."""
    try:
        from smartbrush.wire import editing
    except Exception:
        return f"SmartBrush failed: {error}"
    endpoint = config.get_property("endpoint") or os.environ.get("SMARTBRUSH_ENDPOINT")
    return editing.user_message(error, endpoint)


# --- GIMP -> request -----------------------------------------------------------------------------


def selection_bounds(image):
    """The selection's bounding box as (x, y, width, height); a clear error when there is none."""
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    if not non_empty or x2 <= x1 or y2 <= y1:
        from_editing = _editing_or_none()
        message = from_editing.NO_SELECTION_MESSAGE if from_editing else "Nothing is selected."
        raise UserFacingError(message, Gimp.PDBStatusType.CALLING_ERROR)
    return x1, y1, x2 - x1, y2 - y1


def show_dialog(procedure, config):
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init("smartbrush-fill")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "SmartBrush Fill")
    dialog.get_spin_scale("precision", 1.0)  # a slider from exact (0) to box (1)
    dialog.get_spin_scale("guidance", 1.0)
    dialog.fill(DIALOG_FIELDS)
    # The precision slider only matters when Auto precision is off.
    dialog.set_sensitive("precision", True, config, "auto-precision", True)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


def read_options(config):
    editing = _import_editing()
    seed = config.get_property("seed")
    precision = config.get_property("precision")
    return editing.FillOptions(
        prompt=config.get_property("prompt") or "",
        negative_prompt=config.get_property("negative-prompt") or "",
        precision="auto" if config.get_property("auto-precision") else precision,
        steps=config.get_property("steps"),
        guidance=config.get_property("guidance") or None,  # 0 (no guidance at all) means "default"
        seed=None if seed < 0 else seed,  # None: the daemon picks one (the layer name says which)
        variations=config.get_property("variations"),
    )


def read_visible(image, rect):
    """The visible pixels of `rect` as GIMP shows them, R'G'B'A u8 (a merged copy; image untouched)."""
    copy = image.duplicate()
    try:
        copy.crop(rect.width, rect.height, rect.x, rect.y)
        if not any(layer.get_visible() for layer in copy.get_layers()):
            raise UserFacingError("No layer is visible: there is nothing to fill from.")
        merged = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        return read_buffer(merged, 0, 0, rect.width, rect.height, "R'G'B'A u8")
    finally:
        copy.delete()


def read_selection(image, rect):
    # "Y u8" gives the same values as Gimp.Selection.value; "Y' u8" would bend the soft edges.
    return read_buffer(image.get_selection(), rect.x, rect.y, rect.width, rect.height, "Y u8")


def read_buffer(drawable, x, y, width, height, babl_format):
    buffer = drawable.get_buffer()
    rect = Gegl.Rectangle.new(x, y, width, height)
    return bytes(buffer.get(rect, 1.0, babl_format, Gegl.AbyssPolicy.NONE))


# --- the fill ------------------------------------------------------------------------------------


def fill(image, drawables, selection, options, endpoint):
    """Send the fill to the daemon and add its results; returns (first new layer, its seed)."""
    editing, client_module = _import_smartbrush()
    import zmq

    try:
        rect = editing.context_rect(editing.Rect(*selection), image.get_width(), image.get_height())
        mask = editing.mask_from_selection(read_selection(image, rect), rect.width, rect.height)
        request = editing.build_fill_request(
            editing.image_from_pixels(read_visible(image, rect), rect.width, rect.height, "RGBA"),
            mask,
            options,
        )
    except editing.EditingError as error:
        raise UserFacingError(str(error), Gimp.PDBStatusType.CALLING_ERROR) from None

    where = client_module.resolve_endpoint(endpoint)
    client = None
    try:
        Gimp.progress_init("SmartBrush: connecting to the daemon")
        client = client_module.Client(where, timeout=HELLO_TIMEOUT, client_name="smartbrush-gimp")
        client.hello()  # fails fast with a clear message when no daemon runs
        client.timeout = SILENCE_TIMEOUT
        with CancelWatchdog(where) as watchdog:
            result = client.fill(
                request, on_progress=lambda message: show_progress(message, watchdog)
            )
    except client_module.DaemonUnavailable:
        raise UserFacingError(
            editing.daemon_down_message(where, start_command=None)
            + " Start it with `smartbrush serve`, or set the endpoint."
        ) from None
    except client_module.SmartBrushError as error:  # incl. unreadable CURVE keys, daemon errors
        raise UserFacingError(editing.user_message(error, where)) from None
    except zmq.ZMQError as error:  # e.g. a mistyped endpoint
        raise UserFacingError(f"Cannot reach the daemon at {where!r}: {error}.") from None
    finally:
        if client is not None:
            client.close()
        Gimp.progress_end()
    return add_result_layers(image, drawables, rect, request["prompt"], result, editing)


def show_progress(message, watchdog):
    kind = message.get("type")
    if message.get("job_id"):
        watchdog.watch(message["job_id"])
    if kind in ("accepted", "queued") and message.get("queue_position"):
        Gimp.progress_set_text(f"SmartBrush: waiting, {message['queue_position']} job(s) ahead")
    elif kind == "progress" and message.get("total"):
        Gimp.progress_set_text(f"SmartBrush: step {message['step']} of {message['total']}")
        Gimp.progress_update(min(1.0, message["step"] / message["total"]))


def add_result_layers(image, drawables, rect, prompt, result, editing):
    """Insert the results as new layers above the active drawable, as one undo step."""
    parent, position = insertion_point(image, drawables)
    layer_type = (
        Gimp.ImageType.GRAYA_IMAGE
        if image.get_base_type() == Gimp.ImageBaseType.GRAY
        else Gimp.ImageType.RGBA_IMAGE
    )
    images, alphas, seeds = result["images"], result.get("alphas") or [], result["seeds"]
    # Convert every result before touching the image: a bad result changes nothing.
    contents = []
    for index, picture in enumerate(images):
        if (picture["width"], picture["height"]) != (rect.width, rect.height):
            raise ValueError(
                f"the daemon sent a {picture['width']}x{picture['height']} result "
                f"for a {rect.width}x{rect.height} area"
            )
        alpha = alphas[index] if index < len(alphas) else None
        pixels = editing.layer_pixels(picture, alpha, order="RGBA")
        contents.append((editing.layer_name(prompt, seeds[index]), pixels))
    layers = []
    image.undo_group_start()
    try:
        # Each insert at `position` pushes the earlier ones down: the first result ends up directly
        # above the active drawable, the other variations above it.
        for index, (name, pixels) in enumerate(contents):
            layer = Gimp.Layer.new(
                image, name, rect.width, rect.height, layer_type, 100.0, Gimp.LayerMode.NORMAL
            )
            image.insert_layer(layer, parent, position)
            layer.set_offsets(rect.x, rect.y)
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, rect.width, rect.height), "R'G'B'A u8", pixels)
            buffer.flush()
            layer.update(0, 0, rect.width, rect.height)
            layer.set_visible(index == 0)
            layers.append(layer)
    finally:
        image.undo_group_end()
    image.set_selected_layers([layers[0]])
    return layers[0], seeds[0]


def insertion_point(image, drawables):
    """(parent, position) that puts a new layer directly above the active drawable."""
    drawable = drawables[0] if drawables else None
    if isinstance(drawable, Gimp.LayerMask):
        drawable = Gimp.Layer.from_mask(drawable)
    if isinstance(drawable, Gimp.Layer):
        return drawable.get_parent(), image.get_item_position(drawable)
    return None, 0  # a channel or nothing: on top of the layer stack


class CancelWatchdog:
    """Cancels the daemon job if this process dies mid-fill (how GIMP cancels a plug-in)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.process = None

    def watch(self, job_id):
        if self.process is not None:
            return
        env = dict(os.environ, PYTHONPATH=VENDOR_DIR)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CANCEL_WATCHDOG, self.endpoint, job_id],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # outlives us when GIMP kills the plug-in
            )
        except OSError:
            self.process = None  # no watchdog: a GIMP-side cancel then only drops the result

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.process is not None:
            # Finished (or failed) normally: nothing to cancel. Closing without "done" cancels.
            word = b"done" if exc_info[0] is None else b"cancel"
            try:
                self.process.stdin.write(word)
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return False


# --- vendored modules ----------------------------------------------------------------------------


def _import_editing():
    return _import_smartbrush()[0]


def _import_smartbrush():
    """(editing, client) from vendor/, or a message that says what to install."""
    try:
        import msgpack  # noqa: F401
        import zmq  # noqa: F401
    except ImportError as error:
        raise UserFacingError(MISSING_MODULES_MESSAGE.format(error=error)) from None
    try:
        from smartbrush.wire import client, editing
    except ImportError as error:
        raise UserFacingError(
            f"SmartBrush is not installed completely ({error}). "
            "Run `smartbrush install-plugin gimp` again."
        ) from None
    return editing, client


def _editing_or_none():
    try:
        from smartbrush.wire import editing
    except ImportError:
        return None
    return editing


Gimp.main(SmartBrushFill.__gtype__, sys.argv)

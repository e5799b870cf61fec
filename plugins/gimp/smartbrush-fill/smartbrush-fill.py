#!/usr/bin/env python3
"""SmartBrush Fill for GIMP 3: paint what a prompt describes into the selection, as a new layer.

This file is the procedure and its dialog; gimp_canvas.py reads and writes the image. The fill itself
(selection -> request -> daemon -> layers, messages) is smartbrush.wire.flow, shared with Krita;
`smartbrush install-plugin gimp` vendors smartbrush.wire next to this file.

Procedure plug-in-smartbrush-fill (Filters > SmartBrush Fill..., also Edit > SmartBrush Fill...):
- interactive: a dialog (prompt, negative prompt, precision, steps, guidance, seed, variations, endpoint);
- non-interactive / last values: every option is a procedure argument, for batch scripts.
The result is a new layer directly above the active layer, named "SmartBrush: <prompt> (seed N)" and
transparent outside the filled region; variations go into a new layer group, all but the first hidden.
All of it is one undo step and no existing layer is touched. Errors come back as a message, never as a
traceback.
"""

import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib, GObject  # noqa: E402

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
# install-plugin puts the vendored smartbrush package (and pyzmq/msgpack wheels, if GIMP's Python
# lacks them) into vendor/.
VENDOR_DIR = os.path.join(PLUGIN_DIR, "vendor")
sys.path.insert(0, VENDOR_DIR)

PROCEDURE = "plug-in-smartbrush-fill"
REMOVE_PROCEDURE = "plug-in-smartbrush-remove"  # erase the selected object, continue the background
CLIENT_NAME = "smartbrush-gimp"
MAX_INT = 2**31 - 1  # GIMP's int arguments are 32-bit
MISSING_MODULES_MESSAGE = (
    "SmartBrush needs the Python modules pyzmq and msgpack in GIMP's Python ({error}). "
    "Run `smartbrush install-plugin gimp` again, or install python3-zmq and python3-msgpack."
)


class UserFacingError(Exception):
    """Stops the fill with `message` for the user and the given PDB status."""

    def __init__(self, message, status=Gimp.PDBStatusType.EXECUTION_ERROR):
        super().__init__(message)
        self.status = status


class SmartBrushFill(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE, REMOVE_PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        if name == REMOVE_PROCEDURE:
            return self.create_remove_procedure(name)
        procedure = self.new_procedure(name, "SmartBrush _Fill...")
        procedure.set_documentation(
            "Paint what the prompt describes into the selection, as a new layer",
            "Sends the visible pixels around the selection, the selection (soft edges kept) and the "
            "prompt to the SmartBrush daemon and adds the result as a new layer directly above the "
            "active layer, transparent outside the filled region. Variations go into a layer group, "
            "all but the first hidden. Existing layers are never changed; the whole fill is one undo step.",
            name,
        )
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
        options = _fill_options()  # the protocol's ranges and defaults
        steps, guidance, variations = (
            options[name] for name in ("steps", "guidance", "variations")
        )
        procedure.add_int_argument(
            "steps", "S_teps", "Denoising steps", steps.low, steps.high, steps.default, rw
        )
        procedure.add_double_argument(
            "guidance", "_Guidance (0: the model's)", "How strongly to follow the prompt; 0 uses the model's own default",
            guidance.low, guidance.high, 0.0, rw,
        )  # fmt: skip
        procedure.add_int_argument(
            "seed", "S_eed", "Random seed; -1 picks a new one each time", -1, MAX_INT, -1, rw
        )
        procedure.add_int_argument(
            "variations", "_Variations", "How many results (in a layer group, extra ones hidden)",
            variations.low, variations.high, variations.default, rw,
        )  # fmt: skip
        procedure.add_choice_argument(
            "detail", "_Detail", options["detail"].help[:1].upper() + options["detail"].help[1:],
            detail_choice(), options["detail"].default, rw,
        )  # fmt: skip
        procedure.add_string_argument(
            "endpoint",
            "_Daemon endpoint",
            "Where the SmartBrush daemon listens; empty: $SMARTBRUSH_ENDPOINT or your own "
            "daemon's socket",
            "",
            rw,
        )
        add_results(procedure)
        return procedure

    def new_procedure(self, name, label):
        """An image procedure under Filters and Edit, for RGB and grey images with a drawable."""
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(
            Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
        )
        procedure.set_menu_label(label)
        procedure.add_menu_path("<Image>/Filters")
        procedure.add_menu_path("<Image>/Edit")
        procedure.set_attribution("SmartBrush contributors", "SmartBrush contributors", "2026")
        return procedure

    def create_remove_procedure(self, name):
        procedure = self.new_procedure(name, "SmartBrush _Remove Object")
        procedure.set_documentation(
            "Erase what is selected and continue the background, as a new layer",
            "Asks the SmartBrush daemon to remove the object under the selection (select it with "
            "a little margin) and adds the continued background as a new layer above the active "
            "layer. The hole is filled from what surrounds it, at the photo's own resolution.",
            name,
        )
        rw = GObject.ParamFlags.READWRITE
        steps = _fill_options()["steps"]
        procedure.add_int_argument(
            "steps", "S_teps", "Denoising steps", steps.low, steps.high, steps.default, rw
        )
        procedure.add_int_argument(
            "seed", "S_eed", "Random seed; -1 picks a new one each time", -1, MAX_INT, -1, rw
        )
        procedure.add_string_argument(
            "endpoint", "_Daemon endpoint", "Where the SmartBrush daemon listens", "", rw
        )
        add_results(procedure)
        return procedure


def detail_choice():
    """The `detail` option's values as a GIMP choice (a combo box in the dialog)."""
    from smartbrush.wire.editing import DETAIL_LABELS  # pure Python, like _fill_options

    choice = Gimp.Choice.new()
    for number, nick in enumerate(_fill_options()["detail"].choices):
        choice.add(nick, number, DETAIL_LABELS.get(nick, nick), "")
    return choice


def add_results(procedure):
    rw = GObject.ParamFlags.READWRITE
    procedure.add_layer_return_value(
        "layer", "Layer", "The new layer (the first variation)", True, rw
    )
    procedure.add_int_return_value(
        "seed", "Seed", "The seed of the new layer (reproduces it)", -1, MAX_INT, -1, rw
    )


def run(procedure, run_mode, image, drawables, config, run_data):
    try:
        editing, flow, gimp_canvas = _import_smartbrush()
        canvas = gimp_canvas.GimpCanvas(image, drawables)
        remove = procedure.get_name() == REMOVE_PROCEDURE  # no dialog: nothing to type
        if canvas.selection_bounds() is None:  # before the dialog: no selection, no questions
            message = (
                editing.NO_SELECTION_TO_REMOVE_MESSAGE if remove else editing.NO_SELECTION_MESSAGE
            )
            raise UserFacingError(message, Gimp.PDBStatusType.CALLING_ERROR)
        prepared = []

        def inputs_problem():
            try:
                prepared[:] = [flow.prepare(canvas, read_options(config, remove))]
            except editing.EditingError as error:
                return str(error)
            return None

        def describe_selection():
            try:  # the selection on the canvas, and what the model will see
                selection, area = flow.selection_context(canvas)
            except editing.NoSelection:  # the dialog is open: the user may have dropped it
                return None, None, ""
            precision = editing.auto_precision(canvas.read_selection(area), area.width, area.height)
            described = editing.describe_precision(precision)
            return area, selection, f"Auto precision for this selection: {described}."

        if not remove and run_mode == Gimp.RunMode.INTERACTIVE:
            import dialog

            if not dialog.ask(procedure, config, inputs_problem, endpoint_of, describe_selection):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        elif (problem := inputs_problem()) is not None:
            raise UserFacingError(problem, Gimp.PDBStatusType.CALLING_ERROR)
        layer, seed = fill(canvas, prepared[0], config)
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


# --- dialog and options --------------------------------------------------------------------------


def endpoint_of(config):
    from smartbrush.wire import client

    return client.resolve_endpoint(config.get_property("endpoint") or None)


def read_options(config, remove=False):
    editing = _import_smartbrush()[0]
    seed = config.get_property("seed")
    if remove:
        seed = None if seed < 0 else seed
        return editing.FillOptions("", remove=True, steps=config.get_property("steps"), seed=seed)
    precision = config.get_property("precision")
    return editing.FillOptions(
        prompt=config.get_property("prompt") or "",
        negative_prompt=config.get_property("negative-prompt") or "",
        precision="auto" if config.get_property("auto-precision") else precision,
        steps=config.get_property("steps"),
        guidance=config.get_property("guidance") or None,  # 0 (no guidance at all) means "default"
        seed=None if seed < 0 else seed,  # None: the daemon picks one (the layer name says which)
        variations=config.get_property("variations"),
        detail=config.get_property("detail"),
    )


# --- the fill ------------------------------------------------------------------------------------


def fill(canvas, prepared, config):
    """Send the prepared fill and place its result; returns (first new layer, its seed)."""
    editing, flow, _ = _import_smartbrush()
    from cancel_watchdog import CancelWatchdog

    from smartbrush.wire import client

    where = endpoint_of(config)
    Gimp.progress_init("SmartBrush: connecting to the daemon")
    try:
        with CancelWatchdog(where) as watchdog:
            result = flow.send(
                prepared, endpoint=where, client_name=CLIENT_NAME,
                on_progress=lambda message: show_progress(message, watchdog),
            )  # fmt: skip
    except client.SmartBrushError as error:  # no answer (keys?), a bad endpoint, daemon errors
        raise UserFacingError(editing.user_message(error, where, editing.START_COMMAND)) from None
    finally:
        Gimp.progress_end()
    layers = flow.place(canvas, prepared, result)
    return layers[0], result["seeds"][0]


def show_progress(message, watchdog):
    kind = message.get("type")
    if message.get("job_id"):
        watchdog.watch(message["job_id"])
    if kind in ("accepted", "queued") and message.get("queue_position"):
        Gimp.progress_set_text(f"SmartBrush: waiting, {message['queue_position']} job(s) ahead")
    elif kind == "progress" and message.get("total"):
        Gimp.progress_set_text(f"SmartBrush: step {message['step']} of {message['total']}")
        Gimp.progress_update(min(1.0, message["step"] / message["total"]))


# --- vendored modules ----------------------------------------------------------------------------


def _import_smartbrush():
    """(editing, flow, gimp_canvas) from vendor/, or a message that says what to install."""
    try:
        import msgpack  # noqa: F401
        import zmq  # noqa: F401
    except ImportError as error:
        raise UserFacingError(MISSING_MODULES_MESSAGE.format(error=error)) from None
    try:
        import gimp_canvas

        from smartbrush.wire import editing, flow
    except ImportError as error:
        raise UserFacingError(
            f"SmartBrush is not installed completely ({error}). "
            "Run `smartbrush install-plugin gimp` again."
        ) from None
    return editing, flow, gimp_canvas


def _fill_options():
    """The protocol's fill options (ranges, defaults): pure Python, importable without msgpack."""
    from smartbrush.wire import protocol

    return protocol.FILL_OPTIONS


Gimp.main(SmartBrushFill.__gtype__, sys.argv)

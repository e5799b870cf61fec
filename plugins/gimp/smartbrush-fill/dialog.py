"""The plug-in's dialog: GIMP's ProcedureDialog built from the procedure's arguments, with a line that
says which daemon and model the fill will use. It stays open, with what was typed, until the inputs
and the daemon are good or the user cancels (GIMP keeps the values of successful runs only)."""

from html import escape

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, Gtk  # noqa: E402

from smartbrush.wire import client, editing, flow  # noqa: E402

FIELDS = [
    "prompt", "negative-prompt", "auto-precision", "precision", "steps", "guidance", "seed",
    "variations", "detail", "endpoint",
]  # fmt: skip
STATUS = "smartbrush-status"  # the label's id in the dialog


def ask(procedure, config, inputs_problem, endpoint_of, describe_selection=None):
    """Show the dialog until `inputs_problem()` returns None and the daemon at `endpoint_of(config)`
    answers (the problem is shown at the top of the next dialog); False when the user cancels.

    describe_selection() -> (the context area the model will see, or None; the selection's bounds;
    a note): read again for every dialog, as the user may change the selection while it is open."""
    GimpUi.init("smartbrush-fill")
    problem = None
    while True:
        area, selection, note = describe_selection() if describe_selection else (None, None, "")
        status = "\n".join(
            filter(
                None,
                [
                    daemon_status(
                        endpoint_of(config), area, selection, config.get_property("detail")
                    ),
                    note,
                ],
            )
        )
        if not _show(procedure, config, status, problem):
            return False
        endpoint = endpoint_of(config)  # the user may have changed it
        problem = inputs_problem() or probe_daemon(endpoint)[1]
        if problem is None:
            return True


def probe_daemon(endpoint):
    """(the daemon's hello: model, resolution, ...; None) or (None, why it does not answer within
    a second: down, or a key it rejects)."""
    try:
        with client.Client(endpoint, timeout=1.0, client_name="smartbrush-gimp") as probe:
            return probe.hello(), None
    except client.SmartBrushError as error:
        return None, editing.user_message(error, endpoint, editing.START_COMMAND)


def daemon_status(endpoint, area=None, selection=None, detail=None):
    """The dialog's first line: which daemon and model the fill will use (and a warning when the
    model must upscale the context `area` of the `selection` a lot)."""
    info, problem = probe_daemon(endpoint)
    if info is None:
        return problem
    loading = ", still loading" if info.get("loading") else ""
    size = f", works at {info['resolution']} px" if info.get("resolution") else ""
    resolution = info.get("resolution")
    note = flow.upscale_note(area, resolution, selection, detail) if area is not None else None
    status = f"Daemon at {endpoint}: model {info['model']}{loading}{size}."
    return status + (f"\n{note}" if note else "")


def status_markup(status, problem=None):
    """The status label: the problem in bold on top, then the status lines that do not repeat it
    (with the daemon down, both say so)."""
    if problem is None:
        return escape(status)
    rest = [escape(line) for line in status.split("\n") if line and line != problem]
    return "\n".join([f"<b>{escape(problem)}</b>", *rest])


def _show(procedure, config, status, problem):
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "SmartBrush Fill")
    dialog.get_label(STATUS, status_markup(status, problem), True, False)
    dialog.get_spin_scale("precision", 1.0)  # a slider from exact (0) to box (1)
    dialog.get_spin_scale("guidance", 1.0)
    dialog.fill([STATUS, *FIELDS])
    # The precision slider only matters when Auto precision is off.
    dialog.set_sensitive("precision", True, config, "auto-precision", True)
    help_button = dialog.get_widget_for_response(Gtk.ResponseType.HELP)
    if help_button is not None:  # it would open GIMP's manual, which has no page for us
        help_button.hide()
    accepted = dialog.run()
    dialog.destroy()
    return accepted

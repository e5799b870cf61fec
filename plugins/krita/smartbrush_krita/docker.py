"""The SmartBrush docker and the "SmartBrush fill" action.

The docker reads the document and adds the result on the GUI thread (smartbrush.wire.flow.prepare
and place on a KritaCanvas); the daemon is talked to on a worker thread (flow.send), which reports
back through Qt signals (queued to the GUI thread), so Krita stays responsive while the model runs.
Its widgets are built in panel.py and kept in kritarc by settings.py.
"""

from __future__ import annotations

import threading
import time

from krita import DockWidget, Krita
from PyQt5.QtCore import QObject, QTimer, pyqtSignal

from smartbrush.wire import flow, protocol
from smartbrush.wire.client import DaemonUnavailable, resolve_endpoint
from smartbrush.wire.editing import (
    EditingError,
    FillOptions,
    NoSelection,
    endpoint_problem,
    user_message,
)

from . import daemon_process, krita_adapter, panel, settings
from .krita_adapter import CLIENT_NAME, KritaCanvas

DOCKER_ID = "smartbrush_docker"
WATCH_MS = 500  # how often the message is checked against the document
SELECTION_POLL_MS = 50  # how often a click on Fill looks for the selection it waits for

OPEN_DOCKERS: list[SmartBrushDocker] = []  # open dockers, for the actions (actions.py)


class _Signals(QObject):
    """Emitted on the worker thread, delivered on the GUI thread."""

    progress = pyqtSignal(int, int)  # step, total
    preview = pyqtSignal(object)  # raw image dict
    finished = pyqtSignal(object)  # result dict
    failed = pyqtSignal(str, bool)  # message, daemon is down
    daemon_ready = pyqtSignal(str)  # message


class SmartBrushDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("SmartBrush")
        self._pending = None  # (KritaCanvas, flow.PreparedFill) of the fill being run
        self._last_canvas: KritaCanvas | None = None  # where the last fill was placed
        self._daemon = None  # the daemon process Start daemon ran (Krita's quit stops it too)
        self._cancel = threading.Event()
        self._fill_after_start = False
        self._selection_due: float | None = None  # while a click on Fill waits for the selection
        self._signals = _Signals()
        self._signals.progress.connect(self._on_progress)
        self._signals.preview.connect(self._show_image)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._signals.daemon_ready.connect(self._on_daemon_ready)
        panel.build(self)
        settings.load(self)
        panel.update_precision_label(self)
        self._set_busy(False)
        OPEN_DOCKERS.append(self)
        self._added: list = []  # the last fill's layers, while the message speaks of them
        self._last_fill: tuple[str, dict | None] = ("", None)  # its message and object mask
        self._resolution: int | None = None  # the model's working size, from the last result
        self._note: tuple[int | None, str | None] = (None, None)  # (for resolution, the note)
        self._selection_seen = None  # (document, selection box) the precision label shows
        self._watcher = QTimer(self)
        self._watcher.timeout.connect(self._keep_message_true)
        self._watcher.start(WATCH_MS)
        self.destroyed.connect(
            lambda *_: OPEN_DOCKERS.remove(self) if self in OPEN_DOCKERS else None
        )

    # --- UI ------------------------------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        self.fill_button.setEnabled(not busy)
        self.remove_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setTextVisible(busy)  # an idle bar shows no "0%"
        if not busy:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def _keep_message_true(self) -> None:
        """What the document did since: a selection was made, the fill was undone, the image of a
        running fill was closed (then its job is cancelled); and the selection's auto precision."""
        if self.auto_precision.isChecked():
            panel.show_auto_precision(self)
        if self._daemon is not None and (ended := daemon_process.ended(self._daemon)):
            self._daemon = None  # killed from outside, say: reaped, and said
            self.stop_button.hide()
            self.start_button.show()
            self._say(ended)
        if self._pending is not None:
            if not self._pending[0].is_open() and not self._cancel.is_set():
                self._cancel.set()
                self._say("The image was closed: cancelling its fill…")
            return
        text = self.message.text()
        document = Krita.instance().activeDocument()
        if text.startswith("Nothing is selected") and document and document.selection():
            self._say("")
        elif self._added and self._last_canvas is not None:  # undone, redone, another image
            self._show_last_fill(self._last_canvas.holds(self._added, document))

    def _show_last_fill(self, shown: bool) -> None:
        """The last fill's message, bar, mask and button, while its layers are in the active image."""
        if shown != self.select_button.isEnabled():
            self.select_button.setEnabled(shown)
            if shown or self.message.text() == self._last_fill[0]:  # not another message
                self._say(self._last_fill[0] if shown else "")
            self.progress.setTextVisible(shown)  # "100%", not "0%" (the range is 0..1 when idle)
            self.progress.setValue(1 if shown else 0)
            if shown and self._last_fill[1]:
                self._show_image(self._last_fill[1])
            else:
                self.image.clear()

    def canvasChanged(self, canvas) -> None:  # noqa: N802 (Krita's name)
        pass

    # --- settings (kept in kritarc) ------------------------------------------------------------
    def _options(self, remove: bool = False) -> FillOptions:
        return FillOptions(
            self.prompt.text(),
            remove=remove,
            negative_prompt=self.negative.text(),
            precision="auto" if self.auto_precision.isChecked() else self.precision.value() / 100,
            steps=self.steps.value(),
            seed=None if self.random_seed.isChecked() else self.seed.value(),
            variations=self.variations.value(),
            detail=self.detail.currentData(),
            preview_interval=max(1, self.steps.value() // 10),
        )

    def _endpoint(self) -> str | None:
        return self.endpoint.text().strip() or None

    # --- filling ---------------------------------------------------------------------------------
    def start_remove(self) -> None:
        """Erase what is selected in the active document and continue the background."""
        self.start_fill(remove=True)

    def select_painted_object(self) -> None:
        """Make the object the last fill painted the selection."""
        canvas = self._last_canvas
        if canvas is not None and canvas.is_open() and canvas.select_painted_object():
            self._say("The painted object is now the selection.")
        else:
            self._say("Nothing to select: fill something first (in an image that is still open).")

    def start_fill(self, remove: bool = False, *, retry: bool = False) -> None:
        """Fill the active document's selection with the docker's settings."""
        if self._pending is not None:
            self._say("A fill is already running; wait for it or press Cancel.")
            return
        if self._selection_due is not None and not retry:
            return  # an earlier click waits for the selection and fills then
        due, self._selection_due = self._selection_due, None
        self.start_button.hide()
        settings.save(self)
        if problem := endpoint_problem(self.endpoint.text()):
            self._say(problem)
            return
        try:
            canvas = KritaCanvas(Krita.instance().activeDocument())
            prepared = flow.prepare(canvas, self._options(remove))
        except EditingError as error:
            if isinstance(error, NoSelection) and self._wait_for_selection(remove, due):
                return
            self._say(str(error))
            if not self.prompt.text().strip():
                self.prompt.setFocus()
            return
        except Exception as error:  # never a traceback in the user's face
            self._say(user_message(error))
            return
        self._pending = (canvas, prepared)
        note = flow.upscale_note_for(prepared, self._resolution)  # computed once a fill
        self._note = (self._resolution, note)
        self._cancel = threading.Event()
        krita_adapter.focus_canvas()  # before Fill is disabled: Qt would give the endpoint focus
        self._set_busy(True)
        self.progress.setRange(0, 0)  # busy until the daemon reports steps
        self.image.clear()
        self._say("Sending to the SmartBrush daemon…" + (f" Note: {note}" if note else ""))
        args = (prepared, self._endpoint(), self._cancel)
        threading.Thread(target=self._run, args=args, name="smartbrush-fill", daemon=True).start()

    def _wait_for_selection(self, remove: bool, due: float | None) -> bool:
        """Whether a fill without a selection waits (until `due`) for one: Krita's selection tools
        set theirs a moment after the mouse is released (0.1-0.4 s measured in Krita 5.1.5, more
        under load), and a click on Fill in that moment found none and was lost."""
        if due is None:
            due = time.monotonic() + krita_adapter.selection_wait(Krita.instance().activeDocument())
        if time.monotonic() >= due:
            return False
        self._selection_due = due
        QTimer.singleShot(SELECTION_POLL_MS, lambda: self.start_fill(remove, retry=True))
        return True

    def cancel_fill(self) -> None:
        if self._pending is not None:
            self._cancel.set()
            self._say("Cancelling…")

    def _run(
        self, prepared: flow.PreparedFill, endpoint: str | None, cancel: threading.Event
    ) -> None:
        """Worker thread: talk to the daemon; report only through signals."""

        def on_progress(message: dict) -> bool:
            if cancel.is_set():
                return False
            if message.get("type") == protocol.PROGRESS:
                self._emit("progress", int(message["step"]), int(message["total"]))
                if message.get("preview"):
                    self._emit("preview", message["preview"])
            return True

        try:
            result = flow.send(
                prepared, endpoint=endpoint, on_progress=on_progress, client_name=CLIENT_NAME
            )
        except DaemonUnavailable as error:
            self._emit("failed", user_message(error, resolve_endpoint(endpoint)), True)
        except BaseException as error:  # noqa: BLE001 (reported in the docker instead)
            self._emit("failed", user_message(error, resolve_endpoint(endpoint)), False)
        else:
            self._emit("finished", result)

    def _emit(self, name: str, *args) -> None:
        """Emit a signal from a worker thread; the docker may have been closed in the meantime."""
        try:
            getattr(self._signals, name).emit(*args)
        except RuntimeError:  # its C++ object is gone: nobody to tell
            pass

    def _on_progress(self, step: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(step)
        self._say(f"Step {step} of {total}")

    def _on_finished(self, result: dict) -> None:
        if self._pending is None:  # a late signal after the docker was reset
            return
        canvas, prepared = self._pending
        try:
            if not canvas.is_open():
                self._say("The image was closed while SmartBrush was working; nothing was added.")
                return
            layers = flow.place(canvas, prepared, result)  # (Krita may process events in here)
            self._added = layers
            self._last_canvas = canvas
            self.select_button.setEnabled(True)
            if result.get("masks"):
                self._show_image(result["masks"][0])  # the object shape the model predicted
            names = ", ".join(f"“{layer.name()}”" for layer in layers[:2])
            more = f" and {len(layers) - 2} more" if len(layers) > 2 else ""
            how = ""
            if prepared.request["precision"] == protocol.PRECISION_AUTO:
                how = f" Auto precision: {result['precision']:.2f}, from the selection's shape."
            self._resolution = result.get("resolution")  # every result says it: no extra hello
            resolution, note = self._note
            if self._resolution != resolution:  # the first fill, or the daemon serves another model
                note = flow.upscale_note_for(prepared, self._resolution)
            said = f"Added {names}{more}.{how}" + (f" Note: {note}" if note else "")
            self._last_fill = (said, (result.get("masks") or [None])[0])
            self._say(said)
            self.progress.setRange(0, 1)
            self.progress.setValue(1)  # 100 %
        except Exception as error:
            self._say(user_message(error))
            self.progress.setValue(0)  # no full bar beside "nothing was added"
        finally:
            # Only now: a new fill may start once this one's layers are in place.
            self._pending = None
            self.fill_button.setEnabled(True)
            self.remove_button.setEnabled(True)
            self.cancel_button.setEnabled(False)

    def _on_failed(self, message: str, daemon_down: bool) -> None:
        if self._pending is not None and not self._pending[0].is_open():
            message = "The image was closed; its fill was cancelled."
        self._pending = None
        self._set_busy(False)
        self.image.clear()  # a cancelled or failed fill leaves no noise preview behind
        command = self.start_command.text().strip()
        if daemon_down and command:
            message += f" Press Start daemon to run `{command}`."
            self.start_button.show()
        self._say(message)

    def _show_image(self, image: dict) -> None:
        panel.show_image(self.image, image)

    # --- starting the daemon -----------------------------------------------------------------------
    def start_daemon(self) -> None:
        """Run the configured start command, wait for the daemon's hello, then fill."""
        self.start_button.hide()
        settings.save(self)
        command = self.start_command.text().strip()
        try:
            process = daemon_process.start(command)
            self._daemon = process
        except (OSError, ValueError) as error:
            self._say(
                f"Could not run `{command}`: {error}. Set the full command under Daemon > Start with."
            )
            self.start_button.show()
            return
        self._fill_after_start = True
        self.progress.setRange(0, 0)
        self.fill_button.setEnabled(False)
        self._say(f"Starting the daemon (`{command}`); waiting for it to answer…")
        threading.Thread(
            target=self._wait_for_daemon, args=(process, self._endpoint()), daemon=True
        ).start()

    def stop_daemon(self) -> None:
        """Stop the daemon this docker started (SIGTERM: it cancels its jobs and exits at once)."""
        process, self._daemon = self._daemon, None
        self.stop_button.hide()
        if process is not None and daemon_process.stop(process):
            self._say("Stopped the daemon that SmartBrush started.")

    def _wait_for_daemon(self, process, endpoint: str | None) -> None:
        ready, message = daemon_process.wait_until_ready(process, endpoint, CLIENT_NAME)
        if ready:
            self._emit("daemon_ready", message)
        else:
            self._emit("failed", message, True)

    def _on_daemon_ready(self, text: str) -> None:
        self._set_busy(False)
        self._say(text)
        self.stop_button.setVisible(self._daemon is not None)
        if self._fill_after_start:
            self._fill_after_start = False
            self.start_fill()

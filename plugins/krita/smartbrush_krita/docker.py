"""The SmartBrush docker and the "SmartBrush fill" action.

The docker reads the document and adds the result on the GUI thread (krita_adapter.prepare_fill /
add_result_layers); the daemon is talked to on a worker thread, which reports back through Qt signals
(queued to the GUI thread), so Krita stays responsive while the model runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import threading
import time

from krita import DockWidget, Extension, Krita
from PyQt5.QtCore import QObject, Qt, pyqtSignal
from PyQt5.QtGui import QImage, QPixmap
from PyQt5.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from smartbrush.wire import protocol
from smartbrush.wire.client import Client, DaemonUnavailable, resolve_endpoint
from smartbrush.wire.editing import EditingError, FillOptions, user_message

from .krita_adapter import FILL_TIMEOUT, add_result_layers, prepare_fill, run_fill

DOCKER_ID = "smartbrush_docker"
ACTION_ID = "smartbrush_fill"
SETTINGS = "SmartBrush"  # group in kritarc
DEFAULT_START_COMMAND = "smartbrush serve"
START_WAIT_SECONDS = 300.0  # loading a big model on a slow disk takes a while
PREVIEW_SIDE = 192

_dockers: list[SmartBrushDocker] = []


class SmartBrushExtension(Extension):
    """Adds "SmartBrush fill" (Tools > Scripts; shortcut from smartbrush_krita.action)."""

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # noqa: N802 (Krita's name)
        action = window.createAction(ACTION_ID, "SmartBrush fill", "tools/scripts")
        action.triggered.connect(fill_from_active_window)


def fill_from_active_window() -> None:
    """The action: run the active window's docker with its current settings."""
    window = Krita.instance().activeWindow()
    qwindow = window.qwindow() if window is not None else None
    for docker in _dockers:
        if docker.window() is qwindow or qwindow is None:
            docker.setVisible(True)
            docker.raise_()
            docker.start_fill()
            return


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
        self._pending = None  # the PendingFill being run
        self._cancel = threading.Event()
        self._fill_after_start = False
        self._signals = _Signals()
        self._signals.progress.connect(self._on_progress)
        self._signals.preview.connect(self._show_image)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._signals.daemon_ready.connect(self._on_daemon_ready)
        self._build_ui()
        self._load_settings()
        self._set_busy(False)
        _dockers.append(self)
        self.destroyed.connect(lambda *_: _dockers.remove(self) if self in _dockers else None)

    # --- UI ------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        root = QWidget(self)
        layout = QVBoxLayout(root)
        form = QFormLayout()
        self.prompt = QLineEdit(objectName="smartbrush_prompt")
        self.prompt.setPlaceholderText("what to paint, e.g. a red ball")
        self.prompt.returnPressed.connect(self.start_fill)
        self.negative = QLineEdit(objectName="smartbrush_negative_prompt")
        self.negative.setPlaceholderText("what to avoid (optional)")
        form.addRow("Prompt", self.prompt)
        form.addRow("Negative", self.negative)

        self.auto_precision = QCheckBox("Auto", objectName="smartbrush_precision_auto")
        self.auto_precision.setToolTip(
            "Rectangle selection: anywhere in the box; other shapes: this shape (looser when "
            "feathered)"
        )
        self.precision = QSlider(Qt.Horizontal, objectName="smartbrush_precision")
        self.precision.setRange(0, 100)
        self.precision.setToolTip("0 = exactly the selection's shape ... 1 = anywhere in its box")
        self.precision_value = QLabel()
        self.precision.valueChanged.connect(self._update_precision_label)
        self.auto_precision.toggled.connect(self._update_precision_label)
        row = QHBoxLayout()
        row.addWidget(self.auto_precision)
        row.addWidget(self.precision_value, 1)
        form.addRow("Precision", row)
        row = QHBoxLayout()
        row.addWidget(QLabel("shape"))
        row.addWidget(self.precision, 1)
        row.addWidget(QLabel("box"))
        form.addRow("", row)

        self.steps = QSpinBox(objectName="smartbrush_steps")
        self.steps.setRange(1, 200)
        form.addRow("Steps", self.steps)
        self.random_seed = QCheckBox("Random", objectName="smartbrush_random_seed")
        self.seed = QSpinBox(objectName="smartbrush_seed")
        self.seed.setRange(0, 2**31 - 1)
        self.random_seed.toggled.connect(lambda random: self.seed.setEnabled(not random))
        row = QHBoxLayout()
        row.addWidget(self.random_seed)
        row.addWidget(self.seed, 1)
        form.addRow("Seed", row)
        self.variations = QSpinBox(objectName="smartbrush_variations")
        self.variations.setRange(1, 8)
        form.addRow("Variations", self.variations)
        layout.addLayout(form)

        buttons = QHBoxLayout()
        self.fill_button = QPushButton("Fill", objectName="smartbrush_fill_button")
        self.fill_button.setToolTip("Fill the selection (Ctrl+Alt+B); the result is a new layer")
        self.fill_button.clicked.connect(self.start_fill)
        self.cancel_button = QPushButton("Cancel", objectName="smartbrush_cancel_button")
        self.cancel_button.clicked.connect(self.cancel_fill)
        buttons.addWidget(self.fill_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar(objectName="smartbrush_progress")
        layout.addWidget(self.progress)
        self.message = QLabel(objectName="smartbrush_message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.message)
        self.start_button = QPushButton("Start daemon", objectName="smartbrush_start_daemon")
        self.start_button.clicked.connect(self.start_daemon)
        self.start_button.hide()
        layout.addWidget(self.start_button)
        self.image = QLabel(objectName="smartbrush_preview")
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setMinimumHeight(PREVIEW_SIDE // 2)
        layout.addWidget(self.image)

        daemon = QGroupBox("Daemon")
        daemon_form = QFormLayout(daemon)
        self.endpoint = QLineEdit(objectName="smartbrush_endpoint")
        self.endpoint.setPlaceholderText(resolve_endpoint(None))
        self.start_command = QLineEdit(objectName="smartbrush_start_command")
        daemon_form.addRow("Endpoint", self.endpoint)
        daemon_form.addRow("Start with", self.start_command)
        layout.addWidget(daemon)
        layout.addStretch(1)
        self.setWidget(root)

    def _update_precision_label(self) -> None:
        auto = self.auto_precision.isChecked()
        self.precision.setEnabled(not auto)
        self.precision_value.setText(
            "from the selection" if auto else f"{self.precision.value() / 100:.2f}"
        )

    def _set_busy(self, busy: bool) -> None:
        self.fill_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def canvasChanged(self, canvas) -> None:  # noqa: N802 (Krita's name)
        pass

    # --- settings (kept in kritarc) ------------------------------------------------------------
    def _load_settings(self) -> None:
        app = Krita.instance()

        def read(key: str, default: str) -> str:
            return app.readSetting(SETTINGS, key, default)

        self.negative.setText(read("negative_prompt", ""))
        self.auto_precision.setChecked(read("precision_auto", "true") == "true")
        self.precision.setValue(_int(read("precision", "0"), 0))
        self.steps.setValue(_int(read("steps", "20"), 20))
        self.random_seed.setChecked(read("random_seed", "true") == "true")
        self.seed.setValue(_int(read("seed", "0"), 0))
        self.seed.setEnabled(not self.random_seed.isChecked())
        self.variations.setValue(_int(read("variations", "1"), 1))
        self.endpoint.setText(read("endpoint", ""))
        self.start_command.setText(read("start_command", DEFAULT_START_COMMAND))
        self._update_precision_label()

    def _save_settings(self) -> None:
        app = Krita.instance()
        values = {
            "negative_prompt": self.negative.text(),
            "precision_auto": "true" if self.auto_precision.isChecked() else "false",
            "precision": str(self.precision.value()),
            "steps": str(self.steps.value()),
            "random_seed": "true" if self.random_seed.isChecked() else "false",
            "seed": str(self.seed.value()),
            "variations": str(self.variations.value()),
            "endpoint": self.endpoint.text().strip(),
            "start_command": self.start_command.text().strip(),
        }
        for key, value in values.items():
            app.writeSetting(SETTINGS, key, value)

    def _options(self) -> FillOptions:
        return FillOptions(
            self.prompt.text(),
            negative_prompt=self.negative.text(),
            precision="auto" if self.auto_precision.isChecked() else self.precision.value() / 100,
            steps=self.steps.value(),
            seed=None if self.random_seed.isChecked() else self.seed.value(),
            variations=self.variations.value(),
            preview_interval=max(1, self.steps.value() // 10),
        )

    def _endpoint(self) -> str | None:
        return self.endpoint.text().strip() or None

    # --- filling ---------------------------------------------------------------------------------
    def start_fill(self) -> None:
        """Fill the active document's selection with the docker's settings."""
        if self._pending is not None:
            self._say("A fill is already running; wait for it or press Cancel.")
            return
        self.start_button.hide()
        self._save_settings()
        try:
            pending = prepare_fill(Krita.instance().activeDocument(), self._options())
        except EditingError as error:
            self._say(str(error))
            if not self.prompt.text().strip():
                self.prompt.setFocus()
            return
        except Exception as error:  # never a traceback in the user's face
            self._say(user_message(error))
            return
        self._pending = pending
        self._cancel = threading.Event()
        self._set_busy(True)
        self.progress.setRange(0, 0)  # busy until the daemon reports steps
        self.image.clear()
        self._say("Sending to the SmartBrush daemon…")
        args = (pending.request, self._endpoint(), self._cancel)
        threading.Thread(target=self._run, args=args, name="smartbrush-fill", daemon=True).start()

    def cancel_fill(self) -> None:
        if self._pending is not None:
            self._cancel.set()
            self._say("Cancelling…")

    def _run(self, request: dict, endpoint: str | None, cancel: threading.Event) -> None:
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
            with Client(endpoint, timeout=FILL_TIMEOUT, client_name="smartbrush_krita") as client:
                result = run_fill(client, request, on_progress)
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
        pending = self._pending
        try:
            if not _is_open(pending.document):
                self._say("The image was closed while SmartBrush was working; nothing was added.")
                return
            layers = add_result_layers(pending, result)  # (Krita may process events in here)
            if result.get("masks"):
                self._show_image(result["masks"][0])  # the object shape the model predicted
            names = ", ".join(f"“{layer.name()}”" for layer in layers[:2])
            more = f" and {len(layers) - 2} more" if len(layers) > 2 else ""
            self._say(f"Added {names}{more}.")
            self.progress.setRange(0, 1)
            self.progress.setValue(1)  # 100 %
        except Exception as error:
            self._say(user_message(error))
        finally:
            # Only now: a new fill may start once this one's layers are in place.
            self._pending = None
            self.fill_button.setEnabled(True)
            self.cancel_button.setEnabled(False)

    def _on_failed(self, message: str, daemon_down: bool) -> None:
        self._pending = None
        self._set_busy(False)
        command = self.start_command.text().strip()
        if daemon_down and command:
            message += f" Press Start daemon to run `{command}`."
            self.start_button.show()
        self._say(message)

    def _show_image(self, image: dict) -> None:
        formats = {"RGB": (QImage.Format_RGB888, 3), "L": (QImage.Format_Grayscale8, 1)}
        if image.get("mode") not in formats:
            return
        fmt, channels = formats[image["mode"]]
        width, height = image["width"], image["height"]
        qimage = QImage(image["data"], width, height, width * channels, fmt).copy()
        pixmap = QPixmap.fromImage(qimage).scaled(
            PREVIEW_SIDE, PREVIEW_SIDE, Qt.KeepAspectRatio, Qt.SmoothTransformation
        )
        self.image.setPixmap(pixmap)

    # --- starting the daemon -----------------------------------------------------------------------
    def start_daemon(self) -> None:
        """Run the configured start command, wait for the daemon's hello, then fill."""
        self.start_button.hide()
        self._save_settings()
        command = self.start_command.text().strip()
        log = os.path.join(tempfile.gettempdir(), "smartbrush-daemon-from-krita.log")
        try:
            with open(log, "ab") as output:
                process = subprocess.Popen(
                    shlex.split(command),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    start_new_session=True,  # keeps running when Krita quits
                )
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
        args = (process, self._endpoint(), log)
        threading.Thread(target=self._wait_for_daemon, args=args, daemon=True).start()

    def _wait_for_daemon(self, process, endpoint: str | None, log: str) -> None:
        deadline = time.monotonic() + START_WAIT_SECONDS
        with Client(endpoint, timeout=2.0, client_name="smartbrush_krita") as client:
            while time.monotonic() < deadline:
                try:
                    info = client.hello()
                except DaemonUnavailable:
                    if process.poll() is not None:
                        self._emit(
                            "failed",
                            f"The daemon command exited with code {process.returncode}: "
                            f"{_last_line(log)} (log: {log})",
                            True,
                        )
                        return
                    continue
                except Exception as error:  # noqa: BLE001
                    self._emit("failed", user_message(error), False)
                    return
                model = info.get("model", "?")
                self._emit("daemon_ready", f"The daemon is ready (model {model}).")
                return
        self._emit(
            "failed",
            f"The daemon did not answer within {START_WAIT_SECONDS:g} s (log: {log}).",
            True,
        )

    def _on_daemon_ready(self, text: str) -> None:
        self._set_busy(False)
        self._say(text)
        if self._fill_after_start:
            self._fill_after_start = False
            self.start_fill()


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _is_open(document) -> bool:
    try:
        return any(open_doc == document for open_doc in Krita.instance().documents())
    except Exception:  # a deleted wrapper
        return False


def _last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            lines = [line.strip() for line in log if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"

"""Test-only Krita plugin: drives the installed SmartBrush plugin the way a user does.

Inert unless SMARTBRUSH_KRITA_DRIVER_RESULT names a result file. Then, once Krita's window is up, it
opens a document with known layers, types into the SmartBrush docker and triggers the
"SmartBrush fill" action (or clicks the docker's buttons) in these phases:

  no_selection  the action without a selection
  single        a rectangle selection, then undo
  variations    the same with 2 variations, then undo
  cancel        200 steps, Cancel clicked once the progress shows
  start_daemon  (if SMARTBRUSH_KRITA_DRIVER_START is set) the docker pointed at a dead endpoint,
                Start daemon clicked, the fill retried once the started daemon answers

and writes what it saw to the result file (JSON) for tests/test_krita.py, then quits. With
SMARTBRUSH_KRITA_SCREENSHOT set it also saves the screen once the first fill is done.
"""

import base64
import hashlib
import json
import os
import time
import traceback

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import (
    QApplication,
    QCheckBox,
    QDockWidget,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

RESULT = os.environ.get("SMARTBRUSH_KRITA_DRIVER_RESULT")
SCREENSHOT = os.environ.get("SMARTBRUSH_KRITA_SCREENSHOT")
START_COMMAND = os.environ.get("SMARTBRUSH_KRITA_DRIVER_START")  # runs a daemon on ...
START_ENDPOINT = os.environ.get("SMARTBRUSH_KRITA_DRIVER_START_ENDPOINT")  # ... this endpoint
W, H = 160, 120
SELECTION = (40, 30, 50, 40)
WAIT_SECONDS = 200


def b64(data) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def snapshot(doc) -> list:
    """[depth, name, type, sha256 of pixels] of every node, bottom to top, depth first."""
    out = []

    def walk(node, depth):
        for child in node.childNodes():
            pixels = hashlib.sha256(bytes(child.pixelData(0, 0, W, H))).hexdigest()
            out.append([depth, child.name(), child.type(), pixels])
            walk(child, depth + 1)

    walk(doc.rootNode(), 0)
    return out


def guarded(method):
    """Any exception ends the run with its traceback in the result file."""

    def run(self, *args):
        try:
            method(self, *args)
        except Exception:
            self.finish(traceback.format_exc())

    return run


class Driver:
    def __init__(self) -> None:
        self.result = {}
        self.app = Krita.instance()

    # --- the docker's widgets, found by object name ------------------------------------------
    def widget(self, kind, name):
        return self.app.activeWindow().qwindow().findChild(kind, name)

    def message(self) -> str:
        return self.widget(QLabel, "smartbrush_message").text()

    def idle(self) -> bool:
        return self.widget(QPushButton, "smartbrush_fill_button").isEnabled()

    def new_nodes(self) -> list:
        return [n for n in self.doc.rootNode().childNodes() if n.name().startswith("SmartBrush")]

    def wait(self, condition, then, label) -> None:
        """Call then() once condition() holds (checked every 200 ms); give up after WAIT_SECONDS."""
        started = time.monotonic()

        @guarded
        def check(self):
            if condition():
                then()
            elif time.monotonic() - started > WAIT_SECONDS:
                self.finish(f"timed out waiting for {label}; docker says: {self.message()}")
            else:
                QTimer.singleShot(200, lambda: check(self))

        check(self)

    # --- setup ---------------------------------------------------------------------------------
    @guarded
    def start(self) -> None:
        app = self.app
        doc = app.createDocument(W, H, "smartbrush-driver", "RGBA", "U8", "", 72.0)
        app.activeWindow().addView(doc)
        if SCREENSHOT:  # room for the docker in the picture (no window manager to maximise)
            app.activeWindow().qwindow().setGeometry(0, 0, 1600, 1000)
            for dock in app.dockers():
                dock.setVisible(dock.windowTitle() in ("Layers", "SmartBrush"))
        self.doc = doc
        root = doc.rootNode()
        background = root.childNodes()[0]
        ramp = bytearray(W * H * 4)
        for y in range(H):
            for x in range(W):
                ramp[(y * W + x) * 4 : (y * W + x) * 4 + 4] = bytes([x, y, 255 - x, 255])
        background.setPixelData(bytes(ramp), 0, 0, W, H)
        self.middle = doc.createNode("Middle", "paintlayer")
        self.middle.setPixelData(bytes([0, 200, 0, 255]) * (30 * 20), 10, 10, 30, 20)
        root.addChildNode(self.middle, background)
        root.addChildNode(doc.createNode("Top", "paintlayer"), self.middle)
        doc.refreshProjection()
        # the new view picks its own active layer first; choose "Middle" once it has settled
        QTimer.singleShot(500, self.activate)

    @guarded
    def activate(self) -> None:
        self.doc.setActiveNode(self.middle)
        QTimer.singleShot(500, self.no_selection)

    # --- phases ----------------------------------------------------------------------------------
    @guarded
    def no_selection(self) -> None:
        active = self.doc.activeNode()
        self.result["active_before"] = active.name() if active is not None else None
        self.action = self.app.action("smartbrush_fill")
        self.result["action"] = {
            "text": self.action.text(),
            "shortcut": self.action.shortcut().toString(),
        }
        remove = self.app.action("smartbrush_remove")
        self.result["remove_action"] = remove.text() if remove is not None else None
        dock = self.widget(QLineEdit, "smartbrush_prompt")
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        self.result["docker_found"] = dock is not None
        # the docker keeps its settings in kritarc: set every one this test relies on
        self.widget(QLineEdit, "smartbrush_prompt").setText("a red ball")
        self.widget(QSpinBox, "smartbrush_steps").setValue(3)
        self.widget(QLineEdit, "smartbrush_endpoint").setText("")  # $SMARTBRUSH_ENDPOINT
        self.widget(QCheckBox, "smartbrush_random_seed").setChecked(False)  # reproducible
        self.widget(QSpinBox, "smartbrush_seed").setValue(7)
        self.widget(QCheckBox, "smartbrush_precision_auto").setChecked(True)

        before = snapshot(self.doc)
        self.action.trigger()
        self.result["no_selection"] = {
            "message": self.message(),
            "unchanged": snapshot(self.doc) == before,
        }
        selection = Selection()
        selection.select(*SELECTION, 255)
        self.doc.setSelection(selection)
        self.doc.waitForDone()
        self.result["selection"] = b64(self.doc.selection().pixelData(0, 0, W, H))
        QTimer.singleShot(1200, self.selected)

    @guarded
    def selected(self) -> None:
        self.result["no_selection"]["message_after_selecting"] = self.message()
        self.result["precision_shown"] = self.widget(QLabel, "smartbrush_precision_value").text()
        self.fill("single", variations=1, then=self.variations)

    @guarded
    def variations(self) -> None:
        self.fill("variations", variations=2, then=self.cancel)

    def fill(self, name, variations, then) -> None:
        """Trigger the action, wait for the result, record it, undo, record again, then()."""
        self.case = self.result[name] = {"before": snapshot(self.doc)}
        self.widget(QSpinBox, "smartbrush_variations").setValue(variations)
        if name == "single":  # as a mouse click does: the Fill button has the keyboard focus
            button = self.widget(QPushButton, "smartbrush_fill_button")
            QApplication.setActiveWindow(self.app.activeWindow().qwindow())  # no window manager
            button.setFocus()
            before = QApplication.focusWidget()
            self.case["focus_before_fill"] = before.objectName() if before else None
            button.click()
            focus = QApplication.focusWidget()
            self.case["focus_after_fill"] = type(focus).__name__ if focus else None
            self.case["focus_in_a_text_field"] = isinstance(focus, QLineEdit)
        else:
            self.action.trigger()
        self.wait(self.idle, lambda: self.filled(then), name)

    @guarded
    def filled(self, then) -> None:
        if not self.new_nodes():
            return self.finish(f"no result layer; docker says: {self.message()}")
        self.record(self.case, self.new_nodes()[0])
        if SCREENSHOT and "screenshot" not in self.result:
            QApplication.primaryScreen().grabWindow(0).save(SCREENSHOT)
            self.result["screenshot"] = SCREENSHOT
        self.app.action("edit_undo").trigger()
        QTimer.singleShot(1500, lambda: self.undone(then))

    @guarded
    def undone(self, then) -> None:
        self.doc.waitForDone()
        self.case["after_undo"] = snapshot(self.doc)
        self.case["message_after_undo"] = self.message()
        self.case["select_enabled_after_undo"] = self.widget(
            QPushButton, "smartbrush_select_object"
        ).isEnabled()
        then()

    def record(self, case, node) -> None:
        self.doc.waitForDone()
        siblings = [n.name() for n in node.parentNode().childNodes()]
        layers = node.childNodes() if node.type() == "grouplayer" else [node]
        case.update(
            node={"name": node.name(), "type": node.type(), "index": siblings.index(node.name())},
            siblings=siblings,
            layers=[
                {"name": n.name(), "visible": n.visible(), "pixels": b64(n.pixelData(0, 0, W, H))}
                for n in reversed(layers)  # top first
            ],
            after=snapshot(self.doc),
            message=self.message(),
        )

    @guarded
    def cancel(self) -> None:
        self.case = self.result["cancel"] = {"before": snapshot(self.doc)}
        self.widget(QSpinBox, "smartbrush_variations").setValue(1)
        self.widget(QSpinBox, "smartbrush_steps").setValue(200)
        self.action.trigger()
        self.wait(lambda: self.message().startswith("Step "), self.click_cancel, "progress")

    @guarded
    def click_cancel(self) -> None:
        self.case["message_while_running"] = self.message()
        self.widget(QPushButton, "smartbrush_cancel_button").click()
        self.wait(self.idle, self.cancelled, "the cancelled fill to end")

    @guarded
    def cancelled(self) -> None:
        self.case["message"] = self.message()
        self.case["after"] = snapshot(self.doc)
        self.widget(QSpinBox, "smartbrush_steps").setValue(3)
        if START_COMMAND:
            QTimer.singleShot(0, self.start_daemon)
        else:
            self.finish()

    @guarded
    def start_daemon(self) -> None:
        self.case = self.result["start_daemon"] = {"before": snapshot(self.doc)}
        self.widget(QLineEdit, "smartbrush_endpoint").setText(START_ENDPOINT)
        self.widget(QLineEdit, "smartbrush_start_command").setText(START_COMMAND)
        self.widget(QCheckBox, "smartbrush_random_seed").setChecked(True)  # the daemon picks
        self.action.trigger()
        self.wait(self.idle, self.click_start, "the daemon-down message")

    @guarded
    def click_start(self) -> None:
        button = self.widget(QPushButton, "smartbrush_start_daemon")
        self.case["message_down"] = self.message()
        self.case["start_button_visible"] = button.isVisible()
        button.click()
        self.case["message_starting"] = self.message()
        self.wait(lambda: self.idle() and self.new_nodes(), self.started_and_filled, "start")

    @guarded
    def started_and_filled(self) -> None:
        self.record(self.case, self.new_nodes()[0])
        stop = self.widget(QPushButton, "smartbrush_stop_daemon")
        self.case["stop_button_visible"] = stop.isVisible()
        stop.click()
        self.case["message_stopped"] = self.message()
        self.finish()

    def finish(self, problem=None) -> None:
        self.result["problem"] = problem
        with open(RESULT, "w") as out:
            json.dump(self.result, out)
        os._exit(0)  # Krita would ask whether to save the document


class DriverExtension(Extension):
    def setup(self) -> None:
        if not RESULT:
            return
        self.driver = Driver()
        notifier = Krita.instance().notifier()
        notifier.windowCreated.connect(lambda: QTimer.singleShot(1500, self.driver.start))

    def createActions(self, window) -> None:  # noqa: N802
        pass


Krita.instance().addExtension(DriverExtension(Krita.instance()))

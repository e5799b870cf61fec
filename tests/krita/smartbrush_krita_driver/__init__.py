"""Test-only Krita plugin: drives the installed SmartBrush plugin like a user would.

Inert unless SMARTBRUSH_KRITA_DRIVER_RESULT names a result file. Then, once Krita's window is up:
opens a document with known layers, triggers "SmartBrush fill" with no selection, then with a
rectangle selection and the prompt typed into the SmartBrush docker, waits for the result layer,
undoes, writes what it saw to the result file (JSON) and quits. With SMARTBRUSH_KRITA_SCREENSHOT
set it also saves a picture of the screen while the docker shows the finished fill.
"""

import base64
import hashlib
import json
import os
import time
import traceback

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication, QDockWidget, QLabel, QLineEdit, QPushButton, QSpinBox

RESULT = os.environ.get("SMARTBRUSH_KRITA_DRIVER_RESULT")
SCREENSHOT = os.environ.get("SMARTBRUSH_KRITA_SCREENSHOT")
W, H = 160, 120
SELECTION = (40, 30, 50, 40)
FILL_WAIT_SECONDS = 120


def b64(data) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def snapshot(doc) -> list:
    out = []

    def walk(node, depth):
        for child in node.childNodes():
            pixels = hashlib.sha256(bytes(child.pixelData(0, 0, W, H))).hexdigest()
            out.append([depth, child.name(), child.type(), pixels])
            walk(child, depth + 1)

    walk(doc.rootNode(), 0)
    return out


class Driver:
    def __init__(self) -> None:
        self.result = {"steps": []}
        self.app = Krita.instance()

    def widget(self, kind, name):
        return self.app.activeWindow().qwindow().findChild(kind, name)

    def message(self) -> str:
        label = self.widget(QLabel, "smartbrush_message")
        return label.text() if label is not None else "<no SmartBrush docker>"

    def start(self) -> None:
        try:
            self.result["steps"].append("window")
            app = self.app
            doc = app.createDocument(W, H, "smartbrush-driver", "RGBA", "U8", "", 72.0)
            app.activeWindow().addView(doc)
            self.doc = doc
            root = doc.rootNode()
            background = root.childNodes()[0]
            ramp = bytearray(W * H * 4)
            for y in range(H):
                for x in range(W):
                    ramp[(y * W + x) * 4 : (y * W + x) * 4 + 4] = bytes([x, y, 255 - x, 255])
            background.setPixelData(bytes(ramp), 0, 0, W, H)
            middle = doc.createNode("Middle", "paintlayer")
            middle.setPixelData(bytes([0, 200, 0, 255]) * (30 * 20), 10, 10, 30, 20)
            root.addChildNode(middle, background)
            top = doc.createNode("Top", "paintlayer")
            root.addChildNode(top, middle)
            doc.refreshProjection()
            doc.waitForDone()
            self.middle = middle
            QTimer.singleShot(500, self.activate)
        except Exception:
            self.finish(traceback.format_exc())

    def activate(self) -> None:
        """Make "Middle" the active layer once the new view has settled (it picks its own first)."""
        self.doc.setActiveNode(self.middle)
        QTimer.singleShot(500, self.run_action)

    def run_action(self) -> None:
        try:
            app, doc = self.app, self.doc
            active = doc.activeNode()
            self.result["active_before"] = active.name() if active is not None else None
            self.action = action = app.action("smartbrush_fill")
            self.result["action"] = {
                "text": action.text(),
                "shortcut": action.shortcut().toString(),
            }
            dock = self.widget(QLineEdit, "smartbrush_prompt")
            while dock is not None and not isinstance(dock, QDockWidget):
                dock = dock.parentWidget()
            self.result["docker_found"] = dock is not None
            self.widget(QLineEdit, "smartbrush_prompt").setText("a red ball")
            self.widget(QSpinBox, "smartbrush_steps").setValue(3)

            # 1. no selection: a message in the docker, nothing changed
            before = snapshot(doc)
            action.trigger()
            self.result["no_selection"] = {
                "message": self.message(),
                "unchanged": snapshot(doc) == before,
            }

            # 2. a rectangle selection: the action fills it; then undo; then 2 variations and undo
            selection = Selection()
            selection.select(*SELECTION, 255)
            doc.setSelection(selection)
            doc.waitForDone()
            self.result["selection"] = b64(doc.selection().pixelData(0, 0, W, H))
            self.fill("single", 1, then=lambda: self.fill("variations", 2, then=self.finish))
        except Exception:
            self.finish(traceback.format_exc())

    def fill(self, name, variations, then) -> None:
        """Trigger the action, wait for the result, record it, undo, record, then `then()`."""
        self.case = self.result[name] = {"before": snapshot(self.doc)}
        self.then = then
        self.widget(QSpinBox, "smartbrush_variations").setValue(variations)
        self.started = time.monotonic()
        self.action.trigger()
        self.case["message_after_trigger"] = self.message()
        self.poll()

    def poll(self) -> None:
        try:
            done = self.widget(QPushButton, "smartbrush_fill_button").isEnabled()
            new = [n for n in self.doc.rootNode().childNodes() if n.name().startswith("SmartBrush")]
            if done and new:
                self.fill_done(new[0])
            elif done and time.monotonic() - self.started > 2:  # finished without a layer
                self.finish(f"no result layer; docker says: {self.message()}")
            elif time.monotonic() - self.started > FILL_WAIT_SECONDS:
                self.finish(f"timed out; docker says: {self.message()}")
            else:
                QTimer.singleShot(200, self.poll)
        except Exception:
            self.finish(traceback.format_exc())

    def fill_done(self, node) -> None:
        self.doc.waitForDone()
        siblings = [n.name() for n in node.parentNode().childNodes()]
        layers = node.childNodes() if node.type() == "grouplayer" else [node]
        self.case.update(
            node={"name": node.name(), "type": node.type(), "index": siblings.index(node.name())},
            siblings=siblings,
            layers=[
                {"name": n.name(), "visible": n.visible(), "pixels": b64(n.pixelData(0, 0, W, H))}
                for n in reversed(layers)  # top first
            ],
            after=snapshot(self.doc),
            message=self.message(),
            seconds=time.monotonic() - self.started,
        )
        if SCREENSHOT and "screenshot" not in self.result:
            QApplication.primaryScreen().grabWindow(0).save(SCREENSHOT)
            self.result["screenshot"] = SCREENSHOT
        self.app.action("edit_undo").trigger()
        QTimer.singleShot(1500, self.after_undo)

    def after_undo(self) -> None:
        try:
            self.doc.waitForDone()
            self.case["after_undo"] = snapshot(self.doc)
            self.then()
        except Exception:
            self.finish(traceback.format_exc())

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

"""Test-only Krita plugin: drives the installed SmartBrush plugin the way a user does.

Inert unless SMARTBRUSH_KRITA_DRIVER_RESULT names a result file. Then, once Krita's window is up, it
opens a document with known layers, types into the SmartBrush docker and triggers the
"SmartBrush fill" action (or clicks the docker's buttons) in these phases:

  layout         the default dock column (1600x1000): the SmartBrush column's width with the
                 long auto precision text, the Layers docker's rows with More settings opened
                 and closed (clicked with the mouse)
  no_selection   the action without a selection
  single         a rectangle selection, Fill clicked with the mouse (xdotool), then the keys
                 "b" and Ctrl+Z typed (xdotool): they must reach the canvas, not a text field
  variations     the same with 2 variations, then undo
  select_object  Select painted object clicked (xdotool): the canvas with it and without any
                 selection is saved next to the result file (the marching ants are the difference)
  quick_click    a rectangle dragged on the canvas with the rectangle tool and Fill clicked at once
                 after the mouse is released (xdotool): the fill must not be lost
  cancel         200 steps, Cancel clicked once the progress shows
  start_daemon   (if SMARTBRUSH_KRITA_DRIVER_START is set) the docker pointed at a dead endpoint,
                 Start daemon clicked, the fill retried once the started daemon answers
  stop_mid_fill  a 200-step fill, Stop daemon clicked once a preview shows: the fill fails
  restart        the daemon started again from the docker, one fill
  close_image    a 200-step fill, the image closed while it runs: its job is cancelled
  quit           Krita quit through its own File > Quit: the started daemon must stop with it

and writes what it saw to the result file (JSON) for tests/test_krita.py, then quits Krita (its own
quit after close_image, else os._exit). With SMARTBRUSH_KRITA_SCREENSHOT set it also saves the
screen once the first fill is done.
"""

import base64
import hashlib
import json
import os
import signal
import subprocess
import time
import traceback

from krita import Extension, Krita, Selection
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QLabel,
    QLineEdit,
    QMdiArea,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
)

LAYOUT_DOCKS = ("Advanced Color Selector", "Layers", "Brush Presets", "SmartBrush")  # Krita's own
COLUMN_WIDTH = 262  # the dock column's width in Krita 5.1.5's default layout at 1600x1000

RESULT = os.environ.get("SMARTBRUSH_KRITA_DRIVER_RESULT")
SCREENSHOT = os.environ.get("SMARTBRUSH_KRITA_SCREENSHOT")
START_COMMAND = os.environ.get("SMARTBRUSH_KRITA_DRIVER_START")  # runs a daemon on ...
START_ENDPOINT = os.environ.get("SMARTBRUSH_KRITA_DRIVER_START_ENDPOINT")  # ... this endpoint
PID_FILE = os.environ.get("SMARTBRUSH_KRITA_DRIVER_PID_FILE")  # ... and appends its pid here
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


def xdotool(*args: str) -> None:
    """Real X input events (the XTEST extension), as a user's mouse and keyboard make them."""
    subprocess.run(["xdotool", *args], check=True, timeout=20)


def click(widget) -> None:
    """A left mouse click in the middle of `widget`, through the X server."""
    centre = widget.mapToGlobal(widget.rect().center())
    xdotool("mousemove", "--sync", str(centre.x()), str(centre.y()), "click", "1")


def started_pids() -> list:
    with open(PID_FILE) as pids:
        return [int(line) for line in pids.read().split()]


def process_gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie that its parent has not reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


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

    def preview_shown(self) -> bool:
        pixmap = self.widget(QLabel, "smartbrush_preview").pixmap()
        return pixmap is not None and not pixmap.isNull()

    def bar(self) -> dict:
        bar = self.widget(QProgressBar, "smartbrush_progress")
        return {"value": bar.value(), "maximum": bar.maximum(), "text": bar.isTextVisible()}

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
        # on the screen, room for the docker (no window manager to maximise): the mouse clicks it
        qwindow = app.activeWindow().qwindow()
        qwindow.setGeometry(0, 0, 1600, 1000)
        # the default dock column first (the layout phase), as narrow as Krita makes it
        for dock in app.dockers():
            dock.setVisible(dock.windowTitle() in LAYOUT_DOCKS)
        self.docks = {dock.windowTitle(): dock for dock in app.dockers()}
        qwindow.resizeDocks([self.docks["SmartBrush"]], [COLUMN_WIDTH], Qt.Horizontal)
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
        detail = self.widget(QComboBox, "smartbrush_detail")  # the protocol's choices, its default
        self.result["detail"] = {
            "choices": [detail.itemData(i) for i in range(detail.count())],
            "current": detail.currentData(),
        }
        detail.setCurrentIndex(detail.findData("off"))  # sent with every fill: a bad one is refused

        self.result["layout"] = {"before": self.layout()}  # "from the selection": short
        before = snapshot(self.doc)
        self.action.trigger()  # the docker gives a selection a moment to arrive: then it says

        @guarded
        def said(self) -> None:
            self.result["no_selection"] = {
                "message": self.message(),
                "unchanged": snapshot(self.doc) == before,
            }
            self.select_rectangle()
            self.result["selection"] = b64(self.doc.selection().pixelData(0, 0, W, H))
            QTimer.singleShot(1200, self.selected)

        self.wait(lambda: self.message(), lambda: said(self), "the no-selection message")

    def select_rectangle(self) -> None:
        selection = Selection()
        selection.select(*SELECTION, 255)
        self.doc.setSelection(selection)
        self.doc.waitForDone()

    def layout(self) -> dict:
        """Where the docks are, what the window and the screen are: (x, y, width, height)."""
        shown = {title: dock for title, dock in self.docks.items() if dock.isVisible()}
        rects = {title: dock.geometry().getRect() for title, dock in shown.items()}
        rects["window"] = self.app.activeWindow().qwindow().geometry().getRect()
        rects["screen"] = QApplication.primaryScreen().geometry().getRect()
        return rects

    @guarded
    def selected(self) -> None:
        self.result["no_selection"]["message_after_selecting"] = self.message()
        self.result["precision_shown"] = self.widget(QLabel, "smartbrush_precision_value").text()
        layout = self.result["layout"]
        layout["auto_text"] = self.layout()  # "auto: 1.00, a rectangle: anywhere in the box"
        more = self.widget(QToolButton, "smartbrush_more")
        QApplication.setActiveWindow(self.app.activeWindow().qwindow())  # no window manager
        click(more)  # More settings opened with the mouse ...

        @guarded
        def opened(self) -> None:
            layout["more_open"] = self.layout()
            click(more)  # ... and closed again
            QTimer.singleShot(1000, lambda: closed(self))

        @guarded
        def closed(self) -> None:
            layout["more_closed"] = self.layout()
            for title, dock in self.docks.items():  # room for the docker for what follows
                dock.setVisible(title in ("Layers", "SmartBrush"))
            QTimer.singleShot(1000, lambda: self.fill("single", 1, then=self.variations))

        QTimer.singleShot(1000, lambda: opened(self))

    @guarded
    def variations(self) -> None:
        self.fill("variations", variations=2, then=self.quick_click)

    def fill(self, name, variations, then) -> None:
        """Trigger the action, wait for the result, record it, undo, record again, then()."""
        self.case = self.result[name] = {"before": snapshot(self.doc)}
        self.widget(QSpinBox, "smartbrush_variations").setValue(variations)
        if name == "single":  # the user's way: the mouse clicks Fill
            # with the endpoint field on show, as when the bug was found (focus landed there)
            self.widget(QToolButton, "smartbrush_more").setChecked(True)
            QApplication.setActiveWindow(self.app.activeWindow().qwindow())  # no window manager
            click(self.widget(QPushButton, "smartbrush_fill_button"))
        else:
            self.action.trigger()
        # a click is delivered once this returns to the event loop: wait for its layer
        self.wait(lambda: self.idle() and self.new_nodes(), lambda: self.filled(then), name)

    @guarded
    def filled(self, then) -> None:
        if not self.new_nodes():
            return self.finish(f"no result layer; docker says: {self.message()}")
        self.record(self.case, self.new_nodes()[0])
        if SCREENSHOT and "screenshot" not in self.result:
            QApplication.primaryScreen().grabWindow(0).save(SCREENSHOT)
            self.result["screenshot"] = SCREENSHOT
        if self.case is self.result["single"]:
            # the keyboard after the click: a tool key and Ctrl+Z, typed for real; in a text
            # field they would edit it (and "b" be saved as the endpoint) instead
            focus = QApplication.focusWidget()
            canvas = self.widget(QMdiArea, "").activeSubWindow().widget()
            self.case["focus_after_fill"] = type(focus).__name__ if focus else None
            self.case["focus_on_canvas"] = focus is canvas or canvas.isAncestorOf(focus)
            self.case["endpoint_before_keys"] = self.widget(QLineEdit, "smartbrush_endpoint").text()
            xdotool("key", "--delay", "100", "b", "ctrl+z")
        else:
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
        self.case["endpoint_after_undo"] = self.widget(QLineEdit, "smartbrush_endpoint").text()
        if self.case is self.result.get(
            "variations"
        ):  # redo brings the layers back, and the button
            self.app.action("edit_redo").trigger()
            QTimer.singleShot(1500, lambda: self.redone(then))
        else:
            then()

    @guarded
    def redone(self, then) -> None:
        self.doc.waitForDone()
        self.case["after_redo"] = self.docker_state()
        # another image: the docker shows nothing of this image's fill there
        other = self.app.createDocument(W, H, "smartbrush-other", "RGBA", "U8", "", 72.0)
        self.app.activeWindow().addView(other)
        QTimer.singleShot(1500, lambda: self.in_other_image(other, then))

    @guarded
    def in_other_image(self, other, then) -> None:
        self.case["in_other_image"] = self.docker_state()
        other.setModified(False)
        other.close()  # back to the image with the fill: its state is shown again
        QTimer.singleShot(1500, lambda: self.back_in_first_image(then))

    @guarded
    def back_in_first_image(self, then) -> None:
        self.case["back_in_first_image"] = self.docker_state()
        self.select_object(then)

    def select_object(self, then) -> None:
        """Select painted object, clicked: the canvas is saved with that selection and without
        any; the marching ants around the object are the difference."""
        case = self.result["select_object"] = {}
        click(self.widget(QPushButton, "smartbrush_select_object"))

        @guarded
        def with_ants(self) -> None:
            case["message"] = self.message()
            selection = self.doc.selection()
            case["selected"] = selection is not None and selection.width() > 0
            case["with"] = self.grab_canvas("select-object-with.png")
            self.doc.setSelection(None)  # not an undo step, as Select painted object is not
            QTimer.singleShot(1500, lambda: without(self))

        @guarded
        def without(self) -> None:
            case["without"] = self.grab_canvas("select-object-without.png")
            self.select_rectangle()  # as it was for the cases that follow
            self.app.action("edit_undo").trigger()
            QTimer.singleShot(1500, then)

        QTimer.singleShot(1500, lambda: with_ants(self))

    def grab_canvas(self, name: str) -> str:
        """Save what the screen shows of the canvas next to the result file; return the path."""
        canvas = self.widget(QMdiArea, "").activeSubWindow().widget()
        corner = canvas.mapToGlobal(canvas.rect().topLeft())
        path = os.path.join(os.path.dirname(RESULT), name)
        screen = QApplication.primaryScreen()
        screen.grabWindow(0, corner.x(), corner.y(), canvas.width(), canvas.height()).save(path)
        return path

    @guarded
    def quick_click(self) -> None:
        """A rectangle dragged with the rectangle selection tool, Fill clicked right after the
        mouse is released: Krita sets the selection a moment later; the click must not be lost."""
        case = self.result["quick_click"] = {"before": snapshot(self.doc)}
        self.widget(QSpinBox, "smartbrush_variations").setValue(1)
        self.doc.setSelection(None)
        self.widget(QToolButton, "KisToolSelectRectangular").click()
        canvas = self.widget(QMdiArea, "").activeSubWindow().widget()
        centre = canvas.mapToGlobal(canvas.rect().center())
        x, y = centre.x(), centre.y()
        fill = self.widget(QPushButton, "smartbrush_fill_button")
        button = fill.mapToGlobal(fill.rect().center())
        QApplication.setActiveWindow(self.app.activeWindow().qwindow())
        # one xdotool run, while Krita's event loop goes on: the drag as a hand makes it, then the
        # click on Fill at once (a few ms after the release; in 0.1-0.4 s Krita sets the selection)
        drag = ["mousemove", "--sync", str(x - 150), str(y - 100), "mousedown", "1"]
        for step in range(1, 7):
            drag += ["sleep", "0.05", "mousemove", "--sync", str(x - 150 + 50 * step)]
            drag += [str(y - 100 + 35 * step)]
        drag += ["mouseup", "1", "mousemove", "--sync", str(button.x()), str(button.y())]
        mouse = subprocess.Popen(["xdotool", *drag, "click", "1"])
        started = time.monotonic()

        @guarded
        def check(self) -> None:
            nodes = self.new_nodes()
            if not (self.idle() and nodes) and time.monotonic() - started < 30:
                return QTimer.singleShot(200, lambda: check(self))
            mouse.wait(timeout=20)
            selection = self.doc.selection()
            case["selection"] = (
                None
                if selection is None
                else [selection.x(), selection.y(), selection.width(), selection.height()]
            )
            case["message"] = self.message()
            case["layers"] = [node.name() for node in nodes]
            if nodes:
                self.app.action("edit_undo").trigger()
            self.select_rectangle()  # as it was for the cases that follow
            QTimer.singleShot(1500, self.cancel)

        QTimer.singleShot(200, lambda: check(self))

    def docker_state(self) -> dict:
        return {
            "select_enabled": self.widget(QPushButton, "smartbrush_select_object").isEnabled(),
            "message": self.message(),
            "bar": self.bar(),
            "preview": self.preview_shown(),
        }

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
        self.start_and_fill(then=self.stop_mid_fill)

    def start_and_fill(self, then) -> None:
        """Fill against the dead endpoint, press Start daemon, wait for the retried fill, then()."""
        old = {node.uniqueId() for node in self.new_nodes()}
        added = lambda: [n for n in self.new_nodes() if n.uniqueId() not in old]  # noqa: E731
        self.action.trigger()

        @guarded
        def click_start(self) -> None:
            button = self.widget(QPushButton, "smartbrush_start_daemon")
            self.case["message_down"] = self.message()
            self.case["start_button_visible"] = button.isVisible()
            button.click()
            self.case["message_starting"] = self.message()
            filled = lambda: self.idle() and added()  # noqa: E731
            self.wait(filled, lambda: started_and_filled(self), "start")

        @guarded
        def started_and_filled(self) -> None:
            self.record(self.case, added()[0])
            self.case["stop_button_visible"] = self.widget(
                QPushButton, "smartbrush_stop_daemon"
            ).isVisible()
            then()

        self.wait(self.idle, lambda: click_start(self), "the daemon-down message")

    @guarded
    def stop_mid_fill(self) -> None:
        """Stop daemon while a fill runs: the fill fails, the bar and the preview are reset."""
        case = self.result["stop_mid_fill"] = {"before": snapshot(self.doc)}
        self.widget(QSpinBox, "smartbrush_steps").setValue(200)
        self.action.trigger()

        @guarded
        def click_stop(self) -> None:
            case["bar_while_running"] = self.bar()
            self.widget(QPushButton, "smartbrush_stop_daemon").click()
            self.result["start_daemon"]["message_stopped"] = self.message()
            self.wait(self.idle, lambda: stopped(self), "the stopped fill to end")

        @guarded
        def stopped(self) -> None:
            case.update(message=self.message(), bar=self.bar(), after=snapshot(self.doc))
            case["preview_after"] = self.preview_shown()
            case["daemon_gone"] = process_gone(started_pids()[0])
            self.case = self.result["restart"] = {"before": snapshot(self.doc)}
            self.widget(QSpinBox, "smartbrush_steps").setValue(3)
            self.start_and_fill(then=self.close_image)

        running = lambda: self.message().startswith("Step ") and self.preview_shown()  # noqa: E731
        self.wait(running, lambda: click_stop(self), "a preview")

    @guarded
    def close_image(self) -> None:
        """Close the image while its fill runs: the docker cancels the job at the daemon."""
        from smartbrush.wire.client import Client  # the plugin's vendored copy

        case = self.result["close_image"] = {}
        self.widget(QSpinBox, "smartbrush_steps").setValue(200)
        self.action.trigger()

        def running_jobs() -> int:
            with Client(START_ENDPOINT, timeout=5.0) as client:
                return len(client.status()["running"])

        @guarded
        def close(self) -> None:
            case["running_before"] = running_jobs()
            case["step_at_close"] = self.message()
            self.doc.setModified(False)
            self.doc.close()
            started = time.monotonic()
            self.wait(self.idle, lambda: closed(self, started), "the closed image's fill to end")

        @guarded
        def closed(self, started) -> None:
            case["message"] = self.message()
            while (jobs := running_jobs()) and time.monotonic() - started < 20:
                time.sleep(0.1)
            case["running_after"] = jobs
            case["seconds_to_stop"] = round(time.monotonic() - started, 2)
            case["bar"] = self.bar()
            self.kill_from_outside()

        self.wait(lambda: self.message().startswith("Step "), lambda: close(self), "progress")

    @guarded
    def kill_from_outside(self) -> None:
        """The daemon the docker started is killed by someone else: the docker notices."""
        pid = started_pids()[-1]
        os.kill(pid, signal.SIGKILL)

        @guarded
        def noticed(self) -> None:
            self.result["killed_outside"] = {
                "reaped": not os.path.exists(f"/proc/{pid}"),  # no zombie under Krita
                "stop_visible": self.widget(QPushButton, "smartbrush_stop_daemon").isVisible(),
                "start_visible": self.widget(QPushButton, "smartbrush_start_daemon").isVisible(),
                "message": self.message(),
            }
            self.quit()

        QTimer.singleShot(2000, lambda: noticed(self))

    def quit(self) -> None:
        """Write the result, then leave through Krita's own quit (the docker stops its daemon)."""
        self.write_result(None)
        QTimer.singleShot(60_000, lambda: os._exit(3))  # Krita did not quit: the test says so
        self.app.action("file_quit").trigger()

    def write_result(self, problem) -> None:
        self.result["problem"] = problem
        with open(RESULT, "w") as out:
            json.dump(self.result, out)

    def finish(self, problem=None) -> None:
        self.write_result(problem)
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

"""The "SmartBrush fill" and "SmartBrush remove" actions (Tools > Scripts; shortcuts from
smartbrush_krita.action): they run the active window's docker with its current settings."""

from __future__ import annotations

from krita import Extension, Krita
from PyQt5.QtWidgets import QApplication

from . import daemon_process
from .docker import OPEN_DOCKERS

ACTION_ID = "smartbrush_fill"
REMOVE_ACTION_ID = "smartbrush_remove"


class SmartBrushExtension(Extension):
    """Adds "SmartBrush fill" (Tools > Scripts; shortcut from smartbrush_krita.action)."""

    def setup(self) -> None:
        # a daemon that Start daemon ran does not outlive Krita; a plain function, as the docker's
        # own slot (on Notifier.applicationClosing, the same signal) was not called at quit
        QApplication.instance().aboutToQuit.connect(daemon_process.stop_all)

    def createActions(self, window) -> None:  # noqa: N802 (Krita's name)
        action = window.createAction(ACTION_ID, "SmartBrush fill", "tools/scripts")
        action.triggered.connect(fill_from_active_window)
        remove = window.createAction(REMOVE_ACTION_ID, "SmartBrush remove", "tools/scripts")
        remove.triggered.connect(lambda: fill_from_active_window(remove=True))


def fill_from_active_window(remove: bool = False) -> None:
    """The actions: run the active window's docker with its current settings (or Remove)."""
    window = Krita.instance().activeWindow()
    qwindow = window.qwindow() if window is not None else None
    for docker in OPEN_DOCKERS:
        if docker.window() is qwindow or qwindow is None:
            docker.setVisible(True)
            docker.raise_()
            docker.start_fill(remove=remove)
            return

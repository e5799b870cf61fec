"""SmartBrush for Krita: fill the selection with what a text prompt describes, as a new layer.

Adds the action "SmartBrush fill" (Tools > Scripts, Ctrl+Alt+B) and the SmartBrush docker
(Settings > Dockers). The model runs in the SmartBrush daemon (`smartbrush serve`); this plugin talks
to it with the vendored pure-Python part of the smartbrush package (vendor/, made by
`smartbrush install-plugin krita`).

From Krita's Scripter or kritarunner:

    import smartbrush_krita
    layers = smartbrush_krita.fill_selection(Krita.instance().activeDocument(), "a red ball")

See fill_selection's docstring and docs/krita.md.
"""

import os
import sys

# Krita's Python can't see the smartbrush package; the installer vendors what the plugin needs here.
_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.insert(0, _VENDOR)

from smartbrush.wire.editing import EditingError, NoSelection, user_message  # noqa: E402

from .krita_adapter import KritaCanvas, fill_selection  # noqa: E402

__all__ = ["EditingError", "KritaCanvas", "NoSelection", "fill_selection", "user_message"]


def _register() -> None:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

    from .actions import SmartBrushExtension
    from .docker import DOCKER_ID, SmartBrushDocker

    app = Krita.instance()
    app.addExtension(SmartBrushExtension(app))
    app.addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, SmartBrushDocker)
    )


_register()

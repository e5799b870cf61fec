"""GIMP batch script for tests/test_gimp.py: runs plug-in-smartbrush-fill INTERACTIVELY (its dialog).

The daemon endpoint comes from $SMARTBRUSH_ENDPOINT, as for a user who set it once.

Run by dialog_session.sh under Xvfb, which answers the dialog like a user (types a prompt, presses
OK) and takes the screenshot. Records the procedure's answer and the layer stack in <out>/dialog.json.
"""

import json
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

out = os.environ["SMARTBRUSH_GIMP_OUT"]
image = Gimp.Image.new(160, 120, Gimp.ImageBaseType.RGB)
background = Gimp.Layer.new(
    image, "Background", 160, 120, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL
)
image.insert_layer(background, None, 0)
background.fill(Gimp.FillType.WHITE)
image.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 30, 70, 50)

procedure = Gimp.get_pdb().lookup_procedure("plug-in-smartbrush-fill")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [background])
config.set_property("steps", 2)
values = procedure.run(config)
status = values.index(0)
record = {
    "status": status.value_nick,
    "message": values.index(1)
    if status != Gimp.PDBStatusType.SUCCESS and values.length() > 1
    else None,
    "layers": [layer.get_name() for layer in image.get_layers()],
}
with open(os.path.join(out, "dialog.json"), "w") as file:
    json.dump(record, file)

"""GIMP batch script for tests/test_gimp.py: runs plug-in-smartbrush-fill NON-INTERACTIVE in real GIMP 3.

Run inside the chroot with
    gimp-console-3.0 -i -d -f --batch-interpreter python-fu-eval \
        -b 'exec(open("/path/batch_fill.py").read())' --quit
and SMARTBRUSH_GIMP_JOB=<job.json> in the environment. The job file names the daemon endpoint, an
endpoint where no daemon listens, and the output folder. For each case this script builds an image
with known layers, runs the procedure and records what a user would see (status, message, the layer
stack, every layer's pixels and the selection) in <out>/result.json plus raw pixel files, which the
test checks with numpy. It judges nothing itself.
"""

import hashlib
import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

WIDTH, HEIGHT = 96, 80


def make_image(gray=False, grouped=False):
    """An opaque gradient "Background" and a half-transparent "Top" layer above it (RGB or gray).

    grouped: Background sits inside a layer group "Group".
    """
    base = Gimp.ImageBaseType.GRAY if gray else Gimp.ImageBaseType.RGB
    image = Gimp.Image.new(WIDTH, HEIGHT, base)
    parent = None
    if grouped:
        parent = Gimp.GroupLayer.new(image, "Group")
        image.insert_layer(parent, None, 0)
    background = new_layer(image, "Background", WIDTH, HEIGHT, 0, parent)
    pixels = bytearray(WIDTH * HEIGHT * 4)
    for y in range(HEIGHT):
        for x in range(WIDTH):
            pixels[(y * WIDTH + x) * 4 : (y * WIDTH + x + 1) * 4] = bytes(
                (x * 2 % 256, y * 3 % 256, 90, 255)
            )
    write(background, bytes(pixels))
    top = new_layer(image, "Top", 24, 20, 0)
    top.set_offsets(66, 54)
    write(top, bytes((10, 200, 30, 128)) * (24 * 20))
    image.set_selected_layers([background])  # the new layer must go between Background and Top
    return image, background


def new_layer(image, name, width, height, position, parent=None):
    kind = Gimp.ImageType.RGBA_IMAGE
    if image.get_base_type() == Gimp.ImageBaseType.GRAY:
        kind = Gimp.ImageType.GRAYA_IMAGE
    layer = Gimp.Layer.new(image, name, width, height, kind, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, parent, position)
    return layer


def write(layer, data):
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height()), "R'G'B'A u8", data)
    buffer.flush()


def read(drawable, babl_format="R'G'B'A u8"):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(rect, 1.0, babl_format, Gegl.AbyssPolicy.NONE))


def walk(layers, prefix=""):
    """(path name, layer) top to bottom, group contents after the group ("Group/Background")."""
    for layer in layers:
        yield prefix + layer.get_name(), layer
        if layer.is_group():
            yield from walk(layer.get_children(), prefix + layer.get_name() + "/")


def snapshot(image, out, tag):
    """The layer stack top to bottom, each layer's geometry and pixels (saved to files)."""
    layers = []
    for index, (name, layer) in enumerate(walk(image.get_layers())):
        data = read(layer)
        path = os.path.join(out, f"{tag}-layer{index}.rgba")
        with open(path, "wb") as file:
            file.write(data)
        _, x, y = layer.get_offsets()
        layers.append(
            {
                "name": name,
                "group": layer.is_group(),
                "x": x,
                "y": y,
                "width": layer.get_width(),
                "height": layer.get_height(),
                "visible": layer.get_visible(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "pixels": os.path.basename(path),
            }
        )
    return layers


def channels(image, out, tag):
    """The image's channels: name, visibility and pixels (saved to files)."""
    found = []
    for index, channel in enumerate(image.get_channels()):
        path = os.path.join(out, f"{tag}-channel{index}.y")
        with open(path, "wb") as file:
            file.write(read(channel, "Y u8"))
        found.append({"name": channel.get_name(), "visible": channel.get_visible(),
                      "pixels": os.path.basename(path)})  # fmt: skip
    return found


def save_selection(image, out, tag):
    path = os.path.join(out, f"{tag}-selection.y")
    with open(path, "wb") as file:
        file.write(read(image.get_selection(), "Y u8"))
    return os.path.basename(path)


def run_fill(image, drawable, procedure_name="plug-in-smartbrush-fill", **options):
    procedure = Gimp.get_pdb().lookup_procedure(procedure_name)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [drawable])
    for name, value in options.items():
        config.set_property(name.replace("_", "-"), value)
    started = time.monotonic()
    values = procedure.run(config)
    seconds = time.monotonic() - started
    status = values.index(0)
    answer = {"status": status.value_nick, "seconds": round(seconds, 2)}
    if status == Gimp.PDBStatusType.SUCCESS:
        layer = values.index(1)
        answer["layer"] = layer.get_name() if layer else None
        answer["seed"] = values.index(2)
    else:
        answer["message"] = values.index(1) if values.length() > 1 else None
    return answer


def case(out, tag, select, gray=False, grouped=False, **options):
    image, background = make_image(gray, grouped)
    select(image)
    before = snapshot(image, out, f"{tag}-before")
    try:
        answer = run_fill(image, background, **options)
    except Exception:
        answer = {"status": "batch-exception", "message": traceback.format_exc()}
    record = {
        "answer": answer,
        "before": before,
        "after": snapshot(image, out, f"{tag}-after"),
        "channels": channels(image, out, tag),
        "selected_after": [layer.get_name() for layer in image.get_selected_layers()],
        "selection": save_selection(image, out, tag),
        "width": WIDTH,
        "height": HEIGHT,
    }
    image.delete()
    return record


def rectangle(image):
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 20, 16, 40, 30)


def feathered_ellipse(image):
    image.select_ellipse(Gimp.ChannelOps.REPLACE, 14, 10, 50, 44)
    Gimp.Selection.feather(image, 6.0)


def cases(job):
    """name -> (selection maker, procedure arguments)."""
    fill = {"prompt": "a red ball", "steps": 2, "endpoint": job["endpoint"]}
    return {
        "rectangle": (rectangle, dict(fill, seed=7)),
        "ellipse": (
            feathered_ellipse,
            dict(fill, seed=11, variations=2, auto_precision=False, precision=0.0,
                 negative_prompt="blurry", detail="best"),
        ),
        "no-selection": (Gimp.Selection.none, fill),
        "remove-no-selection": (Gimp.Selection.none, {"procedure_name": "plug-in-smartbrush-remove",
                                                      "steps": 2, "endpoint": job["endpoint"]}),
        "daemon-down": (rectangle, dict(fill, endpoint=job["down_endpoint"])),
        "bad-endpoint": (rectangle, dict(fill, endpoint="localhost:5737")),
        "empty-prompt": (rectangle, dict(fill, prompt="   ")),
        "gray": (feathered_ellipse, dict(fill, seed=5, gray=True)),
        # Remove on the tiny model, which was never trained for removal: it erases all the same
        "remove": (rectangle, {"procedure_name": "plug-in-smartbrush-remove", "steps": 2,
                               "endpoint": job["endpoint"]}),
        "grouped": (rectangle, dict(fill, seed=3, grouped=True)),
        # job["endpoint"] is a CURVE daemon that rejects the key in $SMARTBRUSH_CURVE_DIR
        "curve-wrong-keys": (rectangle, fill),
        # A long fill the test kills mid-way, the way GIMP cancels a plug-in.
        "killed": (rectangle, dict(fill, steps=200, variations=8)),
    }  # fmt: skip


def what_the_model_sees():
    """The plug-in's canvas adapter reads the layers the result will sit on, not those above."""
    import sys

    plug_in = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "smartbrush-fill")
    sys.path[:0] = [plug_in, os.path.join(plug_in, "vendor")]
    from gimp_canvas import GimpCanvas

    from smartbrush.wire.editing import Rect

    reads = {}
    for grouped in (False, True):
        image, background = make_image(grouped=grouped)
        top = next(layer for layer in image.get_layers() if layer.get_name() == "Top")
        everything = GimpCanvas(image, [top]).read_visible(Rect(0, 0, WIDTH, HEIGHT))
        below = GimpCanvas(image, [background]).read_visible(Rect(0, 0, WIDTH, HEIGHT))
        tag = "grouped" if grouped else "flat"
        reads[tag] = {
            "below_background_is_background": below == read(background),
            "top_changes_pixels": everything != read(background),
            "top_still_visible": top.get_visible(),
        }
        image.delete()
    return reads


def dialog_status_with_the_daemon_down(endpoint):
    """The dialog's status label after OK with the daemon down (GimpUi is imported, not shown)."""
    import sys

    plug_in = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "smartbrush-fill")
    sys.path[:0] = [plug_in, os.path.join(plug_in, "vendor")]
    import dialog

    problem = dialog.probe_daemon(endpoint)[1]
    status = "\n".join([dialog.daemon_status(endpoint), "Auto precision for this selection: box."])
    return {"problem": problem, "markup": dialog.status_markup(status, problem)}


def main():
    with open(os.environ["SMARTBRUSH_GIMP_JOB"]) as file:
        job = json.load(file)
    available = cases(job)
    results = {}
    for name in job["cases"]:
        select, options = available[name]
        results[name] = case(job["out"], name, select, **options)
    results["reads"] = what_the_model_sees()
    results["dialog_down"] = dialog_status_with_the_daemon_down(job["down_endpoint"])
    procedure = Gimp.get_pdb().lookup_procedure("plug-in-smartbrush-fill")
    results["procedure"] = {
        "menu_label": procedure.get_menu_label(),
        "menu_paths": list(procedure.get_menu_paths()),
        "image_types": procedure.get_image_types(),
        "arguments": [spec.name for spec in procedure.get_arguments()],
    }
    with open(os.path.join(job["out"], "result.json"), "w") as file:
        json.dump(results, file, indent=1)


main()

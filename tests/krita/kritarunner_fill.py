"""Run by tests/test_krita.py inside real Krita:
`kritarunner -s kritarunner_fill RESULT ENDPOINT DOWN CURVE_ENDPOINT WRONG_KEYS`.

Imports the installed plugin (PYTHONPATH = the pykrita folder), fills selections on a document
through smartbrush_krita.fill_selection against a real daemon, and writes what it saw to RESULT
(JSON, pixel buffers base64) for pytest to check. kritarunner always exits 0, so a missing or
incomplete RESULT is the failure signal.
"""

import base64
import hashlib
import json
import os
import traceback

W, H = 160, 120


def b64(data) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def digest(node) -> str:
    return hashlib.sha256(bytes(node.pixelData(0, 0, W, H))).hexdigest()


def snapshot(doc) -> list:
    """(name, type, pixel digest) of every node, bottom to top, depth first."""
    out = []

    def walk(node, depth):
        for child in node.childNodes():
            out.append([depth, child.name(), child.type(), digest(child)])
            walk(child, depth + 1)

    walk(doc.rootNode(), 0)
    return out


def layer_info(node) -> dict:
    parent = node.parentNode()
    siblings = [child.name() for child in parent.childNodes()]
    return {
        "name": node.name(),
        "type": node.type(),
        "visible": node.visible(),
        "parent": parent.name(),
        "parent_type": parent.type(),
        "siblings": siblings,
        "index": siblings.index(node.name()),
        "pixels": b64(node.pixelData(0, 0, W, H)),
        "bounds": [
            node.bounds().x(),
            node.bounds().y(),
            node.bounds().width(),
            node.bounds().height(),
        ],  # fmt: skip
    }


def make_document(krita):
    doc = krita.createDocument(W, H, "smartbrush-test", "RGBA", "U8", "", 72.0)
    doc.setBatchmode(True)
    root = doc.rootNode()
    background = root.childNodes()[0]
    # a known background: a colour ramp, so a changed pixel is visible in the digest
    ramp = bytearray(W * H * 4)
    for y in range(H):
        for x in range(W):
            ramp[(y * W + x) * 4 : (y * W + x) * 4 + 4] = bytes([x, y, 255 - x, 255])  # B G R A
    background.setPixelData(bytes(ramp), 0, 0, W, H)
    middle = doc.createNode("Middle", "paintlayer")
    middle.setPixelData(bytes([0, 200, 0, 255]) * (30 * 20), 10, 10, 30, 20)
    root.addChildNode(middle, background)
    top = doc.createNode("Top", "paintlayer")
    top.setPixelData(bytes([0, 0, 200, 128]) * (20 * 20), 130, 90, 20, 20)
    root.addChildNode(top, middle)
    doc.refreshProjection()
    return doc, middle


def ellipse(box):
    """A hard ellipse filling `box`, as selection bytes for the box."""
    _, _, w, h = box
    rx, ry = w / 2, h / 2
    data = bytearray(w * h)
    for y in range(h):
        for x in range(w):
            if ((x + 0.5 - rx) / rx) ** 2 + ((y + 0.5 - ry) / ry) ** 2 <= 1:
                data[y * w + x] = 255
    return bytes(data)


def soft_ellipse(box):
    """An ellipse filling `box` with a feathered edge: 255 inside, falling linearly to 0 outside."""
    _, _, w, h = box
    rx, ry = w / 2, h / 2
    data = bytearray(w * h)
    for y in range(h):
        for x in range(w):
            d = (((x + 0.5 - rx) / rx) ** 2 + ((y + 0.5 - ry) / ry) ** 2) ** 0.5
            data[y * w + x] = max(0, min(255, round((1 - d) / 0.3 * 255)))
    return bytes(data)


def __main__(args):
    result_path, endpoint, down_endpoint, curve_endpoint, wrong_keys = args[:5]
    result = {"cases": {}}
    try:
        from krita import Krita, Selection

        krita = Krita.instance()
        krita.setBatchmode(True)
        import smartbrush_krita  # first: it puts its vendored smartbrush on sys.path

        import smartbrush
        from smartbrush.wire.editing import user_message

        result["smartbrush_file"] = smartbrush.__file__
        result["plugin_file"] = smartbrush_krita.__file__

        def run_case(name, doc, selection_box=None, mask=None, **kwargs):
            if selection_box is not None:
                selection = Selection()
                if mask is None:
                    selection.select(*selection_box, 255)
                else:
                    selection.setPixelData(mask, *selection_box)
                doc.setSelection(selection)
                doc.refreshProjection()
            case = {"before": snapshot(doc)}
            if selection_box is not None:
                case["selection"] = b64(doc.selection().pixelData(0, 0, W, H))
            try:
                layers = smartbrush_krita.fill_selection(doc, **kwargs)
            except Exception as error:  # what a script user sees
                case["error_type"] = type(error).__name__
                case["message"] = user_message(error, kwargs.get("endpoint"))
            else:
                case["layers"] = [layer_info(layer) for layer in layers]
            case["after"] = snapshot(doc)
            result["cases"][name] = case

        doc, middle = make_document(krita)
        run_case("no_selection", doc, prompt="a red ball", endpoint=endpoint, layer=middle)
        run_case(
            "remove_no_selection", doc, prompt="", remove=True, endpoint=endpoint, layer=middle
        )

        run_case(
            "daemon_down",
            doc,
            (40, 30, 50, 40),
            prompt="a red ball",
            endpoint=down_endpoint,
            layer=middle,
            timeout=3.0,
        )
        run_case(
            "rectangle",
            doc,
            (40, 30, 50, 40),
            prompt="a red ball",
            endpoint=endpoint,
            layer=middle,
            steps=3,
            seed=11,
        )
        doc2, middle2 = make_document(krita)
        run_case(
            "ellipse_variations",
            doc2,
            (60, 20, 70, 50),
            mask=ellipse((60, 20, 70, 50)),
            prompt="a cat",
            endpoint=endpoint,
            layer=middle2,
            steps=3,
            seed=3,
            variations=2,
        )
        doc3, middle3 = make_document(krita)
        run_case(
            "soft_ellipse",
            doc3,
            (50, 30, 60, 50),
            mask=soft_ellipse((50, 30, 60, 50)),
            prompt="a cat",
            endpoint=endpoint,
            layer=middle3,
            steps=3,
            seed=5,
        )
        # the active node is a mask on "Middle": the result goes above "Middle" (masks hold no paint)
        doc4, middle4 = make_document(krita)
        local_mask = doc4.createSelectionMask("Local selection")
        middle4.addChildNode(local_mask, None)
        run_case(
            "mask_as_reference",
            doc4,
            (40, 30, 50, 40),
            prompt="a red ball",
            endpoint=endpoint,
            layer=local_mask,
            steps=3,
            seed=11,
        )
        # what the model sees: the layers the result will sit on, not those above it
        from smartbrush_krita import KritaCanvas

        from smartbrush.wire.editing import Rect

        doc6, middle6 = make_document(krita)
        top6 = next(node for node in doc6.rootNode().childNodes() if node.name() == "Top")
        everything = bytes(doc6.pixelData(0, 0, W, H))
        below_middle = KritaCanvas(doc6, middle6).read_visible(Rect(0, 0, W, H))
        below_top = KritaCanvas(doc6, top6).read_visible(Rect(0, 0, W, H))
        top6.setVisible(False)
        doc6.refreshProjection()
        without_top = bytes(doc6.pixelData(0, 0, W, H))
        top6.setVisible(True)
        doc6.refreshProjection()
        result["reads"] = {
            "below_middle_is_without_top": below_middle == without_top,
            "top_changes_pixels": everything != without_top,
            "below_top_is_everything": below_top == everything,
            "top_visible_again": top6.visible(),
            "projection_restored": bytes(doc6.pixelData(0, 0, W, H)) == everything,
        }

        # a 16-bit document is filled too: read as 8-bit, the new layer written in 16 bits
        deep = krita.createDocument(W, H, "smartbrush-16bit", "RGBA", "U16", "", 72.0)
        deep.setBatchmode(True)
        selection = Selection()
        selection.select(40, 30, 50, 40, 255)
        deep.setSelection(selection)
        deep.refreshProjection()
        [deep_layer] = smartbrush_krita.fill_selection(
            deep, prompt="a red ball", endpoint=endpoint, steps=3, seed=11
        )
        data = bytes(deep_layer.pixelData(0, 0, W, H))
        result["deep"] = {
            "depth": deep.colorDepth(),
            "bytes_per_pixel": len(data) // (W * H),
            "opaque_pixels": sum(
                1 for i in range(6, len(data), 8) if data[i : i + 2] == b"\xff\xff"
            ),
            "all_v_times_257": data[0::2] == data[1::2],
            "name": deep_layer.name(),
        }

        # the painted object becomes the selection; Remove erases with any model
        doc5, middle5 = make_document(krita)
        run_case(
            "select_object",
            doc5,
            (40, 30, 50, 40),
            prompt="a red ball",
            endpoint=endpoint,
            layer=middle5,
            steps=3,
            seed=11,
            select_object=True,
        )
        result["cases"]["select_object"]["selection_after"] = b64(
            doc5.selection().pixelData(0, 0, W, H)
        )
        run_case(
            "remove",
            doc5,
            (40, 30, 50, 40),
            prompt="",
            remove=True,
            endpoint=endpoint,
            layer=middle5,
            steps=3,
        )
        # a daemon under CURVE that does not know this client's key drops it without a word
        os.environ["SMARTBRUSH_CURVE_DIR"] = wrong_keys
        try:
            run_case(
                "curve_wrong_keys",
                doc5,
                (40, 30, 50, 40),
                prompt="a red ball",
                endpoint=curve_endpoint,
                layer=middle5,
                steps=3,
            )
        finally:
            del os.environ["SMARTBRUSH_CURVE_DIR"]
    except Exception:
        result["crash"] = traceback.format_exc()
    with open(result_path, "w") as out:
        json.dump(result, out)

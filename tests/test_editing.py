"""The editor-independent plugin logic (smartbrush/wire/editing.py), tested without any editor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartbrush.commands import install_plugin
from smartbrush.wire import editing, protocol
from smartbrush.wire.editing import EditingError, FillOptions, NoSelection, Rect


def ellipse_mask(width: int, height: int, box: Rect, soft: bool = False) -> bytes:
    """An ellipse inscribed in `box`, hard (0/255) or with a linear soft edge."""
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    rx, ry = box.width / 2, box.height / 2
    out = bytearray(width * height)
    for y in range(height):
        for x in range(width):
            d = ((x + 0.5 - cx) / rx) ** 2 + ((y + 0.5 - cy) / ry) ** 2
            if soft:
                out[y * width + x] = max(0, min(255, round((1.2 - d) / 0.4 * 255)))
            else:
                out[y * width + x] = 255 if d <= 1 else 0
    return bytes(out)


def test_vendored_modules_run_on_the_editors_python(tmp_path):
    # The plugins get editing, client and protocol as a vendored copy and run them on the editor's
    # Python (Krita: the system python3) with nothing but pyzmq and msgpack.
    vendor = tmp_path / "vendor"
    install_plugin.vendor_smartbrush(vendor)
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    code = (
        f"import sys; sys.path.insert(0, {str(vendor)!r})\n"
        "import smartbrush.wire.editing, smartbrush.wire.client\n"
        "heavy = {'numpy', 'torch', 'PIL', 'PyQt5'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert smartbrush.__file__.startswith(sys.path[0]), smartbrush.__file__\n"
        "print(smartbrush.wire.editing.layer_name('a cat', 7))\n"
    )
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "SmartBrush: a cat (seed 7)"


def test_mask_bounds_are_tight_and_none_when_empty():
    box = Rect(5, 3, 9, 6)
    mask = ellipse_mask(20, 12, box)
    assert editing.mask_bounds(mask, 20, 12) == box
    assert editing.mask_bounds(bytes(240), 20, 12) is None
    single = bytearray(240)
    single[7 * 20 + 19] = 1  # a faint pixel counts for the bounds
    assert editing.mask_bounds(bytes(single), 20, 12) == Rect(19, 7, 1, 1)


@given(st.lists(st.integers(0, 3), min_size=1, max_size=90), st.integers(1, 9))
def test_mask_rectangles_cover_exactly_the_selected_pixels_without_overlap(values, width):
    height = -(-len(values) // width)
    mask = bytes(values + [0] * (width * height - len(values)))
    selected = bytes(1 if value else 0 for value in mask)
    assert coverage(editing.mask_rectangles(mask, width, height), width, height) == selected
    # with the bridges that make neighbours overlap: still exactly the selected pixels
    covered = coverage(editing.outline_rectangles(mask, width, height), width, height)
    assert bytes(min(count, 1) for count in covered) == selected


def coverage(rectangles: list[Rect], width: int, height: int) -> bytearray:
    """How many of `rectangles` cover each pixel."""
    covered = bytearray(width * height)
    for rect in rectangles:
        assert rect.width > 0 and rect.height > 0
        for y in range(rect.y, rect.y + rect.height):
            for x in range(rect.x, rect.x + rect.width):
                covered[y * width + x] += 1
    return covered


def test_mask_rectangles_merge_the_rows_of_a_shape():
    box = Rect(2, 1, 6, 5)
    square = bytes(
        255 if box.x <= x < 8 and box.y <= y < 6 else 0 for y in range(8) for x in range(10)
    )
    assert editing.mask_rectangles(square, 10, 8) == [box]
    assert editing.mask_rectangles(bytes(80), 10, 8) == []
    # a step: two rectangles, and a bridge over the rows where they meet, as wide as both share
    step = bytes(255 if x < 4 or y >= 2 else 0 for y in range(4) for x in range(6))
    assert editing.outline_rectangles(step, 6, 4) == [Rect(0, 0, 4, 2), Rect(0, 2, 6, 2)] + [
        Rect(0, 1, 4, 2)
    ]


def test_context_rect_adds_padding_and_stays_inside_the_canvas():
    selection = Rect(1000, 800, 200, 100)
    context = editing.context_rect(selection, 4000, 3000)
    # half the larger side of context each way: a 400x300 crop, not the 4000x3000 canvas
    assert context == Rect(900, 700, 400, 300)
    near_corner = editing.context_rect(Rect(10, 5, 50, 40), 4000, 3000)
    assert near_corner == Rect(0, 0, 10 + 50 + 32, 5 + 40 + 32)
    whole = editing.context_rect(Rect(0, 0, 64, 64), 64, 64, padding=100)
    assert whole == Rect(0, 0, 64, 64)


@given(
    x=st.integers(0, 300),
    y=st.integers(0, 300),
    w=st.integers(1, 300),
    h=st.integers(1, 300),
    padding=st.integers(0, 200) | st.none(),
)
def test_context_rect_always_contains_the_selection_inside_the_canvas(x, y, w, h, padding):
    canvas_w, canvas_h = 400, 350
    sel = Rect(min(x, canvas_w - 1), min(y, canvas_h - 1), w, h)
    sel = Rect(sel.x, sel.y, min(sel.width, canvas_w - sel.x), min(sel.height, canvas_h - sel.y))
    ctx = editing.context_rect(sel, canvas_w, canvas_h, padding=padding)
    assert 0 <= ctx.x <= sel.x and 0 <= ctx.y <= sel.y
    assert sel.right <= ctx.right <= canvas_w and sel.bottom <= ctx.bottom <= canvas_h


def test_mask_from_selection_keeps_soft_values_and_refuses_no_selection():
    soft = ellipse_mask(30, 20, Rect(4, 2, 22, 16), soft=True)
    mask = editing.mask_from_selection(soft, 30, 20)
    assert mask == {"width": 30, "height": 20, "mode": "L", "data": soft}
    assert len(set(soft)) > 10  # the soft edge survives as 8-bit values
    with pytest.raises(NoSelection, match="Nothing is selected"):
        editing.mask_from_selection(bytes(600), 30, 20)
    with pytest.raises(NoSelection, match="too faint"):
        editing.mask_from_selection(bytes([100]) * 600, 30, 20)
    with pytest.raises(ValueError, match="expected 30x20x1"):
        editing.mask_from_selection(bytes(599), 30, 20)


def test_image_from_pixels_reorders_krita_bgra_and_gimp_rgba():
    bgra = bytes([10, 20, 30, 255, 40, 50, 60, 255])  # Krita: B, G, R, A
    assert editing.image_from_pixels(bgra, 2, 1, "BGRA")["data"] == bytes([30, 20, 10, 60, 50, 40])
    assert editing.image_from_pixels(bgra, 2, 1, "RGBA")["data"] == bytes([10, 20, 30, 40, 50, 60])


def test_image_from_pixels_shows_transparent_canvas_as_white():
    pixels = bytes([0, 0, 0, 0, 255, 0, 0, 128, 0, 0, 0, 255])  # RGBA: clear, half red, black
    image = editing.image_from_pixels(pixels, 3, 1, "RGBA")
    assert image["mode"] == "RGB"
    assert image["data"] == bytes([255, 255, 255, 255, 127, 127, 0, 0, 0])


def test_build_fill_request_checks_options():
    image = {"width": 4, "height": 3, "mode": "RGB", "data": bytes(36)}
    mask = {"width": 4, "height": 3, "mode": "L", "data": bytes([255]) * 12}
    request = editing.build_fill_request(
        image, mask, FillOptions("  a red\n ball ", precision=0.25, seed=42, variations=3)
    )
    assert request["prompt"] == "a red ball"
    assert request["precision"] == 0.25 and request["seed"] == 42 and request["variations"] == 3
    assert request["image"] is image and request["mask"] is mask
    auto = editing.build_fill_request(image, mask, FillOptions("ball"))
    assert auto["precision"] == "auto"
    assert auto["seed"] is None and auto["negative_prompt"] is None  # the daemon picks the seed
    assert auto["preview_interval"] == 0
    # what the plugin builds is what the daemon's protocol accepts
    assert protocol.validate_fill({"type": "fill", **request})["precision"] == 0.25
    assert (
        editing.build_fill_request(image, mask, FillOptions("ball", precision="0.5"))["precision"]
        == 0.5
    )

    bad = [
        (FillOptions("   "), "prompt"),
        (FillOptions("ball", precision=1.5), "Precision"),
        (FillOptions("ball", precision="sometimes"), "Precision"),
        (FillOptions("ball", steps=0), "Steps"),
        (FillOptions("ball", variations=99), "Variations"),
        (FillOptions("ball", seed=-1), "Seed"),
        (FillOptions("ball", guidance=float("nan")), "Guidance"),
        (FillOptions("x" * 1001), "limit is 1000"),
    ]
    for options, word in bad:
        with pytest.raises(EditingError, match=word):
            editing.build_fill_request(image, mask, options)
    with pytest.raises(EditingError, match="Mask is 5x3 but image is 4x3"):
        editing.build_fill_request(image, {**mask, "width": 5, "data": bytes(15)}, FillOptions("x"))


def test_layer_pixels_put_result_alpha_in_the_editors_byte_order():
    rgb = bytes([1, 2, 3, 4, 5, 6])
    alpha = {"width": 2, "height": 1, "mode": "L", "data": bytes([0, 200])}
    image = {"width": 2, "height": 1, "mode": "RGB", "data": rgb}
    assert editing.layer_pixels(image, alpha, "BGRA") == bytes([3, 2, 1, 0, 6, 5, 4, 200])
    assert editing.layer_pixels(image, alpha, "RGBA") == bytes([1, 2, 3, 0, 4, 5, 6, 200])
    rgba = {"width": 2, "height": 1, "mode": "RGBA", "data": bytes([1, 2, 3, 9, 4, 5, 6, 8])}
    assert editing.layer_pixels(rgba, None, "BGRA") == bytes([3, 2, 1, 9, 6, 5, 4, 8])
    with pytest.raises(ValueError, match="alpha"):
        editing.layer_pixels(image, None)
    with pytest.raises(ValueError, match="alpha"):
        editing.layer_pixels(image, {**alpha, "width": 3, "data": bytes(3)})


def test_round_trip_editor_pixels_to_layer_and_back():
    # what the plugin reads (BGRA) and what it writes (BGRA) agree on channel order
    bgra = bytes(range(40, 40 + 4 * 6))
    bgra = bytes(b if i % 4 != 3 else 255 for i, b in enumerate(bgra))
    image = editing.image_from_pixels(bgra, 3, 2, "BGRA")
    alpha = {"width": 3, "height": 2, "mode": "L", "data": bytes([255]) * 6}
    assert editing.layer_pixels(image, alpha, "BGRA") == bgra


def test_layer_names():
    assert editing.layer_name("a red ball", 12) == "SmartBrush: a red ball (seed 12)"
    long = "a very detailed oil painting of a small brown dog sitting on a wooden bench at sunset"
    name = editing.layer_name(long, 3)
    short = name.removeprefix("SmartBrush: ").removesuffix(" (seed 3)")
    assert short == "a very detailed oil painting of a small…"
    assert len(short) <= editing.PROMPT_CHARS_IN_NAME
    assert (
        editing.short_prompt("x" * 100).endswith("…") and len(editing.short_prompt("x" * 100)) == 40
    )
    assert editing.layer_name("two\nlines", 1) == "SmartBrush: two lines (seed 1)"
    assert editing.group_name("a ball", 4) == "SmartBrush: a ball (4 variations)"


def test_user_messages_never_show_a_traceback():
    class SmartBrushError(Exception):
        pass

    class DaemonUnavailable(SmartBrushError):
        pass

    class DaemonError(SmartBrushError):
        pass

    down = editing.user_message(DaemonUnavailable("timeout"), "tcp://127.0.0.1:5555")
    assert "not answering at tcp://127.0.0.1:5555" in down
    assert editing.user_message(DaemonError("out of memory")) == (
        "The SmartBrush daemon reported an error: out of memory"
    )
    assert editing.user_message(NoSelection(editing.NO_SELECTION_MESSAGE)).startswith("Nothing")
    assert "Traceback" not in editing.user_message(RuntimeError("boom"))
    assert "smartbrush serve" in editing.daemon_down_message("tcp://127.0.0.1:1")


def test_an_endpoint_that_is_not_an_address_is_named_before_anything_is_sent():
    for good in ("", "tcp://127.0.0.1:5737", "tcp://*:5737", "tcp://[::1]:5737", "ipc:///tmp/sb"):
        assert editing.endpoint_problem(good) is None, good
    for bad in ("b", "tcp://127.0.0.1:5737b", "localhost:5737", "tcp://host"):
        problem = editing.endpoint_problem(bad)
        assert problem and repr(bad) in problem and "Daemon > Endpoint" in problem

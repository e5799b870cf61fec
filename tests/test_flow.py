"""The editor flow (smartbrush.wire.flow), written once for Krita and GIMP, on fake canvases and a real
daemon serving the tiny model. The real editors run the same code in test_krita.py / test_gimp.py."""

from __future__ import annotations

import pytest
from daemon_helpers import running_daemon

from smartbrush.runtime.jobs import accept_job, run_job
from smartbrush.testing import free_port
from smartbrush.wire import editing, flow, protocol
from smartbrush.wire.client import DaemonUnavailable, EndpointError, FillCancelled
from smartbrush.wire.editing import EditingError, FillOptions, NoSelection, Rect

WIDTH, HEIGHT = 96, 80
SELECTED = Rect(30, 20, 24, 20)


class FakeCanvas:
    """An editor document in memory: 4-byte pixels in `pixel_order`, a 1-byte selection, a layer
    stack (a list of dicts, top first) that add_layers changes in one go."""

    def __init__(self, pixel_order: str = "BGRA", selection: Rect | None = SELECTED):
        self.pixel_order = pixel_order
        self.pixels = bytes(
            value
            for y in range(HEIGHT)
            for x in range(WIDTH)
            for value in (x * 2 % 256, y * 3 % 256, 128, 255)
        )
        self.selection = bytearray(WIDTH * HEIGHT)
        if selection is not None:
            for y in range(selection.y, selection.bottom):
                start = y * WIDTH + selection.x
                self.selection[start : start + selection.width] = b"\xff" * selection.width
        self.stack: list[dict] = [{"name": "Background"}]
        self.reads: list[Rect] = []

    def size(self) -> tuple[int, int]:
        return WIDTH, HEIGHT

    def selection_bounds(self) -> Rect | None:
        return editing.mask_bounds(bytes(self.selection), WIDTH, HEIGHT)

    def read_selection(self, rect: Rect) -> bytes:
        return b"".join(
            bytes(self.selection[y * WIDTH + rect.x : y * WIDTH + rect.right])
            for y in range(rect.y, rect.bottom)
        )

    def read_visible(self, rect: Rect) -> bytes:
        self.reads.append(rect)
        return b"".join(
            self.pixels[(y * WIDTH + rect.x) * 4 : (y * WIDTH + rect.right) * 4]
            for y in range(rect.y, rect.bottom)
        )

    def add_layers(self, rect: Rect, layers: list[flow.NewLayer], group: str | None) -> list:
        added = [{"name": layer.name, "rect": rect, "layer": layer} for layer in layers]
        self.stack[:0] = [{"name": group, "children": added}] if group else added
        return added


@pytest.fixture(scope="module")
def endpoint(tiny_pixel_pipeline):
    with running_daemon(tiny_pixel_pipeline) as daemon:
        yield daemon.endpoint


def test_prepare_reads_the_selection_with_context_in_the_canvas_pixel_order():
    canvas = FakeCanvas("RGBA")
    prepared = flow.prepare(canvas, FillOptions("a red ball", seed=5))
    padding = editing.context_padding(24, 20)  # 32: clamped to the canvas on the left and top
    left, top = max(0, 30 - padding), max(0, 20 - padding)
    right, bottom = min(WIDTH, 54 + padding), min(HEIGHT, 40 + padding)
    side = max(right - left, bottom - top)  # then a square, as far as the canvas goes
    assert prepared.context == Rect(left, top, side, min(side, HEIGHT - top))
    request = prepared.request
    assert request["prompt"] == "a red ball" and request["seed"] == 5
    image = request["image"]
    assert (image["width"], image["height"], image["mode"]) == (
        prepared.context.width,
        prepared.context.height,
        "RGB",
    )
    # the first pixel is the canvas pixel at the context's corner, R and G where RGBA put them
    x, y = prepared.context.x, prepared.context.y
    assert tuple(image["data"][:3]) == (x * 2 % 256, y * 3 % 256, 128)
    assert max(request["mask"]["data"]) == 255


@pytest.mark.parametrize("feather", [0, 6], ids=["hard", "feathered"])
def test_an_editor_fill_is_the_fill_of_the_whole_image(tiny_pixel_pipeline, feather):
    """Issue 33, item 12: one context rule. The editor sends only the context around the selection;
    the pipeline given the whole image (as `smartbrush fill` does) crops the same pixels, so the same
    box and seed paint the same fill, pixel for pixel."""
    import numpy as np
    from PIL import Image, ImageFilter

    canvas = FakeCanvas("RGBA", selection=Rect(40, 30, 30, 14))  # a square context needs more rows
    if feather:
        soft = Image.frombytes("L", (WIDTH, HEIGHT), bytes(canvas.selection))
        canvas.selection = bytearray(soft.filter(ImageFilter.GaussianBlur(feather)).tobytes())
    prepared = flow.prepare(canvas, FillOptions("a red ball", seed=3, steps=2))
    job = accept_job(protocol.validate_fill({"type": protocol.FILL, **prepared.request}))
    sent = run_job(tiny_pixel_pipeline, job)["images"][0]
    c = prepared.context
    from_editor = np.frombuffer(sent["data"], np.uint8).reshape(c.height, c.width, 3)

    whole = np.frombuffer(canvas.pixels, np.uint8).reshape(HEIGHT, WIDTH, 4)[..., :3]
    mask = np.frombuffer(bytes(canvas.selection), np.uint8).reshape(HEIGHT, WIDTH)
    out = tiny_pixel_pipeline(
        whole, mask, "a red ball", precision="auto", seed=3, num_inference_steps=2
    )
    from_cli = np.asarray(out.images[0])[c.y : c.bottom, c.x : c.right]
    assert np.array_equal(from_editor, from_cli)
    assert not np.array_equal(from_cli, whole[c.y : c.bottom, c.x : c.right])  # it did fill


def test_prepare_refuses_no_selection_and_an_empty_prompt_before_reading_pixels():
    canvas = FakeCanvas(selection=None)
    with pytest.raises(NoSelection, match="Nothing is selected"):
        flow.prepare(canvas, FillOptions("a cat"))
    with pytest.raises(EditingError, match="Describe what to paint"):
        flow.prepare(FakeCanvas(), FillOptions("   "))
    with pytest.raises(EditingError, match="Steps must be an integer in \\[1, 200\\]"):
        flow.prepare(FakeCanvas(), FillOptions("a cat", steps=0))
    assert canvas.reads == []


@pytest.mark.parametrize("order", ["BGRA", "RGBA"])
def test_a_fill_becomes_one_named_layer_transparent_outside_the_selection(endpoint, order):
    canvas = FakeCanvas(order)
    [layer] = flow.fill(canvas, FillOptions("a red ball", seed=7, steps=2), endpoint=endpoint)
    assert canvas.stack[0] is layer and layer["name"] == "SmartBrush: a red ball (seed 7)"
    where, new = layer["rect"], layer["layer"]
    assert len(new.pixels) == where.width * where.height * 4
    alpha = new.pixels[3::4]  # A is the fourth byte in both orders
    selection = canvas.read_selection(where)
    assert all(a == 0 for a, s in zip(alpha, selection, strict=True) if s == 0)
    assert sum(1 for a, s in zip(alpha, selection, strict=True) if s and a) > 0
    # the layer is cropped to what was painted: inside the selection, opaque pixels on every edge
    assert where.x >= SELECTED.x and where.right <= SELECTED.right
    assert where.y >= SELECTED.y and where.bottom <= SELECTED.bottom
    rows = [alpha[y * where.width : (y + 1) * where.width] for y in range(where.height)]
    assert any(rows[0]) and any(rows[-1])
    assert any(row[0] for row in rows) and any(row[-1] for row in rows)
    # the object's predicted shape comes with it, for "select the painted object"
    assert len(new.object_mask) == where.width * where.height


def test_variations_go_into_one_group_the_first_on_top_and_visible(endpoint):
    canvas = FakeCanvas()
    layers = flow.fill(
        canvas, FillOptions("a cat", seed=3, steps=2, variations=2), endpoint=endpoint
    )
    group = canvas.stack[0]
    assert group["name"] == "SmartBrush: a cat (2 variations)"
    assert [entry["name"] for entry in group["children"]] == [
        "SmartBrush: a cat (seed 3)",
        "SmartBrush: a cat (seed 4)",
    ]
    assert [entry["layer"].visible for entry in layers] == [True, False]


def test_remove_sends_an_empty_prompt_and_names_the_layer_removed(endpoint):
    canvas = FakeCanvas()
    prepared = flow.prepare(canvas, FillOptions("ignored", remove=True, seed=2, steps=2))
    assert prepared.request["prompt"] == ""
    # any model removes (the tiny test model was never trained for it): the hole filled from around it
    flow.place(canvas, prepared, flow.send(prepared, endpoint=endpoint))
    assert [layer["name"] for layer in canvas.stack] == [
        "SmartBrush: removed (seed 2)",
        "Background",
    ]


def test_remove_without_a_selection_asks_for_the_object_to_remove():
    canvas = FakeCanvas(selection=None)
    with pytest.raises(NoSelection) as caught:
        flow.prepare(canvas, FillOptions("", remove=True))
    assert str(caught.value) == editing.NO_SELECTION_TO_REMOVE_MESSAGE
    with pytest.raises(NoSelection, match="Select the area to fill first"):
        flow.prepare(canvas, FillOptions("a cat"))


def test_a_bad_answer_adds_nothing():
    canvas = FakeCanvas()
    prepared = flow.prepare(canvas, FillOptions("a cat"))
    for result in ({"images": [], "alphas": [], "seeds": []}, {"images": [{}], "seeds": [1]}):
        with pytest.raises(EditingError, match="nothing was added"):
            flow.place(canvas, prepared, result)
    small = {"width": 4, "height": 4, "mode": "RGB", "data": bytes(48)}
    alpha = {"width": 4, "height": 4, "mode": "L", "data": bytes(16)}
    with pytest.raises(EditingError, match="4x4 image .* nothing was added"):
        flow.place(canvas, prepared, {"images": [small], "alphas": [alpha], "seeds": [1]})
    context = prepared.context
    blank = {"width": context.width, "height": context.height, "mode": "L"}
    image = {**blank, "mode": "RGB", "data": bytes(context.width * context.height * 3)}
    nothing = {**blank, "data": bytes(context.width * context.height)}
    with pytest.raises(EditingError, match="painted nothing"):
        flow.place(canvas, prepared, {"images": [image], "alphas": [nothing], "seeds": [1]})
    assert canvas.stack == [{"name": "Background"}]


def test_no_daemon_is_said_within_the_connect_timeout_and_changes_nothing():
    canvas = FakeCanvas()
    down = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(DaemonUnavailable, match="within 0.5 s") as caught:
        flow.fill(canvas, FillOptions("a cat"), endpoint=down, connect_timeout=0.5)
    assert canvas.stack == [{"name": "Background"}]
    assert editing.user_message(caught.value, down) == (
        f"The SmartBrush daemon is not answering at {down}."
    )


def test_a_mistyped_endpoint_is_named_as_the_endpoint():
    with pytest.raises(EndpointError) as caught:
        flow.fill(FakeCanvas(), FillOptions("a cat"), endpoint="localhost:5737")
    message = editing.user_message(caught.value)
    assert message.startswith(
        "Check the daemon endpoint: 'localhost:5737' is not a daemon endpoint"
    )


def test_returning_false_from_on_progress_cancels_and_adds_nothing(endpoint):
    canvas = FakeCanvas()
    with pytest.raises(FillCancelled) as caught:
        flow.fill(
            canvas,
            FillOptions("a cat", steps=50),
            endpoint=endpoint,
            on_progress=lambda message: message["type"] != "progress",
        )
    assert editing.user_message(caught.value) == "Cancelled."
    assert canvas.stack == [{"name": "Background"}]


def test_no_answer_from_a_remote_or_curve_daemon_mentions_authentication():
    from smartbrush.wire.client import DaemonUnavailable as Unavailable

    local = Unavailable("no SmartBrush daemon answered at tcp://127.0.0.1:5737 within 5 s")
    assert "authentication" not in editing.user_message(local, "tcp://127.0.0.1:5737")
    remote = editing.user_message(local, "tcp://192.168.1.20:5737")
    assert "authentication may be the cause" in remote and "CURVE" in remote
    keys = Unavailable("no daemon answered ... (CURVE keys in use: check that they match)")
    assert "authentication" in editing.user_message(keys, "tcp://127.0.0.1:5737")


def test_a_large_area_gets_an_upscaling_note_before_and_after_the_fill(endpoint):
    assert flow.upscale_note(Rect(0, 0, 90, 60), 32) is None  # under 3x: nothing to say
    note = flow.upscale_note(Rect(0, 0, 400, 300), 32, selection=Rect(100, 80, 200, 140))
    # said of the selection the user made, not of the context area around it that we send
    assert note and "works at 32 px" in note and "200x140 selection" in note and "12x" in note
    assert "400x300" not in note
    # how it is enlarged: the detail stage keeps edges crisp; resampled (Off), it is soft
    assert "detail stage" in note and "soft" not in note
    soft = flow.upscale_note(Rect(0, 0, 400, 300), 32, Rect(100, 80, 200, 140), detail="off")
    assert soft and "soft" in soft and "detail stage" not in soft
    assert flow.upscale_note(Rect(0, 0, 400, 300), None) is None  # unknown yet
    # the daemon says what its model works at, so an editor can warn from then on
    result = flow.send(flow.prepare(FakeCanvas(), FillOptions("a cat", steps=1)), endpoint=endpoint)
    assert result["resolution"] == 32
    # a removal works at the photo's own resolution: nothing is upscaled, nothing to say
    fill = flow.prepare(FakeCanvas(), FillOptions("a cat"))
    removal = flow.prepare(FakeCanvas(), FillOptions("", remove=True))
    assert fill.selection == SELECTED  # what the user selected, inside the context sent
    note = flow.upscale_note_for(fill, 8)
    assert note == flow.upscale_note(fill.context, 8, SELECTED) is not None
    assert f"{SELECTED.width}x{SELECTED.height} selection" in note
    assert flow.upscale_note_for(removal, 8) is None


def test_a_fill_is_checked_once_where_it_is_built_and_once_where_it_arrives(endpoint, monkeypatch):
    calls = []
    for name in ("validate_fill", "check_mask_selected"):
        real = getattr(protocol, name)
        monkeypatch.setattr(
            protocol, name, lambda *args, real=real, name=name: calls.append(name) or real(*args)
        )
    flow.fill(FakeCanvas(), FillOptions("a cat", seed=1, steps=1), endpoint=endpoint)
    # the editor's request (its mask: mask_from_selection), then the daemon; not the client between
    assert calls == ["validate_fill", "validate_fill", "check_mask_selected"]


def test_the_flow_brings_back_the_pixels_of_the_same_job_run_here(endpoint, tiny_pixel_pipeline):
    prepared = flow.prepare(FakeCanvas(), FillOptions("a red ball", seed=7, steps=2, variations=2))
    sent = flow.send(prepared, endpoint=endpoint)
    here = run_job(tiny_pixel_pipeline, accept_job({"type": "fill", **prepared.request}))
    for key in ("images", "alphas", "masks"):
        assert [image["data"] for image in sent[key]] == [image["data"] for image in here[key]]
    assert (sent["seeds"], sent["precision"]) == (here["seeds"], here["precision"])

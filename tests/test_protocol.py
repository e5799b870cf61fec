"""The wire protocol on its own: pure Python, strict limits, clear errors."""

from __future__ import annotations

import io
import math
import os
import socket
import subprocess
import sys

import msgpack
import pytest
from daemon_helpers import REPO, ellipse_mask, sample_image
from hypothesis import given, settings
from hypothesis import strategies as st
from needs import skip_unless_ci
from PIL import Image

from smartbrush.wire import protocol
from smartbrush.wire.protocol import ProtocolError, validate_fill


def fill(**fields):
    return {"image": sample_image(), "box": [1, 2, 10, 8], "prompt": "a cat", **fields}


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 200).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pure_python_modules_import_without_torch_numpy_or_pillow():
    code = (
        "import sys; import smartbrush.wire.protocol, smartbrush.wire.client; "
        "bad = {'torch', 'numpy', 'PIL', 'diffusers'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_system_python_can_use_protocol_and_client():
    """The plugins run on Debian's python3 with python3-zmq and python3-msgpack only."""
    system_python = "/usr/bin/python3"
    code = (
        "import sys; sys.path.insert(0, '.'); import smartbrush.wire.protocol as p, smartbrush.wire.client as c; "
        "m = p.decode(p.encode(p.hello_message('krita'))); assert m['protocol_version'] == p.PROTOCOL_VERSION; "
        "c.Client('tcp://127.0.0.1:1', timeout=0.1).close()"
    )
    try:
        subprocess.run([system_python, "-c", code], cwd=REPO, check=True, capture_output=True)
    except FileNotFoundError:
        skip_unless_ci("no system python3")
    except subprocess.CalledProcessError as error:
        if b"No module named 'zmq'" in error.stderr or b"No module named 'msgpack'" in error.stderr:
            skip_unless_ci("system python3 lacks python3-zmq/python3-msgpack")
        raise AssertionError(error.stderr.decode()) from None


def test_encode_decode_round_trip_keeps_bytes_and_strings_apart():
    message = {"type": "fill", "prompt": "ä cat", "image": {"data": b"\x00\xff"}, "seed": 2**63 - 1}
    assert protocol.decode(protocol.encode(message)) == message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        msgpack.packb([1, 2, 3]),
        msgpack.packb({"no_type": 1}),
        msgpack.packb({"type": 5}),
        msgpack.packb({1: "integer keys"}),
        msgpack.packb({"type": "fill"}) + b"trailing",
        msgpack.packb(msgpack.ExtType(1, b"x")),
        msgpack.packb({"type": "fill", "x": msgpack.ExtType(5, b"abc")}),
        b"\x91" * 100_000,  # deeply nested arrays
    ],
)
def test_decode_rejects_malformed_messages(data):
    with pytest.raises(ProtocolError) as error:
        protocol.decode(data)
    assert error.value.code == protocol.BAD_MESSAGE


def test_decode_rejects_oversized_messages_before_unpacking():
    with pytest.raises(ProtocolError, match="over the 100 limit"):
        protocol.decode(b"\x00" * 101, max_bytes=100)
    # a bin that declares more bytes than the message can hold
    with pytest.raises(ProtocolError):
        protocol.decode(b"\x81\xa4type\xc6\xff\xff\xff\xff")


def test_validate_fill_fills_in_defaults():
    request = validate_fill(fill())
    assert request["precision"] == "auto"
    assert request["steps"] == 20 and request["variations"] == 1 and request["seed"] is None
    assert request["mask"] is None and request["box"] == [1, 2, 10, 8]
    assert request["image"]["width"] == 64
    assert request["detail"] == "fast"  # measured: benchmarks/canvas_scale.py
    assert validate_fill(fill(detail="off"))["detail"] == "off"


def test_validate_fill_accepts_a_soft_mask_and_png_images():
    mask = ellipse_mask()
    mask["data"] = bytes(value * 200 // 255 for value in mask["data"])  # soft values are allowed
    request = validate_fill(
        {"image": {"png": png_bytes(64, 48)}, "mask": mask, "prompt": "x", "precision": 0.5}
    )
    assert request["image"]["width"] == 64 and request["precision"] == 0.5
    assert request["mask"]["mode"] == "L"


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"precision": math.nan}, protocol.BAD_REQUEST, "precision"),
        ({"precision": 1.5}, protocol.BAD_REQUEST, "precision"),
        ({"precision": "tight"}, protocol.BAD_REQUEST, "precision"),
        ({"steps": 0}, protocol.BAD_REQUEST, "steps"),
        ({"steps": True}, protocol.BAD_REQUEST, "steps"),
        ({"steps": 2.5}, protocol.BAD_REQUEST, "steps"),
        ({"steps": protocol.MAX_STEPS + 1}, protocol.BAD_REQUEST, "steps"),
        ({"guidance": math.inf}, protocol.BAD_REQUEST, "guidance"),
        ({"seed": -1}, protocol.BAD_REQUEST, "seed"),
        ({"seed": 2**64 - 1}, protocol.BAD_REQUEST, "seed"),
        ({"variations": 0}, protocol.BAD_REQUEST, "variations"),
        ({"variations": protocol.MAX_VARIATIONS + 1}, protocol.BAD_REQUEST, "variations"),
        ({"prompt": None}, protocol.BAD_REQUEST, "prompt"),
        ({"prompt": "x" * (protocol.MAX_PROMPT_CHARS + 1)}, protocol.BAD_REQUEST, "prompt"),
        ({"prompt": b"bytes"}, protocol.BAD_REQUEST, "prompt"),
        ({"negative_prompt": 3}, protocol.BAD_REQUEST, "negative_prompt"),
        ({"box": [0, 0, 0, 5]}, protocol.BAD_REQUEST, "box"),
        ({"box": [60, 0, 10, 5]}, protocol.BAD_REQUEST, "inside"),
        ({"box": [1, 2, 3]}, protocol.BAD_REQUEST, "box"),
        ({"mask": ellipse_mask()}, protocol.BAD_REQUEST, "exactly one of mask and box"),
        ({"seeed": 4}, protocol.BAD_REQUEST, "seeed"),
        ({"preview_interval": -1}, protocol.BAD_REQUEST, "preview_interval"),
        ({"detail": "sharp"}, protocol.BAD_REQUEST, "detail must be one of off, fast, best"),
        ({"detail": None}, protocol.BAD_REQUEST, "detail"),
    ],
)
def test_validate_fill_names_the_bad_field(fields, code, words):
    with pytest.raises(ProtocolError, match=words) as error:
        validate_fill(fill(**fields))
    assert error.value.code == code


def test_validate_fill_checks_declared_sizes_before_anything_else():
    huge = {"width": 1 << 20, "height": 1 << 20, "mode": "RGB", "data": b""}
    with pytest.raises(ProtocolError) as error:
        validate_fill(fill(image=huge, box=[0, 0, 1, 1]))
    assert error.value.code == protocol.TOO_LARGE
    # a PNG whose header declares a huge image is refused from its header
    header = bytearray(png_bytes(4, 4))
    header[16:24] = (100_000).to_bytes(4, "big") * 2
    with pytest.raises(ProtocolError) as error:
        validate_fill(fill(image={"png": bytes(header)}, box=[0, 0, 1, 1]))
    assert error.value.code == protocol.TOO_LARGE


def test_validate_fill_rejects_wrong_buffers():
    short = sample_image()
    short["data"] = short["data"][:-1]
    with pytest.raises(ProtocolError, match="needs 9216") as error:
        validate_fill(fill(image=short))
    assert error.value.code == protocol.BAD_IMAGE
    with pytest.raises(ProtocolError, match="mask is 32x48 but image is 64x48"):
        validate_fill(fill(box=None, mask=ellipse_mask(32, 48)))
    with pytest.raises(ProtocolError, match="mask.mode"):
        validate_fill(fill(box=None, mask=sample_image()))
    with pytest.raises(ProtocolError, match="not a PNG"):
        validate_fill(fill(image={"png": b"GIF89a" + bytes(40)}))


def test_too_many_output_pixels_are_refused():
    side = 4096
    big = {"width": side, "height": side, "mode": "L", "data": bytes(side * side)}
    with pytest.raises(ProtocolError) as error:
        validate_fill(fill(image=big, variations=protocol.MAX_VARIATIONS))
    assert error.value.code == protocol.TOO_LARGE


def test_hello_and_cancel_validation():
    protocol.validate_hello(protocol.hello_message("test"))
    with pytest.raises(ProtocolError) as error:
        protocol.validate_hello({"type": "hello", "protocol_version": 99})
    assert error.value.code == protocol.VERSION_MISMATCH
    assert "99" in error.value.message
    assert protocol.validate_cancel({"job_id": "abc"}) == "abc"
    with pytest.raises(ProtocolError):
        protocol.validate_cancel({"job_id": 5})


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from([*protocol.FILL_FIELDS, "width", "png", "junk"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(FIELDS, JSONISH, max_size=8), st.dictionaries(FIELDS, JSONISH, max_size=3))
def test_validate_fill_only_ever_raises_protocol_errors(garbage, overrides):
    """Whatever arrives, validation answers with a ProtocolError or a normalised request."""
    for candidate in (garbage, {**fill(), **overrides}):
        try:
            request = validate_fill(candidate)
        except ProtocolError as error:
            assert error.code in (protocol.BAD_REQUEST, protocol.BAD_IMAGE, protocol.TOO_LARGE)
            assert error.message
        else:
            assert set(request) == {
                "type",
                "request_id",
                "image",
                "prompt",
                *protocol.FILL_DEFAULTS,
            }
            assert protocol.decode(protocol.encode(request))["type"] == "fill"


def test_an_empty_raw_mask_is_refused_by_the_protocols_rule_without_a_second_pass():
    mask = ellipse_mask()
    mask["data"] = bytes(min(value, 127) for value in mask["data"])  # nothing selected by 50 %
    # validate_fill reads no pixel: the mask's are checked once where it is made or received
    request = validate_fill({"image": {"png": png_bytes(64, 48)}, "mask": mask, "prompt": "x"})
    with pytest.raises(ProtocolError, match="mask is empty") as error:
        protocol.check_mask_selected(request["mask"])
    assert error.value.code == protocol.BAD_REQUEST
    protocol.check_mask_selected(ellipse_mask())  # selected pixels: fine
    protocol.check_mask_selected(None)  # a box
    protocol.check_mask_selected({"png": png_bytes(64, 48, "L")})  # known once decoded


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("tcp://127.0.0.1:5737", True),
        ("tcp://127.0.0.1", True),
        ("tcp://127.45.6.7:5737", True),  # all of 127.0.0.0/8
        ("tcp://[::1]:5737", True),
        ("tcp://::1:5737", True),
        ("tcp://localhost:5737", True),
        ("tcp://lo:5737", True),  # Linux's loopback interface, for a bind
        ("ipc:///tmp/sb", True),
        ("ipc://@abstract", True),
        ("inproc://smartbrush", True),
        (" tcp://127.0.0.1:5737 ", True),  # as typed into a settings field
        ("tcp://*:5737", False),
        ("tcp://0.0.0.0:5737", False),
        ("tcp://[::]:5737", False),
        ("tcp://192.168.1.4:5737", False),
        ("tcp://128.0.0.1:5737", False),
        ("tcp://eth0:1", False),
        ("tcp://127.evil.example:5737", False),  # a host name that only starts like loopback
        ("tcp://[::ffff:127.0.0.1]:5737", False),  # IPv4-mapped: not ::1 nor 127.0.0.0/8
        ("tcp://[fe80::1%eth0]:5737", False),
        ("tcp://127.0.0.1;192.168.1.4:5737", False),  # a source address: not one host
        ("tcp://[::1:5737", False),  # malformed
        ("udp://127.0.0.1:5737", False),
        ("127.0.0.1:5737", False),  # no scheme
        ("localhost:5737", False),
        ("", False),
    ],
)
def test_the_one_loopback_rule(endpoint, local):
    assert protocol.is_local_endpoint(endpoint) is local


@pytest.mark.parametrize(
    "endpoint, path",
    [
        ("ipc:///run/user/1000/smartbrush/smartbrushd.sock", "/run/user/1000/smartbrush/smartbrushd.sock"),
        (" ipc:///tmp/sb ", "/tmp/sb"),  # as typed into a settings field
        ("ipc://@smartbrush", None),  # Linux's abstract sockets: no file, no owner
        ("tcp://127.0.0.1:5737", None),
        ("ipc://", None),
    ],
)  # fmt: skip
def test_ipc_path(endpoint, path):
    assert protocol.ipc_path(endpoint) == path


def test_a_daemon_of_another_user_on_this_machine_is_named():
    here = socket.gethostname()
    mine = {"uid": os.getuid(), "user": "me", "host": here}
    assert protocol.daemon_owner_problem(mine, "tcp://127.0.0.1:5737") is None
    theirs = {"uid": os.getuid() + 1, "user": "bob", "host": here}
    problem = protocol.daemon_owner_problem(theirs, "tcp://127.0.0.1:5737")
    assert problem is not None
    assert problem.startswith(
        "The daemon at tcp://127.0.0.1:5737 is not yours (it runs as user bob"
    )
    assert "\n" not in problem
    # another machine's daemon (a tunnel, a container) was meant; an older daemon does not say
    assert protocol.daemon_owner_problem({**theirs, "host": "gpu-box"}, "tcp://x:1") is None
    assert protocol.daemon_owner_problem({"model": "demo"}, "tcp://127.0.0.1:5737") is None

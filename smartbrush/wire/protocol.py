"""The SmartBrush wire protocol: message names, fields, limits, encoding and request validation.

Pure Python on purpose (only `msgpack`, no torch, no numpy, no Pillow): this module is vendored into the
Krita and GIMP plugins, which run on the system python3 with python3-msgpack and python3-zmq only.
docs/protocol.md describes the protocol for people; this module is the normative version.

Transport: a client DEALER socket talks to the daemon's ROUTER socket. Every message is ONE ZeroMQ frame
holding one msgpack map with a "type" field. Images are maps {"width", "height", "mode", "data"} with raw
8-bit pixels, row-major, no padding ("RGB": 3 bytes a pixel, "RGBA": 4, "L": 1). Requests may send
{"png": bytes} instead; replies always use raw images.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import struct
import tempfile
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1

# 5737 spells "SB" on a phone keypad ... nearly; above all it is not used by common local AI tools
# (7860 Gradio, 8188 ComfyUI, 5000/8000 web servers, 11434 Ollama).
DEFAULT_PORT = 5737
# The loopback TCP address: any local account can reach it, so it is the default only where ZeroMQ has
# no Unix sockets (Windows); elsewhere the default is the user's own socket, `default_endpoint()`.
LOOPBACK_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_PORT}"
SOCKET_NAME = "smartbrushd.sock"
ENDPOINT_ENV = "SMARTBRUSH_ENDPOINT"
CURVE_DIR_ENV = "SMARTBRUSH_CURVE_DIR"
# The daemon's promise: every waiting or running job hears from it at least this often, so a client
# takes a longer silence for a daemon that is gone. Documented in docs/protocol.md.
KEEPALIVE_SECONDS = 2.0

# --- message types ----------------------------------------------------------------------------------
# client -> daemon
HELLO = (
    "hello"  # {"protocol_version": int, "client": str}          -> INFO (or ERROR version_mismatch)
)
INFO = "info"  # {}                                                -> INFO
FILL = "fill"  # see FILL_FIELDS                                   -> ACCEPTED, PROGRESS*, RESULT|ERROR|CANCELLED
CANCEL = "cancel"  # {"job_id": str}                                  -> CANCELLED (to the job's client) + OK
STATUS = "status"  # {}                                                -> STATUS
REQUEST_TYPES = (HELLO, INFO, FILL, CANCEL, STATUS)

# daemon -> client (INFO and STATUS above are also reply types)
ACCEPTED = "accepted"  # {"job_id", "queue_position", "sequence"}
QUEUED = "queued"  # {"job_id", "queue_position"}: keep-alive while the job waits
PROGRESS = "progress"  # {"job_id", "step", "total", "preview": image | None}
RESULT = "result"  # {"job_id", "images", "alphas", "masks", "seeds", "precision", "run_index", "timings"}
ERROR = "error"  # {"code", "message", "job_id": str | None}
CANCELLED = "cancelled"  # {"job_id"}
OK = "ok"  # {}: acknowledges a CANCEL request
FINAL_REPLY_TYPES = (RESULT, ERROR, CANCELLED)

# Every request may carry "request_id" (str or int, <= 64 chars); every reply to it echoes it back, so a
# client can ignore stale replies to requests it gave up on.

# --- error codes ------------------------------------------------------------------------------------
BAD_MESSAGE = "bad_message"  # not msgpack, not a map, over a msgpack limit
BAD_REQUEST = "bad_request"  # a field is missing, has the wrong type or is out of range
UNKNOWN_TYPE = "unknown_type"
TOO_LARGE = "too_large"  # an image over MAX_PIXELS (checked before decoding)
BAD_IMAGE = "bad_image"  # a PNG that does not decode, a buffer of the wrong length
VERSION_MISMATCH = "version_mismatch"
QUEUE_FULL = "queue_full"
UNKNOWN_JOB = "unknown_job"
SHUTTING_DOWN = "shutting_down"
OUT_OF_MEMORY = "out_of_memory"
INTERNAL = "internal"

# --- limits -----------------------------------------------------------------------------------------
MAX_PIXELS = 4096 * 4096  # per image (input image, mask)
MAX_OUTPUT_PIXELS = 4 * MAX_PIXELS  # variations * width * height of one fill
MAX_PROMPT_CHARS = 1000
MAX_STEPS = 200
MAX_VARIATIONS = 8
MAX_GUIDANCE = 50.0
MAX_SEED = 2**63 - 1
MAX_REQUEST_ID_CHARS = 64
MAX_PREVIEW_SIDE = 256  # previews are downscaled to fit this box
# a fill with an RGBA image and an L mask at MAX_PIXELS, plus room for the other fields
MAX_MESSAGE_BYTES = 5 * MAX_PIXELS + (1 << 20)
# a result: per variation an RGB image, an L alpha and an L mask
MAX_REPLY_BYTES = 5 * MAX_OUTPUT_PIXELS + (1 << 20)

CHANNELS = {"RGB": 3, "RGBA": 4, "L": 1}
MASK_SELECTED = 128  # a mask (or selection) pixel of this value or more is selected
PRECISION_AUTO = "auto"
DETAILS = ("off", "fast", "best")  # the `detail` option: smartbrush.method.detail


@dataclass(frozen=True)
class FillOption:
    """One tunable field of a fill request: the CLI's flags, the Krita docker's widgets, GIMP's
    procedure arguments and smartbrush.wire.editing.FillOptions are all made from these."""

    name: str
    kind: type  # int, float or str
    default: Any
    low: float = 0  # the range of a number (unused for str)
    high: float = 0
    help: str = ""
    choices: tuple[str, ...] = ()  # a str option's allowed values (empty: free text)


FILL_OPTIONS: dict[str, FillOption] = {
    option.name: option
    for option in (
        FillOption("negative_prompt", str, None, help="what to avoid (may be empty)"),
        FillOption(
            "precision", float, PRECISION_AUTO, 0.0, 1.0,
            '0 = follow the mask exactly .. 1 = anywhere in its box; "auto": a rectangle means 1, '
            "otherwise the soft edge's feather decides",
        ),
        FillOption("steps", int, 20, 1, MAX_STEPS, "denoising steps"),
        FillOption(
            "guidance", float, None, 0.0, MAX_GUIDANCE,
            "how strongly to follow the prompt; unset: the model's own default",
        ),
        FillOption("seed", int, None, 0, MAX_SEED, "random seed; unset: a new one, reported back"),
        FillOption("variations", int, 1, 1, MAX_VARIATIONS, "how many results"),
        FillOption(
            "preview_interval", int, 0, 0, MAX_STEPS, "send a preview every N steps; 0: none"
        ),
        FillOption(
            "detail", str, "fast",
            help="how a fill larger than the model's resolution is brought to size: off = resampled, "
            "fast or best = a super-resolution model (Real-ESRGAN)",
            choices=DETAILS,
        ),
    )
}  # fmt: skip
# the options check_option checks (the prompt texts and precision have checks of their own)
CHECKED_OPTIONS = tuple(
    name for name in FILL_OPTIONS if name not in ("negative_prompt", "precision")
)
FILL_DEFAULTS: dict[str, Any] = {
    "mask": None,
    "box": None,
    **{name: option.default for name, option in FILL_OPTIONS.items()},
}
FILL_FIELDS = ("type", "request_id", "image", "prompt", *FILL_DEFAULTS)

LIMITS = {
    "max_pixels": MAX_PIXELS,
    "max_output_pixels": MAX_OUTPUT_PIXELS,
    "max_prompt_chars": MAX_PROMPT_CHARS,
    "max_steps": MAX_STEPS,
    "max_variations": MAX_VARIATIONS,
    "max_guidance": MAX_GUIDANCE,
    "max_message_bytes": MAX_MESSAGE_BYTES,
    "max_preview_side": MAX_PREVIEW_SIDE,
}


class ProtocolError(ValueError):
    """A message that breaks the protocol. `code` is one of the error codes above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- encoding ---------------------------------------------------------------------------------------
def encode(message: dict[str, Any]) -> bytes:
    """A message map as msgpack bytes (str as msgpack str, bytes as msgpack bin)."""
    import msgpack  # here, not at the top: the fields and limits are read without msgpack (GIMP)

    data = msgpack.packb(message, use_bin_type=True)
    assert data is not None  # None only when packing into a stream
    return data


def decode(data: bytes | memoryview, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """msgpack bytes -> a message map with a str "type"; anything else raises ProtocolError.

    The unpacker limits keep a hostile message from allocating more than its own size: no ext types,
    no bins/strings/arrays/maps larger than the message could hold.
    """
    if len(data) > max_bytes:
        raise ProtocolError(
            BAD_MESSAGE, f"message of {len(data)} bytes is over the {max_bytes} limit"
        )
    import msgpack

    try:
        message = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max(MAX_PROMPT_CHARS * 4, 1 << 16),
            max_array_len=1 << 12,
            max_map_len=64,
            max_ext_len=0,
        )
    except Exception as error:  # msgpack raises several unrelated types for corrupt input
        raise ProtocolError(BAD_MESSAGE, f"not a msgpack message: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError(BAD_MESSAGE, "a message must be a msgpack map")
    if not isinstance(message.get("type"), str):
        raise ProtocolError(BAD_MESSAGE, 'a message needs a string "type" field')
    return message


def request_id_of(message: Any) -> str | int | None:
    """The request_id to echo back, or None when the message has no usable one."""
    if isinstance(message, dict):
        request_id = message.get("request_id")
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            return request_id if abs(request_id) <= MAX_SEED else None
        if isinstance(request_id, str) and len(request_id) <= MAX_REQUEST_ID_CHARS:
            return request_id
    return None


def error_message(
    code: str, message: str, request_id: Any = None, job_id: str | None = None
) -> dict:
    return {
        "type": ERROR,
        "code": code,
        "message": message,
        "request_id": request_id,
        "job_id": job_id,
    }


# --- images -----------------------------------------------------------------------------------------
def raw_image(width: int, height: int, mode: str, data: bytes) -> dict[str, Any]:
    """An image map with raw 8-bit pixels (rows top to bottom, no padding)."""
    return {"width": width, "height": height, "mode": mode, "data": bytes(data)}


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG header, read without decoding, so the pixel limit applies first."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ProtocolError(BAD_IMAGE, "not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_image(value: Any, name: str, modes: tuple[str, ...] = ("RGB", "RGBA", "L")) -> dict:
    """Validate an image map (raw or PNG) against the limits, without decoding pixels.

    Returns the map with only the known fields; for PNG adds the declared "width"/"height".
    """
    if not isinstance(value, dict):
        raise ProtocolError(BAD_REQUEST, f"{name} must be a map with width/height/mode/data or png")
    if "png" in value:
        png = value["png"]
        if not isinstance(png, bytes):
            raise ProtocolError(BAD_REQUEST, f"{name}.png must be bytes")
        width, height = png_size(png)
        _check_size(width, height, name)
        return {"png": png, "width": width, "height": height}
    width, height, mode, data = (value.get(key) for key in ("width", "height", "mode", "data"))
    if not (isinstance(width, int) and isinstance(height, int)) or isinstance(
        width or height, bool
    ):
        raise ProtocolError(BAD_REQUEST, f"{name}.width and {name}.height must be integers")
    _check_size(width, height, name)
    if mode not in modes:
        raise ProtocolError(
            BAD_REQUEST, f"{name}.mode must be one of {', '.join(modes)}, not {mode!r}"
        )
    if not isinstance(data, bytes):
        raise ProtocolError(BAD_REQUEST, f"{name}.data must be bytes")
    expected = width * height * CHANNELS[mode]
    if len(data) != expected:
        raise ProtocolError(
            BAD_IMAGE,
            f"{name}.data has {len(data)} bytes; {width}x{height} {mode} needs {expected}",
        )
    return raw_image(width, height, mode, data)


def _check_size(width: int, height: int, name: str) -> None:
    if width < 1 or height < 1:
        raise ProtocolError(BAD_REQUEST, f"{name} must be at least 1x1, not {width}x{height}")
    if width * height > MAX_PIXELS:
        raise ProtocolError(
            TOO_LARGE, f"{name} is {width}x{height}, over the limit of {MAX_PIXELS} pixels"
        )


# --- requests ---------------------------------------------------------------------------------------
def hello_message(client: str = "", request_id: Any = None) -> dict[str, Any]:
    return {
        "type": HELLO,
        "protocol_version": PROTOCOL_VERSION,
        "client": client,
        "request_id": request_id,
    }


def validate_fill(request: dict[str, Any]) -> dict[str, Any]:
    """Check a fill request and return it normalised (every field present, defaults filled in).

    Raises ProtocolError with a message that names the field. Pixel buffers are checked for size and
    length only, without reading a pixel: that the mask is not empty is checked where the mask is
    made (an editor's selection) or received (the daemon: `check_mask_selected`, then the pipeline
    for a PNG mask, known only once decoded).
    """
    if not isinstance(request, dict):
        raise ProtocolError(BAD_REQUEST, "a fill request must be a map")
    unknown = sorted(str(key) for key in request if key not in FILL_FIELDS)
    if unknown:
        raise ProtocolError(BAD_REQUEST, f"unknown field(s) in fill request: {', '.join(unknown)}")
    out: dict[str, Any] = {"type": FILL, "request_id": request_id_of(request)}
    for key, default in FILL_DEFAULTS.items():
        out[key] = request.get(key, default)

    if "image" not in request:
        raise ProtocolError(BAD_REQUEST, "a fill request needs an image")
    out["image"] = image = check_image(request["image"], "image")

    if (out["mask"] is None) == (out["box"] is None):
        raise ProtocolError(BAD_REQUEST, "a fill request needs exactly one of mask and box")
    if out["mask"] is not None:
        out["mask"] = mask = check_image(out["mask"], "mask", modes=("L",))
        if (mask["width"], mask["height"]) != (image["width"], image["height"]):
            raise ProtocolError(
                BAD_REQUEST,
                f"mask is {mask['width']}x{mask['height']} but image is "
                f"{image['width']}x{image['height']}; they must match",
            )
    else:
        out["box"] = _check_box(out["box"], image["width"], image["height"])

    # an empty prompt asks for removal: the selected object erased, the background continued
    out["prompt"] = _check_text(request.get("prompt"), "prompt", required=True)
    out["negative_prompt"] = _check_text(out["negative_prompt"], "negative_prompt", required=False)
    out["precision"] = _check_precision(out["precision"])
    for name in CHECKED_OPTIONS:
        out[name] = check_option(name, out[name])
    if out["variations"] * image["width"] * image["height"] > MAX_OUTPUT_PIXELS:
        raise ProtocolError(
            TOO_LARGE,
            f"{out['variations']} variations of {image['width']}x{image['height']} are over the "
            f"limit of {MAX_OUTPUT_PIXELS} output pixels",
        )
    return out


def check_mask_selected(mask: dict[str, Any] | None) -> None:
    """Refuse a raw mask with no selected pixel (none is MASK_SELECTED or more). A box (None) or a
    PNG mask passes: a PNG's pixels are only known once decoded, where the pipeline checks them."""
    if mask is not None and "data" in mask and max(mask["data"], default=0) < MASK_SELECTED:
        raise ProtocolError(
            BAD_REQUEST, f"mask is empty: no pixel is {MASK_SELECTED} or more (selected)"
        )


def check_option(name: str, value: Any) -> Any:
    """A fill option with a range or choices, checked against FILL_OPTIONS (None stays None where that
    is the default)."""
    option = FILL_OPTIONS[name]
    if value is None and option.default is None:
        return None
    if option.choices:
        if value not in option.choices:
            raise ProtocolError(
                BAD_REQUEST, f"{name} must be one of {', '.join(option.choices)}, not {value!r}"
            )
        return value
    if option.kind is int:
        return _check_int(value, name, int(option.low), int(option.high))
    return _check_float(value, name, option.low, option.high)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        raise ProtocolError(
            BAD_REQUEST, f"{name} must be an integer in [{low}, {high}], not {value!r}"
        )
    return value


def _check_float(value: Any, name: str, low: float, high: float) -> float:
    if not (_is_int(value) or isinstance(value, float)) or not (
        math.isfinite(value) and low <= value <= high
    ):
        raise ProtocolError(
            BAD_REQUEST, f"{name} must be a number in [{low}, {high}], not {value!r}"
        )
    return float(value)


def _check_precision(value: Any) -> float | str:
    if value == PRECISION_AUTO:
        return PRECISION_AUTO
    if not (_is_int(value) or isinstance(value, float)) or not (
        math.isfinite(value) and 0.0 <= value <= 1.0
    ):
        raise ProtocolError(
            BAD_REQUEST, f'precision must be a number in [0, 1] or "auto", not {value!r}'
        )
    return float(value)


def _check_text(value: Any, name: str, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ProtocolError(BAD_REQUEST, f"{name} must be a string")
    if len(value) > MAX_PROMPT_CHARS:
        raise ProtocolError(
            BAD_REQUEST, f"{name} has {len(value)} characters; the limit is {MAX_PROMPT_CHARS}"
        )
    return value


def _check_box(value: Any, width: int, height: int) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(map(_is_int, value)):
        raise ProtocolError(BAD_REQUEST, "box must be four integers [x, y, width, height]")
    x, y, w, h = value
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ProtocolError(
            BAD_REQUEST,
            f"box {list(value)} must lie inside the {width}x{height} image and not be empty",
        )
    return [x, y, w, h]


def validate_cancel(request: dict[str, Any]) -> str:
    job_id = request.get("job_id")
    if not isinstance(job_id, str) or not 0 < len(job_id) <= MAX_REQUEST_ID_CHARS:
        raise ProtocolError(BAD_REQUEST, "cancel needs a job_id string")
    return job_id


def validate_hello(request: dict[str, Any]) -> None:
    version = request.get("protocol_version")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            VERSION_MISMATCH,
            f"the client speaks SmartBrush protocol {version!r}, this daemon speaks "
            f"{PROTOCOL_VERSION}; update the older side",
        )


# --- endpoints --------------------------------------------------------------------------------------
# the loopback host name, and Linux's loopback interface (a daemon may bind "tcp://lo:5737")
LOCAL_HOSTS = ("localhost", "lo")
LOOPBACK_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def is_local_endpoint(endpoint: str) -> bool:
    """True when `endpoint` stays on this machine: ipc://, inproc://, or tcp:// on a loopback address
    (127.0.0.0/8, ::1, "localhost", the interface "lo"). Anything else, a wildcard ("*"), another
    interface or host name included, may be reachable from the network. The one rule: the daemon
    refuses to listen on a non-local endpoint without CURVE, and an editor that gets no answer from a
    non-local daemon says that authentication may be the cause."""
    scheme, separator, address = endpoint.strip().partition("://")
    if not separator:
        return False
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = address.rsplit(":", 1)[0]  # without the port
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host in LOCAL_HOSTS:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # "*", interface and host names, a source address ("a;b")
        return False
    return any(ip in network for network in LOOPBACK_NETWORKS)


# --- the user's own daemon --------------------------------------------------------------------------
def default_socket_dir() -> str:
    """The folder of the user's own daemon socket: $XDG_RUNTIME_DIR/smartbrush (the login session's
    private folder), else /run/user/UID/smartbrush where that is the user's, else a folder of the
    user's own in the temporary folder. The daemon makes it owner-only and refuses one that is not."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        run_user = f"/run/user/{os.getuid()}"
        try:
            if os.stat(run_user).st_uid == os.getuid():
                runtime = run_user
        except OSError:
            pass
    if runtime:
        return os.path.join(runtime, "smartbrush")
    return os.path.join(tempfile.gettempdir(), f"smartbrush-{os.getuid()}")


def default_endpoint() -> str:
    """Where the user's own daemon listens unless told otherwise: a Unix socket in a folder only the
    user can enter, so the kernel keeps other local accounts out (docs/protocol.md, Security). Read
    from the environment each time: the daemon and its clients agree when they share a session."""
    if not hasattr(os, "getuid"):  # Windows: no Unix sockets for ZeroMQ there
        return LOOPBACK_ENDPOINT
    return "ipc://" + os.path.join(default_socket_dir(), SOCKET_NAME)


def ipc_path(endpoint: str) -> str | None:
    """The socket file of an ipc:// endpoint; None for other endpoints and Linux's abstract sockets
    ("ipc://@name"), which have no file and no permissions."""
    scheme, separator, path = endpoint.strip().partition("://")
    if scheme != "ipc" or not separator or not path or path.startswith("@"):
        return None
    return path


def user_name(uid: int) -> str:
    try:
        import pwd  # POSIX only

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def owner_fields() -> dict[str, Any]:
    """Who runs this process, for the daemon's info reply: the uid (None where there is none), the
    user's name and the host name (a daemon on another machine is not "another user's")."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    return {
        "uid": uid,
        "user": user_name(uid) if uid is not None else os.environ.get("USERNAME", ""),
        "host": socket.gethostname(),
    }


def _not_yours(endpoint: str, why: str) -> str:
    return (
        f"The daemon at {endpoint} is not yours ({why}; you are {user_name(os.getuid())}): it "
        f"would see your images. Start your own with `smartbrush serve` (it listens on "
        f"{default_endpoint()}), or reach a shared daemon with CURVE keys."
    )


def socket_owner_problem(endpoint: str) -> str | None:
    """Why the ipc:// socket of `endpoint` is not the user's (owned by another account, or in a
    folder the user cannot enter), else None; None too for other endpoints and a socket not there
    (nobody listens: the client says so after its timeout). The kernel's word, checked before
    connecting, so nothing is sent to another user's daemon."""
    path = ipc_path(endpoint)
    if path is None or not hasattr(os, "getuid"):
        return None
    try:
        owner = os.stat(path).st_uid
    except FileNotFoundError:
        return None
    except PermissionError:
        return _not_yours(endpoint, "its socket is in a folder you cannot enter")
    if owner == os.getuid():
        return None
    return _not_yours(endpoint, f"its socket belongs to user {user_name(owner)}")


def daemon_owner_problem(info: dict[str, Any], endpoint: str) -> str | None:
    """Why the daemon that sent `info` (hello's answer) is not the user's: it runs on this machine as
    another user. None for a daemon on another host (reached on purpose), or one that does not say
    (older daemons, Windows). What a daemon says of itself: see docs/protocol.md for what that is worth."""
    uid = info.get("uid")
    if not hasattr(os, "getuid") or not isinstance(uid, int) or uid == os.getuid():
        return None
    if info.get("host") != socket.gethostname():
        return None
    return _not_yours(endpoint, f"it runs as user {info.get('user') or uid}")

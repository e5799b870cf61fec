"""A small synchronous client for the SmartBrush daemon (pure Python: pyzmq + msgpack).

    client = Client()                      # endpoint: argument > $SMARTBRUSH_ENDPOINT > the user's own socket
    info = client.hello()                  # model, device, precision levels, limits
    result = client.fill({"image": ..., "box": [x, y, w, h], "prompt": "a red ball"},
                         on_progress=lambda message: print(message["type"]))

`timeout` is the longest silence accepted from the daemon. While a job waits or runs the daemon sends
a message at least every `protocol.KEEPALIVE_SECONDS`, so a silence means the daemon is gone: the
client raises DaemonUnavailable, drops its socket and opens a fresh one on the next call (reconnecting
to a restarted daemon). Without CURVE keys a client talks only to its own user's daemon: it checks an
ipc:// socket's owner before connecting and the daemon's hello on every fresh socket before sending
anything else (NotYourDaemon). Vendored into the editor plugins, so it must not import torch, numpy or
Pillow.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from smartbrush.wire import protocol
from smartbrush.wire.errors import UserError

ProgressCallback = Callable[[dict[str, Any]], Any]


class SmartBrushError(UserError):
    """Base class of everything the client raises."""


class ClientError(SmartBrushError, ValueError):
    """Found before sending: the request is too large to send, the CURVE keys are unreadable."""


class EndpointError(ClientError):
    """The endpoint is not a ZeroMQ address (a typo in the settings)."""


class DaemonUnavailable(SmartBrushError):
    """No daemon answered within the timeout (not running, wrong endpoint, wrong keys, or it died)."""


class NotYourDaemon(SmartBrushError):
    """The daemon reached belongs to another user of this machine (and no CURVE keys say it is the
    one meant): nothing but hello is sent to it."""


class DaemonError(SmartBrushError):
    """The daemon answered with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message


class VersionMismatch(DaemonError):
    """Client and daemon speak different protocol versions."""


class FillCancelled(SmartBrushError):
    """The fill was cancelled (by this client, another client, or the user)."""

    def __init__(self, job_id: str | None) -> None:
        super().__init__(f"fill {job_id} was cancelled")
        self.job_id = job_id


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The endpoint argument, else $SMARTBRUSH_ENDPOINT, else the user's own socket."""
    return endpoint or os.environ.get(protocol.ENDPOINT_ENV) or protocol.default_endpoint()


class Client:
    """Talks to one daemon. Not thread-safe: use one Client per thread.

    CURVE: pass `curve_dir` (or set $SMARTBRUSH_CURVE_DIR), a folder made by `smartbrush keys`, holding
    server.key (the daemon's public key) and client.key_secret (this client's key pair).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        timeout: float = 30.0,
        *,
        curve_dir: str | os.PathLike | None = None,
        client_name: str = "smartbrush.wire.client",
    ) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self.timeout = float(timeout)
        self.client_name = client_name
        self._context = zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._ids = itertools.count(1)
        self._curve = _load_curve_keys(curve_dir or os.environ.get(protocol.CURVE_DIR_ENV))
        # whether the daemon behind the current socket is known to be ours; under CURVE the keys
        # already name the daemon meant, so there is nothing to check
        self._trusted = self._curve is not None

    # --- public API -----------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        """Check that a daemon answers and speaks our protocol; returns its info map."""
        return self._call(protocol.hello_message(self.client_name))

    def info(self) -> dict[str, Any]:
        return self._call({"type": protocol.INFO})

    def status(self) -> dict[str, Any]:
        """The daemon's queue: {"running": [...], "queued": [...], ...}."""
        return self._call({"type": protocol.STATUS})

    def cancel(self, job_id: str) -> None:
        """Cancel a queued or running job (any client may cancel any job)."""
        self._call({"type": protocol.CANCEL, "job_id": job_id})

    def fill(
        self,
        request: dict[str, Any],
        on_progress: ProgressCallback | None = None,
        *,
        connect_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run one fill and return the result map (images, alphas, masks, seeds, precision, timings).

        `on_progress(message)` gets each "accepted", "queued" and "progress" message; if it returns
        False the job is cancelled and FillCancelled raised. Ctrl-C cancels the job too.
        `connect_timeout`: how long the daemon may take to accept the job (its first answer), so "no
        daemon" is said in seconds without a separate hello; afterwards `timeout` applies.

        The request is sent as it is: the daemon checks it (protocol.validate_fill) and answers a bad
        one with a DaemonError (code "bad_request" or "too_large") naming the field. The editors
        check theirs once, where they build it (smartbrush.wire.editing.build_fill_request).
        """
        wait = self.timeout if connect_timeout is None else min(connect_timeout, self.timeout)
        request_id = self._send({**request, "type": protocol.FILL}, wait)
        job_id = None
        cancel_sent = False
        try:
            while True:
                message = self._receive(request_id, wait)
                wait = self.timeout
                kind = message["type"]
                job_id = message.get("job_id") or job_id
                if kind == protocol.RESULT:
                    return message
                if kind == protocol.CANCELLED:
                    raise FillCancelled(job_id)
                if kind == protocol.ERROR:
                    raise _daemon_error(message)
                if on_progress is not None and on_progress(message) is False and not cancel_sent:
                    self._send_cancel(job_id)
                    cancel_sent = True
        except KeyboardInterrupt:
            if job_id is not None and self._socket is not None:
                self._send_cancel(job_id)
            raise

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        # a fresh socket may reach another daemon (ours died, another user's took the port)
        self._trusted = self._curve is not None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------
    def _call(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        reply = self._receive(self._send(message, timeout), timeout)
        if reply["type"] == protocol.ERROR:
            raise _daemon_error(reply)
        if message["type"] == protocol.HELLO:
            self._trust(reply)
        return reply

    def _trust(self, info: dict[str, Any]) -> None:
        """Accept the daemon that answered hello, unless it is another user's on this machine."""
        if self._curve is None:
            problem = protocol.daemon_owner_problem(info, self.endpoint)
            if problem:
                self.close()
                raise NotYourDaemon(problem)
        self._trusted = True

    def _connect(self) -> zmq.Socket:
        if self._socket is not None:
            return self._socket
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_REPLY_BYTES)
        if self._curve is not None:
            socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = self._curve
        elif problem := protocol.socket_owner_problem(self.endpoint):
            socket.close(linger=0)
            raise NotYourDaemon(problem)
        try:
            socket.connect(self.endpoint)
        except zmq.ZMQError as error:  # e.g. "Invalid argument" for a mistyped endpoint
            socket.close(linger=0)
            raise EndpointError(
                f"{self.endpoint!r} is not a daemon endpoint ({error}); it looks like "
                f"{protocol.LOOPBACK_ENDPOINT} or ipc:///path/to/socket"
            ) from None
        self._socket = socket
        return socket

    def _send(self, message: dict[str, Any], timeout: float | None = None) -> str:
        """Send `message`; first, on a socket not yet trusted, hello (within `timeout`), so a fill
        or cancel never reaches another user's daemon."""
        request_id = f"{os.getpid()}-{next(self._ids)}"
        try:
            data = protocol.encode({**message, "request_id": request_id})
        except (TypeError, ValueError) as error:  # e.g. a numpy number: not a msgpack type
            raise ClientError(f"the request cannot be sent: {error}") from None
        if len(data) > protocol.MAX_MESSAGE_BYTES:
            raise ClientError(
                f"request of {len(data)} bytes is over the {protocol.MAX_MESSAGE_BYTES} byte limit"
            )
        if not self._trusted and message["type"] != protocol.HELLO:
            self._call(protocol.hello_message(self.client_name), timeout)
        socket = self._connect()
        try:
            socket.send(data, flags=zmq.NOBLOCK, copy=len(data) < 65536)
        except zmq.Again:
            self.close()
            raise DaemonUnavailable(self._unavailable_text()) from None
        return request_id

    def _send_cancel(self, job_id: str | None) -> None:
        if job_id is not None and self._socket is not None:
            message = {"type": protocol.CANCEL, "job_id": job_id, "request_id": "cancel"}
            try:
                self._socket.send(protocol.encode(message), flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    def _receive(self, request_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The next reply to `request_id`, skipping stale replies to earlier requests."""
        socket = self._connect()
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not socket.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                self.close()  # a fresh socket next time: no stale queue, reconnects cleanly
                raise DaemonUnavailable(self._unavailable_text(timeout))
            try:
                frame = socket.recv(copy=False)  # decoded straight from ZeroMQ's buffer
                message = protocol.decode(frame.buffer, max_bytes=protocol.MAX_REPLY_BYTES)
            except protocol.ProtocolError as error:
                raise DaemonError(protocol.BAD_MESSAGE, f"unreadable reply: {error}") from None
            if message.get("request_id") in (request_id, None):
                return message
            # a late reply to a request this client gave up on: ignore it, keep waiting
            deadline = time.monotonic() + self.timeout

    def _unavailable_text(self, timeout: float | None = None) -> str:
        waited = self.timeout if timeout is None else timeout
        text = f"no SmartBrush daemon answered at {self.endpoint} within {waited:g} s"
        if self._curve is not None:
            text += " (CURVE keys in use: check that they match the daemon's)"
        return text + "; start one with `smartbrush serve`"


def _daemon_error(message: dict[str, Any]) -> DaemonError:
    code = str(message.get("code", protocol.INTERNAL))
    text = str(message.get("message", "the daemon reported an error"))
    if code == protocol.VERSION_MISMATCH:
        return VersionMismatch(code, text)
    return DaemonError(code, text)


def _load_curve_keys(curve_dir: str | os.PathLike | None) -> tuple[bytes, bytes, bytes] | None:
    """(server public, client public, client secret) from a `smartbrush keys` folder, or None."""
    if not curve_dir:
        return None
    import zmq.auth  # only when CURVE is used

    folder = Path(curve_dir)
    try:
        server_public, _ = zmq.auth.load_certificate(folder / "server.key")
        client_public, client_secret = zmq.auth.load_certificate(folder / "client.key_secret")
    except (OSError, ValueError) as error:
        raise ClientError(f"cannot read CURVE keys from {folder}: {error}") from None
    if client_secret is None:
        raise ClientError(f"{folder / 'client.key_secret'} holds no secret key")
    return server_public, client_public, client_secret

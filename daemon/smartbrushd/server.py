"""smartbrushd: serves SmartBrush fills over ZeroMQ (protocol: smartbrush.wire.protocol, docs/protocol.md).

Threads: the main thread owns the ROUTER socket and is the only one touching it. It decodes and checks
requests, queues fills (FIFO) and forwards what the workers produce. One worker thread per device takes
jobs from the queue, runs the pipeline and hands its messages back over an inproc PUSH/PULL pair. A result
for a client that has gone away is dropped by the ROUTER (ROUTER_MANDATORY off), so nothing ever waits
on a client.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import logging
import logging.handlers
import os
import signal
import socket
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from smartbrush import __version__
from smartbrush.runtime import images
from smartbrush.runtime.jobs import FillJob, accept_job, run_job
from smartbrush.wire import protocol
from smartbrush.wire.errors import UserError, first_line
from smartbrushd import config

log = logging.getLogger("smartbrushd")

POLL_MS = 250
SHUTDOWN_GRACE_SECONDS = 30.0  # how long a running step may take to notice a shutdown


class JobQueue:
    """A FIFO of FillJobs that workers block on; jobs can be removed (cancelled) while waiting."""

    def __init__(self) -> None:
        self._jobs: collections.deque[FillJob] = collections.deque()
        self._condition = threading.Condition()
        self._closed = False

    def put(self, job: FillJob) -> int:
        """Queue a job; returns how many jobs wait ahead of it."""
        with self._condition:
            self._jobs.append(job)
            self._condition.notify()
            return len(self._jobs) - 1

    def get(self) -> FillJob | None:
        """The oldest job, marked running; None once the queue is closed."""
        with self._condition:
            while not self._jobs and not self._closed:
                self._condition.wait()
            if self._closed:
                return None
            job = self._jobs.popleft()
            job.running = True
            return job

    def remove(self, job: FillJob) -> bool:
        with self._condition:
            if job in self._jobs:
                self._jobs.remove(job)
                return True
            return False

    def position(self, job: FillJob) -> int:
        with self._condition:
            return self._jobs.index(job) if job in self._jobs else 0

    def job_ids(self) -> list[str]:
        with self._condition:
            return [job.job_id for job in self._jobs]

    def __len__(self) -> int:
        with self._condition:
            return len(self._jobs)

    def close(self) -> list[FillJob]:
        """Stop handing out jobs; returns the ones still waiting."""
        with self._condition:
            self._closed = True
            waiting = list(self._jobs)
            self._jobs.clear()
            self._condition.notify_all()
            return waiting


def check_endpoint(endpoint: str, curve_dir: str | Path | None) -> None:
    """Refuse a non-loopback endpoint without CURVE: anyone on the network could use the daemon."""
    if not protocol.is_local_endpoint(endpoint) and not curve_dir:
        raise ValueError(
            f"refusing to listen on {endpoint} without encryption: anyone on the network could "
            "use this machine; create keys with `smartbrush keys DIR` and pass --curve-dir DIR, "
            "or bind a loopback address"
        )


def prepare_ipc(endpoint: str) -> None:
    """Before binding an ipc:// endpoint: the user's own socket folder made owner-only (and one that
    is not the user's refused), and a socket another daemon still listens on refused: ZeroMQ would
    silently take its path over, where a TCP port in use is an error."""
    path = protocol.ipc_path(endpoint)
    if path is None:
        return
    if endpoint == protocol.default_endpoint():
        private_folder(Path(path).parent)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        return  # nobody there, or a socket left by a daemon that was killed: ZeroMQ replaces it
    except OSError as error:
        raise ValueError(f"cannot listen on {endpoint}: {error}") from None
    finally:
        probe.close()
    raise ValueError(f"cannot listen on {endpoint}: a daemon is already listening there")


def private_folder(folder: Path) -> None:
    """Make `folder` (mode 0700) or check it: a real folder of this user that nobody else may enter.
    In a shared temporary folder another user could have made it first, to catch our socket."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as error:
        raise ValueError(f"cannot make the daemon's socket folder {folder}: {error}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ValueError(
            f"refusing the socket folder {folder}: it belongs to {protocol.user_name(info.st_uid)}"
            f"{'' if stat.S_ISDIR(info.st_mode) else ' and is not a folder'}; remove it, or set "
            "XDG_RUNTIME_DIR or --endpoint"
        )
    if info.st_mode & 0o077:
        folder.chmod(0o700)  # ours, but others could enter it: they may not any more


class Daemon:
    """The server. `Daemon(pipeline, endpoint).run()` blocks until stop() (or SIGTERM via main()).

    `pipelines` is one pipeline or a list (one worker per pipeline, e.g. one per GPU). Tests start it in a
    thread with an already-built pipeline: `endpoint = daemon.bind(); Thread(target=daemon.run).start()`.
    Or `load`, a function returning that list, which run() calls on a thread of its own: the daemon
    answers (hello, status, cancel, and queues fills) while the model loads.
    """

    def __init__(
        self,
        pipelines: Any = None,
        endpoint: str | None = None,
        *,
        load: Callable[[], list[Any]] | None = None,
        model_name: str = "custom",
        curve_dir: str | Path | None = None,
        max_queue: int = 16,
    ) -> None:
        if (pipelines is None) == (load is None):
            raise TypeError("give the daemon either pipelines or a load function")
        self.pipelines: list[Any] = []
        if pipelines is not None:
            self._use(list(pipelines) if isinstance(pipelines, (list, tuple)) else [pipelines])
        self._load = load
        self.load_error: str | None = None  # why `load` failed (the daemon then stops)
        endpoint = endpoint or protocol.default_endpoint()  # the user's own socket
        self.requested_endpoint = endpoint
        self.endpoint = endpoint
        self.model_name = model_name
        self.curve_dir = Path(curve_dir) if curve_dir else None
        self.max_queue = max_queue
        check_endpoint(endpoint, self.curve_dir)
        self.queue = JobQueue()
        self.jobs: dict[str, FillJob] = {}  # accepted and not finished; main thread only
        self._last_sent: dict[str, float] = {}
        self._sequence = itertools.count(1)
        self._run_index = itertools.count(1)
        self._run_index_lock = threading.Lock()
        self._stop = threading.Event()
        self._stopping = False
        self._started = time.monotonic()
        self.jobs_done = 0
        self._context = zmq.Context()
        self._router: zmq.Socket | None = None
        self._auth = None
        self._inproc = f"inproc://smartbrushd-workers-{uuid.uuid4().hex}"
        self._workers: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------------------
    def _use(self, pipelines: list[Any]) -> None:
        for pipeline in pipelines:  # progress goes to clients, not to the daemon's stderr
            if hasattr(pipeline, "set_progress_bar_config"):
                pipeline.set_progress_bar_config(disable=True)
        self.pipelines = pipelines

    def bind(self) -> str:
        """Bind the ROUTER socket; returns the actual endpoint (port resolved for tcp://...:*)."""
        if self._router is not None:
            return self.endpoint
        router = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 1000)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)  # replies to vanished clients are dropped
        router.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_MESSAGE_BYTES)
        umask = None
        try:
            if self.curve_dir is not None:
                self._setup_curve(router)
            if protocol.ipc_path(self.requested_endpoint) is not None:
                prepare_ipc(self.requested_endpoint)
                umask = os.umask(0o077)  # the socket file is born owner-only: no window for others
            router.bind(self.requested_endpoint)
        except (zmq.ZMQError, ValueError) as error:
            router.close(linger=0)
            self._stop_auth()
            if isinstance(error, ValueError):
                raise
            raise ValueError(f"cannot listen on {self.requested_endpoint}: {error}") from None
        finally:
            if umask is not None:
                os.umask(umask)
        self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._router = router
        return self.endpoint

    def _setup_curve(self, router: zmq.Socket) -> None:
        import zmq.auth
        from zmq.auth.thread import ThreadAuthenticator

        assert self.curve_dir is not None  # only called with CURVE keys
        secret_file = self.curve_dir / "server.key_secret"
        authorized = self.curve_dir / "authorized_clients"
        try:
            public, secret = zmq.auth.load_certificate(secret_file)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read the server key {secret_file}: {error}") from None
        if secret is None or not authorized.is_dir():
            raise ValueError(
                f"{self.curve_dir} is not a complete key folder (made by `smartbrush keys`): needs "
                "server.key_secret and authorized_clients/"
            )
        self._auth = ThreadAuthenticator(self._context, log=logging.getLogger("smartbrushd.auth"))
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(authorized))
        router.curve_secretkey = secret
        router.curve_publickey = public
        router.curve_server = True

    def _stop_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def stop(self) -> None:
        """Ask run() to finish (thread-safe, also from a signal handler)."""
        self._stop.set()

    def run(self) -> None:
        """Serve until stop(): the main loop of the main thread."""
        self.bind()
        router = self._router
        assert router is not None  # bound above
        pull = self._context.socket(zmq.PULL)
        pull.bind(self._inproc)
        if self._load is None:
            self._start_workers()
        else:
            threading.Thread(
                target=self._load_then_work, name="smartbrush-load", daemon=True
            ).start()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        log.info(
            "listening on %s (model %s%s)",
            self.endpoint,
            self.model_name,
            f", {len(self._workers)} worker(s)" if self._workers else ", loading",
        )
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(POLL_MS))
                if pull in events:
                    self._forward_worker_messages(router, pull)
                if router in events:
                    self._handle_requests(router)
                self._send_keepalives(router)
        finally:
            self._shutdown(router, pull)

    def _start_workers(self) -> None:
        for index, pipeline in enumerate(self.pipelines):
            worker = threading.Thread(
                target=self._work, args=(pipeline,), name=f"smartbrush-worker-{index}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def _load_then_work(self) -> None:
        """The loading thread: load the model(s), then start one worker each; stop on failure."""
        started = time.monotonic()
        try:
            assert self._load is not None  # only started with a load function
            pipelines = self._load()
        except Exception as error:  # a bad model name, a broken folder, a missing device
            self.load_error = first_line(error)
            log.error("cannot load model %s: %s", self.model_name, self.load_error)
            self.stop()
            return
        self._use(pipelines)
        log.info("model %s loaded in %.1f s", self.model_name, time.monotonic() - started)
        if not self._stop.is_set():
            self._start_workers()

    def _shutdown(self, router: zmq.Socket, pull: zmq.Socket) -> None:
        log.info("shutting down")
        self._stopping = True
        why = "the daemon is shutting down"
        if self.load_error:
            why += f": it cannot load model {self.model_name} ({self.load_error})"
        for job in self.queue.close():
            self._send_final(router, job, self._error(job, protocol.SHUTTING_DOWN, why))
        for job in self.jobs.values():
            job.cancel.set()  # running jobs stop at their next step
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        while any(worker.is_alive() for worker in self._workers) and time.monotonic() < deadline:
            if pull.poll(100):
                self._forward_worker_messages(router, pull)
            for worker in self._workers:
                worker.join(timeout=0)
        if pull.poll(0):
            self._forward_worker_messages(router, pull)
        pull.close(linger=0)
        router.close(linger=1000)
        self._router = None
        if (path := protocol.ipc_path(self.endpoint)) is not None:
            with contextlib.suppress(OSError):  # ZeroMQ leaves the socket file behind
                os.unlink(path)
        self._stop_auth()
        if any(worker.is_alive() for worker in self._workers):
            # a step longer than the grace period: leave the worker (a daemon thread) to the exit
            log.warning(
                "a worker is still busy after %.0f s; exiting without it", SHUTDOWN_GRACE_SECONDS
            )
        else:
            self._context.term()
        log.info("stopped")

    # --- requests (main thread) -----------------------------------------------------------------
    def _handle_requests(self, router: zmq.Socket, budget: int = 256) -> None:
        """Answer what has arrived (at most `budget` messages, so workers are not starved)."""
        for _ in range(budget):
            try:  # copy=False: a multi-megabyte request is not copied again on the way in
                frames = router.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            identity, payloads = frames[0].bytes, [frame.buffer for frame in frames[1:]]
            request: Any = None
            try:
                if len(payloads) != 1:
                    raise protocol.ProtocolError(
                        protocol.BAD_MESSAGE, "a message is exactly one frame"
                    )
                request = protocol.decode(payloads[0])
                reply = self._dispatch(identity, request)
            except protocol.ProtocolError as error:
                reply = protocol.error_message(
                    error.code, error.message, protocol.request_id_of(request)
                )
            except Exception as error:  # never let one request take the daemon down
                log.exception("unexpected error handling a request")
                reply = protocol.error_message(
                    protocol.INTERNAL, f"internal error: {error}", protocol.request_id_of(request)
                )
            if reply is not None:
                router.send_multipart([identity, protocol.encode(reply)])
            del frames, payloads, request  # free the request's pixels now

    def _dispatch(self, identity: bytes, request: dict[str, Any]) -> dict[str, Any] | None:
        kind = request["type"]
        request_id = protocol.request_id_of(request)
        if kind == protocol.HELLO:
            protocol.validate_hello(request)
            return {**self.info(), "request_id": request_id}
        if kind == protocol.INFO:
            return {**self.info(), "request_id": request_id}
        if kind == protocol.STATUS:
            return {**self.status(), "request_id": request_id}
        if kind == protocol.CANCEL:
            return self._cancel(protocol.validate_cancel(request), request_id)
        if kind == protocol.FILL:
            return self._accept_fill(identity, request)
        raise protocol.ProtocolError(
            protocol.UNKNOWN_TYPE,
            f"unknown message type {kind!r}; expected one of {', '.join(protocol.REQUEST_TYPES)}",
        )

    def _accept_fill(self, identity: bytes, request: dict[str, Any]) -> dict[str, Any]:
        if len(self.queue) >= self.max_queue:
            raise protocol.ProtocolError(
                protocol.QUEUE_FULL, f"{len(self.queue)} jobs are already waiting; try again later"
            )
        job = accept_job(request)
        job.job_id = uuid.uuid4().hex[:16]
        job.identity = identity
        job.sequence = next(self._sequence)
        job.accepted_at = time.monotonic()
        self.jobs[job.job_id] = job
        self._last_sent[job.job_id] = job.accepted_at
        position = self.queue.put(job)
        log.info(
            "job %s accepted: %dx%d, %d steps, %d variation(s), %d waiting ahead",
            job.job_id,
            *job.size,
            job.request["steps"],
            job.request["variations"],
            position,
        )
        return {
            "type": protocol.ACCEPTED,
            "request_id": job.request["request_id"],
            "job_id": job.job_id,
            "queue_position": position,
            "sequence": job.sequence,
        }

    def _cancel(self, job_id: str, request_id: Any) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise protocol.ProtocolError(protocol.UNKNOWN_JOB, f"no queued or running job {job_id}")
        job.cancel.set()
        if self.queue.remove(job):  # still waiting: answer its client now
            assert self._router is not None  # requests only arrive while it is bound
            self._send_final(self._router, job, self._job_message(job, protocol.CANCELLED))
        log.info("job %s cancel requested", job_id)
        return {"type": protocol.OK, "request_id": request_id, "job_id": job_id}

    def info(self) -> dict[str, Any]:
        """What the daemon serves; while the model loads, "loading" is true and what only the
        loaded model knows (devices, dtype, resolution, precision levels) is None."""
        pipelines = self.pipelines
        pipeline = pipelines[0] if pipelines else None
        levels = None
        if pipeline is not None:
            levels = getattr(getattr(pipeline, "config", None), "num_precision_levels", None)
            if levels is None:
                from smartbrush.method.masks import NUM_LEVELS as levels
        return {
            "type": protocol.INFO,
            "protocol_version": protocol.PROTOCOL_VERSION,
            "daemon_version": __version__,
            "model": self.model_name,
            "loading": pipeline is None,
            "devices": [str(getattr(p, "device", "cpu")) for p in pipelines],
            "device": None if pipeline is None else str(getattr(pipeline, "device", "cpu")),
            "dtype": None
            if pipeline is None
            else str(getattr(pipeline, "dtype", "")).replace("torch.", ""),
            "num_precision_levels": None if levels is None else int(levels),
            "resolution": getattr(pipeline, "resolution", None),
            "curve": self.curve_dir is not None,
            "endpoint": self.endpoint,
            **protocol.owner_fields(),  # uid, user, host: a client tells the user when it isn't theirs
            "limits": dict(protocol.LIMITS),
        }

    def status(self) -> dict[str, Any]:
        running = [
            {"job_id": job.job_id, "step": job.step, "total": job.request["steps"]}
            for job in self.jobs.values()
            if job.running
        ]
        return {
            "type": protocol.STATUS,
            "running": running,
            "queued": self.queue.job_ids(),
            "jobs_done": self.jobs_done,
            "uptime": time.monotonic() - self._started,
            "workers": len(self._workers),
        }

    # --- messages to clients (main thread) ------------------------------------------------------
    def _job_message(self, job: FillJob, kind: str, **fields: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "request_id": job.request["request_id"],
            "job_id": job.job_id,
            **fields,
        }

    def _error(self, job: FillJob, code: str, message: str) -> dict[str, Any]:
        return protocol.error_message(code, message, job.request["request_id"], job.job_id)

    def _send_final(self, router: zmq.Socket, job: FillJob, message: dict[str, Any]) -> None:
        router.send_multipart([job.identity, protocol.encode(message)])
        self._finish(job.job_id)

    def _finish(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self.jobs_done += 1
        self._last_sent.pop(job_id, None)

    def _forward_worker_messages(
        self, router: zmq.Socket, pull: zmq.Socket, budget: int = 256
    ) -> None:
        for _ in range(budget):
            try:
                job_id, final, payload = pull.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            job = self.jobs.get(job_id.bytes.decode())
            if job is None:
                continue
            router.send_multipart([job.identity, payload], copy=False)
            self._last_sent[job.job_id] = time.monotonic()
            if final.bytes == b"1":
                self._finish(job.job_id)

    def _send_keepalives(self, router: zmq.Socket) -> None:
        now = time.monotonic()
        for job_id, job in list(self.jobs.items()):
            if now - self._last_sent.get(job_id, now) < protocol.KEEPALIVE_SECONDS:
                continue
            if job.running:
                message = self._job_message(
                    job, protocol.PROGRESS, step=job.step, total=job.request["steps"], preview=None
                )
            else:
                message = self._job_message(
                    job, protocol.QUEUED, queue_position=self.queue.position(job)
                )
            router.send_multipart([job.identity, protocol.encode(message)])
            self._last_sent[job_id] = now

    # --- workers --------------------------------------------------------------------------------
    def _work(self, pipeline: Any) -> None:
        """Worker thread: run queued jobs on one pipeline, report through the inproc socket."""
        push = self._context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, -1)
        push.connect(self._inproc)
        try:
            while (job := self.queue.get()) is not None:
                self._run_job(pipeline, job, push)
        finally:
            push.close()

    def _run_job(self, pipeline: Any, job: FillJob, push: zmq.Socket) -> None:
        from smartbrush.method.pipeline import GenerationCancelled

        with self._run_index_lock:
            run_index = next(self._run_index)
        key = job.job_id.encode()

        def on_step(step: int, total: int, preview: Any) -> None:
            small = images.preview(preview) if preview is not None else None
            message = self._job_message(
                job, protocol.PROGRESS, step=step, total=total, preview=small
            )
            push.send_multipart([key, b"0", protocol.encode(message)])

        start = time.monotonic()
        try:
            fields = run_job(pipeline, job, on_step)
            message = self._job_message(job, protocol.RESULT, run_index=run_index, **fields)
            log.info("job %s done in %.2f s", job.job_id, time.monotonic() - start)
        except GenerationCancelled:
            if self._stopping:
                message = self._error(job, protocol.SHUTTING_DOWN, "the daemon is shutting down")
            else:
                message = self._job_message(job, protocol.CANCELLED)
            log.info("job %s cancelled at step %d", job.job_id, job.step)
        except Exception as error:  # a failed job must never kill the worker
            message = self._failure(job, error)
        push.send_multipart([key, b"1", protocol.encode(message)], copy=False)

    def _failure(self, job: FillJob, error: Exception) -> dict[str, Any]:
        if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
            _free_cuda_cache()
            log.warning("job %s: out of memory", job.job_id)
            return self._error(
                job, protocol.OUT_OF_MEMORY, f"out of memory: {error}".splitlines()[0]
            )
        if isinstance(error, protocol.ProtocolError):  # pixels that do not decode
            log.info("job %s: %s", job.job_id, error.message)
            return self._error(job, error.code, error.message)
        if isinstance(error, ValueError):  # the pipeline's word for bad input
            log.info("job %s rejected by the pipeline: %s", job.job_id, error)
            return self._error(job, protocol.BAD_REQUEST, str(error))
        log.exception("job %s failed", job.job_id)
        return self._error(
            job, protocol.INTERNAL, f"the fill failed: {type(error).__name__}: {error}"
        )


def _free_cuda_cache() -> None:
    try:
        import torch

        torch.cuda.empty_cache()
    except Exception:
        pass


# --- entry point --------------------------------------------------------------------------------
def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="smartbrushd", description=(__doc__ or "").splitlines()[0]
    )
    config.add_arguments(parser)
    return parser


def setup_logging(settings: config.Settings) -> tuple[Path | None, list[logging.Handler]]:
    """Log to stderr and (unless log_file is "-") a rotating file; returns (file, the handlers)."""
    level = getattr(logging, settings.log_level.upper(), None)
    if not isinstance(level, int):
        raise ValueError(
            f"log level must be debug, info, warning or error, not {settings.log_level!r}"
        )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    path = None
    if settings.log_file != "-":
        path = Path(settings.log_file) if settings.log_file else config.default_log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=3))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
    return path, handlers


def serve(args: argparse.Namespace) -> int:
    """Start the daemon from parsed arguments (shared by `smartbrushd` and `smartbrush serve`).

    It listens first and loads the model on a thread (torch and diffusers take seconds to import),
    so clients hear from it at once; fills wait in the queue until the model is there.
    """
    settings = config.load_settings(args)
    log_path, handlers = setup_logging(settings)
    old_ini = config.old_ini_warning(args)
    if old_ini:
        log.warning(old_ini)
    try:
        return _serve(settings, log_path)
    finally:  # an in-process serve (tests, scripts) leaves no handler on a stream it may outlive
        for handler in handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _serve(settings: config.Settings, log_path: Path | None) -> int:
    """serve() once logging is set up."""

    def load() -> list[Any]:
        from smartbrush.runtime.loading import load_pipeline, resolve_devices

        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        devices = resolve_devices(settings.device)
        log.info("loading model %s on %s", settings.model, ", ".join(devices))
        return [load_pipeline(settings.model, device, settings.dtype) for device in devices]

    daemon = Daemon(
        endpoint=settings.endpoint,
        load=load,
        model_name=settings.model,
        curve_dir=settings.curve_dir or None,
        max_queue=settings.max_queue,
    )
    endpoint = daemon.bind()
    where = f" (log: {log_path})" if log_path else ""
    print(f"smartbrushd {__version__} listening on {endpoint}{where}", file=sys.stderr, flush=True)
    signalled = []

    def on_signal(signum: int, frame: Any) -> None:
        signalled.append(signum)
        daemon.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    daemon.run()
    if signalled:  # told to end: the process goes now, sockets closed and logs flushed
        exit_now(0)
    if daemon.load_error:
        raise UserError(f"cannot load model {settings.model}: {daemon.load_error}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return serve(args)
    except (UserError, ValueError) as error:
        print(f"smartbrushd: error: {error}", file=sys.stderr)
        return 2


def exit_now(code: int) -> None:
    """Leave the process without Python's teardown of torch and diffusers (about a second): the
    daemon has closed its sockets and the logs are flushed here."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

"""Load: concurrent clients each running many fills; every job is answered exactly once, in FIFO order.
SMARTBRUSH_LOAD_CLIENTS (default 8) and SMARTBRUSH_LOAD_FILLS (default 25 per client) size it."""

from __future__ import annotations

import os
import threading

import pytest
import zmq
from daemon_helpers import box_request, running_daemon

from smartbrush.wire import protocol
from smartbrush.wire.client import Client

CLIENTS = int(os.environ.get("SMARTBRUSH_LOAD_CLIENTS", "8"))
FILLS = int(os.environ.get("SMARTBRUSH_LOAD_FILLS", "25"))


@pytest.mark.slow
def test_concurrent_clients_get_every_job_once_in_fifo_order(tiny_pixel_pipeline):
    records: list[dict] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client_thread(endpoint: str, index: int) -> None:
        try:
            with Client(endpoint, timeout=60) as client:
                start.wait()
                for number in range(FILLS):
                    accepted = {}

                    def on_progress(message, accepted=accepted):
                        if message["type"] == "accepted":
                            accepted.update(message)

                    seed = index * 1000 + number
                    # one step without guidance: a real model call, as cheap as it gets
                    request = box_request(steps=1, guidance=1.0, seed=seed)
                    result = client.fill(request, on_progress=on_progress)
                    with lock:
                        records.append(
                            {"client": index, "seed": seed, "accepted": accepted, "result": result}
                        )
                # nothing else may arrive: no duplicate results, no late messages
                assert client._socket is not None and not client._socket.poll(200, zmq.POLLIN)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    with running_daemon(tiny_pixel_pipeline, max_queue=CLIENTS) as daemon:
        threads = [
            threading.Thread(target=client_thread, args=(daemon.endpoint, i))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not errors, errors[0]
        with Client(daemon.endpoint) as client:
            status = client.status()

    total = CLIENTS * FILLS
    assert len(records) == total
    assert status["jobs_done"] == total and status["running"] == [] and status["queued"] == []
    job_ids = {record["result"]["job_id"] for record in records}
    assert len(job_ids) == total  # none lost, none duplicated
    for record in records:
        assert record["accepted"]["job_id"] == record["result"]["job_id"]
        assert record["result"]["seeds"] == [record["seed"]]  # each client got its own job back
    # FIFO: the worker started the jobs in the order the daemon accepted them
    by_acceptance = sorted(records, key=lambda record: record["accepted"]["sequence"])
    run_order = [record["result"]["run_index"] for record in by_acceptance]
    assert run_order == sorted(run_order) == list(range(1, total + 1))
    # the queue really was shared: jobs waited behind other clients' jobs
    assert max(record["accepted"]["queue_position"] for record in records) >= 1


def test_a_full_queue_refuses_with_queue_full(tiny_pixel_pipeline):
    with running_daemon(tiny_pixel_pipeline, max_queue=1) as daemon:
        socket = zmq.Context.instance().socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(daemon.endpoint)
        request = protocol.validate_fill({"type": "fill", **box_request(steps=100)})
        socket.send(protocol.encode({**request, "request_id": 0}))
        replies = {}
        while True:  # wait until the first job runs, so the queue is empty
            assert socket.poll(20_000)
            reply = protocol.decode(socket.recv(), max_bytes=protocol.MAX_REPLY_BYTES)
            if reply["type"] == "accepted":
                replies[0] = reply
            if reply["type"] == "progress":
                break
        for request_id in (1, 2):  # one waits, one is refused
            socket.send(protocol.encode({**request, "request_id": request_id}))
        while len(replies) < 3:
            assert socket.poll(20_000)
            reply = protocol.decode(socket.recv(), max_bytes=protocol.MAX_REPLY_BYTES)
            if reply["type"] in ("accepted", "error"):
                replies[reply["request_id"]] = reply
        assert replies[1]["type"] == "accepted" and replies[1]["queue_position"] == 0
        assert replies[2]["type"] == "error" and replies[2]["code"] == protocol.QUEUE_FULL
        for reply in replies.values():
            if reply["type"] == "accepted":
                socket.send(protocol.encode({"type": "cancel", "job_id": reply["job_id"]}))
        socket.close()

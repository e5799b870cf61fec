"""Show the daemon's status, model, devices and endpoint."""

from __future__ import annotations

import argparse

from smartbrush.commands.filling import HELLO_TIMEOUT, add_connection_options
from smartbrush.wire.client import Client, DaemonUnavailable, SmartBrushError
from smartbrush.wire.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)


def run(args: argparse.Namespace) -> int:
    client = Client(
        args.endpoint, timeout=min(HELLO_TIMEOUT, args.timeout), curve_dir=args.curve_dir
    )
    try:
        info = client.hello()
        status = client.status()
    except DaemonUnavailable:
        print(
            f"no SmartBrush daemon answers at {client.endpoint} (start one with `smartbrush serve`)"
        )
        return 1
    except SmartBrushError as error:
        raise UserError(str(error)) from None
    finally:
        client.close()
    running = ", ".join(
        f"{job['job_id']} step {job['step']}/{job['total']}" for job in status["running"]
    )
    rows = [
        ("endpoint", client.endpoint),
        ("daemon", f"smartbrushd {info['daemon_version']}, protocol {info['protocol_version']}"),
        ("model", info["model"] + (" (loading)" if info.get("loading") else "")),
        ("devices", ", ".join(info["devices"]) or "-"),
        ("dtype", info["dtype"] or "-"),
        ("resolution", f"{info['resolution']} px" if info["resolution"] else "-"),
        (
            "precision levels",
            f"0..{info['num_precision_levels']}" if info["loading"] is False else "-",
        ),
        ("runs as", f"{info.get('user', '?')} on {info.get('host', '?')}"),
        ("encryption", "CURVE" if info["curve"] else "none (this machine only)"),
        ("running", running or "nothing"),
        ("queued", str(len(status["queued"]))),
        ("jobs done", str(status["jobs_done"])),
        ("uptime", f"{status['uptime']:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0

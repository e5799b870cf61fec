"""Daemon settings: each one a command-line flag, an environment variable and a config-file key.

Precedence: flag > environment (SMARTBRUSH_<NAME>) > config file > default. The config file is TOML with
a [daemon] table, by default smartbrushd.toml in the platformdirs user config folder; it is read by the
one config loader (smartbrush.runtime.config), environment and flags applied on top as overrides:

    [daemon]
    endpoint = ""            # the user's own socket, ipc://$XDG_RUNTIME_DIR/smartbrush/smartbrushd.sock
    model = "demo"
    device = "auto"
    max_queue = 16
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import platformdirs

from smartbrush.runtime.config import load_config
from smartbrush.runtime.loading import MODEL_NAMES_HELP
from smartbrush.wire import protocol

APP_NAME = "smartbrush"


def default_config_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "smartbrushd.toml"


def old_ini_path() -> Path:
    """Where earlier versions read their INI config file (no longer read)."""
    return default_config_path().with_name("smartbrushd.ini")


def default_log_path() -> Path:
    return platformdirs.user_log_path(APP_NAME) / "smartbrushd.log"


@dataclass
class Settings:
    endpoint: str = ""  # "" = protocol.default_endpoint(), the user's own socket
    model: str = "demo"
    device: str = "auto"
    dtype: str = "auto"
    curve_dir: str = ""
    max_queue: int = 16
    threads: int = 0  # torch CPU threads; 0 = torch's default (one per core)
    log_file: str = ""  # "" = the platformdirs default; "-" = stderr only
    log_level: str = "info"


HELP = {
    "endpoint": "ZeroMQ endpoint to bind (default: the user's own socket, "
    f"{protocol.default_endpoint()}); non-loopback needs --curve-dir",
    "model": f"the model: {MODEL_NAMES_HELP}",
    "device": 'torch device, a comma list for one worker per device, or "auto" (every CUDA GPU, else cpu)',
    "dtype": 'float32, float16, bfloat16 or "auto" (float16 on CUDA, else float32)',
    "curve_dir": "folder made by `smartbrush keys`: enables CURVE encryption and client authentication",
    "max_queue": "most jobs waiting at once; more are refused with queue_full",
    "threads": "torch CPU threads (0: torch's default, one per core; 1 is faster on busy shared cores)",
    "log_file": 'log file (default: the platformdirs log folder; "-" for stderr only)',
    "log_level": "debug, info, warning or error",
}


def env_name(name: str) -> str:
    return f"SMARTBRUSH_{name.upper()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --config and one flag per setting (default None: unset, so env and file can apply)."""
    parser.add_argument(
        "--config",
        default=None,
        help=f"config file (env SMARTBRUSH_CONFIG; default {default_config_path()})",
    )
    for item in fields(Settings):
        flag = "--" + item.name.replace("_", "-")
        text = HELP[item.name].replace("%(default)s", str(item.default))
        parser.add_argument(
            flag,
            default=None,
            type=int if item.type in (int, "int") else str,
            help=f"{text} [env {env_name(item.name)}]",
        )


def load_settings(args: argparse.Namespace) -> Settings:
    """Settings from flags, environment and config file (raises ValueError for a bad file or value)."""
    explicit = args.config or os.environ.get("SMARTBRUSH_CONFIG")
    path = Path(explicit) if explicit else default_config_path()
    if explicit and path.suffix.lower() == ".ini":
        raise ValueError(f"config file {path}: {_ini_advice()}")
    overrides = [  # the environment, then flags: a later override wins
        f"daemon.{item.name}={os.environ[env_name(item.name)]}"
        for item in fields(Settings)
        if os.environ.get(env_name(item.name))
    ]
    overrides += [
        f"daemon.{item.name}={getattr(args, item.name)}"
        for item in fields(Settings)
        if getattr(args, item.name, None) is not None
    ]
    try:
        loaded = load_config(
            path if explicit or path.is_file() else None,
            overrides,
            defaults={"daemon": asdict(Settings())},
        )
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    settings = Settings(**loaded["daemon"])
    if settings.max_queue < 1:
        raise ValueError("max_queue must be at least 1")
    if settings.threads < 0:
        raise ValueError("threads must be 0 (torch's default) or more")
    return settings


def old_ini_warning(args: argparse.Namespace) -> str | None:
    """One line for the log when an old smartbrushd.ini is there but no smartbrushd.toml (and no other
    config file is named): the INI is not read any more."""
    if args.config or os.environ.get("SMARTBRUSH_CONFIG"):
        return None
    ini = old_ini_path()
    if not ini.is_file() or default_config_path().exists():
        return None
    return f"{ini} is no longer read: {_ini_advice()}"


def _ini_advice() -> str:
    return (
        f"the daemon's config file is TOML now; write {default_config_path()} with a [daemon] "
        'table and quoted strings (model = "demo", max_queue = 16)'
    )

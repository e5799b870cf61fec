"""Daemon settings: each one a command-line flag, an environment variable and a config-file key.

Precedence: flag > environment (SMARTBRUSH_<NAME>) > config file > default. The config file is an INI
file with a [daemon] section, by default in the platformdirs user config folder:

    [daemon]
    endpoint = tcp://127.0.0.1:5737
    model = demo
    device = auto
"""

from __future__ import annotations

import argparse
import configparser
import os
from dataclasses import dataclass, fields
from pathlib import Path

import platformdirs

from smartbrush.wire import protocol

APP_NAME = "smartbrush"


def default_config_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "smartbrushd.ini"


def default_log_path() -> Path:
    return platformdirs.user_log_path(APP_NAME) / "smartbrushd.log"


@dataclass
class Settings:
    endpoint: str = protocol.DEFAULT_ENDPOINT
    model: str = "demo"
    device: str = "auto"
    dtype: str = "auto"
    curve_dir: str = ""
    max_queue: int = 16
    threads: int = 0  # torch CPU threads; 0 = torch's default (one per core)
    log_file: str = ""  # "" = the platformdirs default; "-" = stderr only
    log_level: str = "info"


HELP = {
    "endpoint": "ZeroMQ endpoint to bind (default %(default)s); non-loopback needs --curve-dir",
    "model": 'model: "demo" (shipped), "tiny" (random test model, fast, meaningless output), a '
    "diffusers folder or a hub id",
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
    """Settings from flags, environment and config file (raises ValueError for a bad file)."""
    explicit = args.config or os.environ.get("SMARTBRUSH_CONFIG")
    path = Path(explicit) if explicit else default_config_path()
    from_file: dict[str, str] = {}
    if path.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as error:
            raise ValueError(f"config file {path}: {error}") from None
        if parser.has_section("daemon"):
            from_file = dict(parser.items("daemon"))
    elif explicit:
        raise ValueError(f"config file {path} does not exist")
    known = {item.name for item in fields(Settings)}
    unknown = sorted(set(from_file) - known)
    if unknown:
        raise ValueError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")

    settings = Settings()
    for item in fields(Settings):
        value = getattr(args, item.name, None)
        if value is None:
            value = os.environ.get(env_name(item.name)) or from_file.get(item.name)
        if value is None:
            continue
        if item.type in (int, "int"):
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{item.name} must be an integer, not {value!r}") from None
        setattr(settings, item.name, value)
    if settings.max_queue < 1:
        raise ValueError("max_queue must be at least 1")
    if settings.threads < 0:
        raise ValueError("threads must be 0 (torch's default) or more")
    return settings

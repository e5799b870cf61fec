"""The one config loader: defaults, updated from a TOML (or YAML) file, then "section.key=value" overrides.

Used by training (smartbrush.research.training_config holds its defaults) and by the daemon
(smartbrushd.config). Every key must be one the defaults have, and a value must have its default's type
(true/false, an integer, a number, a string). Standard library only (plus PyYAML for a .yaml file), so a
config can be checked without torch.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is 3.11+; tomli is the same parser, installed on 3.10 (pyproject.toml)
    import tomli as tomllib

Config = dict[str, dict[str, Any]]


def load_config(
    path: str | Path | None,
    overrides: Sequence[str] = (),
    *,
    defaults: Mapping[str, Mapping[str, Any]],
) -> Config:
    """A copy of `defaults`, updated from the TOML or YAML file at `path` (none: the defaults alone),
    then from "section.key=value" overrides in order (a later one wins).

    Raises FileNotFoundError for a named file that is not there, ValueError (one line, naming the file
    and the key) for a file that does not parse, an unknown key or a value of the wrong type.
    """
    config: Config = copy.deepcopy({section: dict(values) for section, values in defaults.items()})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        for section, values in _read(path).items():
            if not isinstance(values, dict):
                raise ValueError(f"{path}: [{section}] must be a table")
            for key, value in values.items():
                try:
                    _set(config, defaults, section, key, value)
                except ValueError as error:
                    raise ValueError(f"{path}: {error}") from None
    for item in overrides:
        name, sep, raw = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        raw = raw.strip()
        value = _parse_value(raw)
        default = defaults.get(section, {}).get(key)
        if isinstance(default, str) and not isinstance(value, str):
            value = raw  # a string key takes the text as it is ("123" stays a string)
        _set(config, defaults, section, key, value)
    return config


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text) or {}
        else:
            loaded = tomllib.loads(text)
    except Exception as error:  # both parsers raise their own error types
        message = " ".join(str(error).split())  # YAML's errors span lines
        raise ValueError(f"{path}: cannot parse config: {message}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: cannot parse config: expected tables of key = value")
    return loaded


def _set(
    config: Config, defaults: Mapping[str, Mapping[str, Any]], section: str, key: str, value: Any
) -> None:
    if section not in config or key not in config[section]:
        known = ", ".join(f"{s}.{k}" for s in config for k in config[s])
        raise ValueError(f"unknown config key {section}.{key}; known keys: {known}")
    default = defaults[section][key]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{section}.{key} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{section}.{key} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{section}.{key} must be a number, got {value!r}")
        value = float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{section}.{key} must be a string, got {value!r}")
    config[section][key] = value


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return {"true": True, "false": False}.get(raw.lower(), raw)

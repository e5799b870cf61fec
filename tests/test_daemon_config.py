"""Daemon settings: flag > environment > config file > default."""

from __future__ import annotations

import os

import pytest
from smartbrushd import config
from smartbrushd.server import build_parser


def settings_for(argv: list[str]) -> config.Settings:
    return config.load_settings(build_parser().parse_args(argv))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("SMARTBRUSH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


def test_defaults():
    settings = settings_for([])
    assert settings.endpoint == "tcp://127.0.0.1:5737"
    assert (settings.model, settings.device, settings.dtype, settings.max_queue) == (
        "demo",
        "auto",
        "auto",
        16,
    )


def test_flag_beats_environment_beats_file(tmp_path, monkeypatch):
    path = tmp_path / "smartbrushd.ini"
    path.write_text("[daemon]\nmodel = from-file\ndevice = cuda:1\nmax_queue = 3\n")
    assert settings_for(["--config", str(path)]).model == "from-file"
    monkeypatch.setenv("SMARTBRUSH_MODEL", "from-env")
    settings = settings_for(["--config", str(path)])
    assert (settings.model, settings.device, settings.max_queue) == ("from-env", "cuda:1", 3)
    assert settings_for(["--config", str(path), "--model", "from-flag"]).model == "from-flag"


def test_default_config_file_location_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "smartbrush").mkdir()
    (tmp_path / "smartbrush" / "smartbrushd.ini").write_text(
        "[daemon]\nendpoint = ipc:///tmp/sb.sock\n"
    )
    assert settings_for([]).endpoint == "ipc:///tmp/sb.sock"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[daemon]\nmodle = demo\n", r"unknown setting\(s\) modle"),
        ("[daemon]\nmax_queue = many\n", "max_queue must be an integer"),
        ("[daemon]\nmax_queue = 0\n", "at least 1"),
        ("[daemon]\nthreads = -2\n", "threads must be 0"),
        ("not an ini file", "config file"),
    ],
)
def test_bad_config_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        settings_for(["--config", str(path)])


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        settings_for(["--config", str(tmp_path / "nope.ini")])

"""Daemon settings: flag > environment > config file (TOML, [daemon]) > default."""

from __future__ import annotations

import os

import pytest
from smartbrushd import config
from smartbrushd.server import build_parser, serve


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
    assert settings.endpoint == ""  # the user's own socket: protocol.default_endpoint()
    assert (settings.model, settings.device, settings.dtype, settings.max_queue) == (
        "demo",
        "auto",
        "auto",
        16,
    )


def test_flag_beats_environment_beats_file(tmp_path, monkeypatch):
    path = tmp_path / "smartbrushd.toml"
    path.write_text('[daemon]\nmodel = "from-file"\ndevice = "cuda:1"\nmax_queue = 3\n')
    assert settings_for(["--config", str(path)]).model == "from-file"
    monkeypatch.setenv("SMARTBRUSH_MODEL", "from-env")
    monkeypatch.setenv("SMARTBRUSH_THREADS", "2")
    settings = settings_for(["--config", str(path)])
    assert (settings.model, settings.device, settings.max_queue) == ("from-env", "cuda:1", 3)
    assert settings.threads == 2  # an integer from the environment's text
    settings = settings_for(["--config", str(path), "--model", "from-flag", "--max-queue", "5"])
    assert (settings.model, settings.max_queue) == ("from-flag", 5)
    monkeypatch.setenv("SMARTBRUSH_CONFIG", str(path))  # the file named by the environment
    assert settings_for([]).device == "cuda:1"


def test_string_settings_keep_their_text(monkeypatch):
    monkeypatch.setenv("SMARTBRUSH_CURVE_DIR", "123")  # not the number 123
    assert settings_for(["--log-file", "", "--model", "true"]) == config.Settings(
        curve_dir="123", log_file="", model="true"
    )


def test_default_config_file_location_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "smartbrush").mkdir()
    (tmp_path / "smartbrush" / "smartbrushd.toml").write_text(
        '[daemon]\nendpoint = "ipc:///tmp/sb.sock"\n'
    )
    assert settings_for([]).endpoint == "ipc:///tmp/sb.sock"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[daemon]\nmodle = "demo"\n', r"bad.toml: unknown config key daemon.modle; known keys: "),
        ('[server]\nmodel = "demo"\n', r"bad.toml: unknown config key server.model"),
        ('[daemon]\nmax_queue = "many"\n', r"bad.toml: daemon.max_queue must be an integer"),
        ("[daemon]\nmax_queue = 2.5\n", r"bad.toml: daemon.max_queue must be an integer"),
        ("[daemon]\nmodel = 5\n", r"bad.toml: daemon.model must be a string"),
        ("[daemon]\nmax_queue = 0\n", "at least 1"),
        ("[daemon]\nthreads = -2\n", "threads must be 0"),
        ("[daemon]\nmodel = demo\n", r"bad.toml: cannot parse config"),  # an INI-style bare string
        ("not a config file", r"bad.toml: cannot parse config"),
    ],
)
def test_bad_config_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as raised:
        settings_for(["--config", str(path)])
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SMARTBRUSH_MAX_QUEUE", "many", "daemon.max_queue must be an integer, got 'many'"),
        ("SMARTBRUSH_MAX_QUEUE", "0", "max_queue must be at least 1"),
        ("SMARTBRUSH_THREADS", "-1", "threads must be 0"),
    ],
)
def test_bad_environment_values_are_clear_errors(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        settings_for([])


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        settings_for(["--config", str(tmp_path / "nope.toml")])


def test_an_ini_config_file_is_refused_with_what_to_write(tmp_path):
    path = tmp_path / "smartbrushd.ini"
    path.write_text("[daemon]\nmodel = demo\n")
    with pytest.raises(ValueError, match=r"smartbrushd.ini: the daemon's config file is TOML now"):
        settings_for(["--config", str(path)])


def test_an_old_ini_file_is_not_read_and_the_daemon_warns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "smartbrush"
    folder.mkdir()
    (folder / "smartbrushd.ini").write_text("[daemon]\nmodel = from-ini\n")
    args = build_parser().parse_args(["--endpoint", "tcp://0.0.0.0:5737", "--log-file", "-"])
    assert config.load_settings(args).model == "demo"  # not read
    warning = config.old_ini_warning(args)
    assert warning is not None and "\n" not in warning
    assert f"{folder / 'smartbrushd.ini'} is no longer read" in warning
    assert f"write {folder / 'smartbrushd.toml'} with a [daemon] table" in warning
    # the daemon logs it (then stops here: a non-loopback endpoint without CURVE is refused)
    with pytest.raises(ValueError, match="refusing to listen on tcp://0.0.0.0:5737"):
        serve(args)
    assert f"smartbrushd WARNING {warning}\n" in capsys.readouterr().err
    # once the TOML is there (or another file is named) there is nothing to say
    (folder / "smartbrushd.toml").write_text('[daemon]\nmodel = "from-toml"\n')
    assert config.old_ini_warning(args) is None and config.load_settings(args).model == "from-toml"

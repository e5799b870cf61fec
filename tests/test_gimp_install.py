"""`smartbrush install-plugin gimp`: the folder GIMP 3 expects, run bit, vendored modules (no GIMP needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartbrush.cli import main
from smartbrush.commands import install_plugin
from smartbrush.wire.errors import UserError

REPO = Path(__file__).resolve().parents[1]
WIRE_MODULES = sorted(p.name for p in (REPO / "smartbrush" / "wire").glob("*.py"))
# The `smartbrush` command (not `python -m smartbrush.cli`, which would import the CLI twice).
SMARTBRUSH = [sys.executable, "-c", "import sys; from smartbrush.cli import main; sys.exit(main())"]


def test_installs_an_executable_plug_in_with_its_vendored_modules(tmp_path):
    done = subprocess.run(
        [*SMARTBRUSH, "install-plugin", "gimp", "--dest", str(tmp_path),
         "--editor-python", sys.executable],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "smartbrush-fill"
    script = folder / "smartbrush-fill.py"
    assert script.is_file() and os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/usr/bin/env python3")
    assert (folder / "vendor" / "smartbrush" / "__init__.py").is_file()
    for module in WIRE_MODULES:
        assert (folder / "vendor" / "smartbrush" / "wire" / module).is_file(), module
    assert "already importable" in done.stdout  # this Python has pyzmq and msgpack
    # The vendored package imports on its own, without this repository on the path.
    code = (
        f"import sys; sys.path.insert(0, {str(folder / 'vendor')!r}); "
        "import smartbrush.wire.client, smartbrush.wire.editing, smartbrush; print(smartbrush.__file__)"
    )
    check = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().startswith(str(folder / "vendor"))


def test_reinstalling_replaces_the_old_copy(tmp_path):
    folder = install_plugin.install_gimp(tmp_path, sys.executable)
    (folder / "stale.py").write_text("old")
    assert install_plugin.install_gimp(tmp_path, sys.executable) == folder
    assert not (folder / "stale.py").exists()
    assert (folder / "smartbrush-fill.py").is_file()


def test_default_folder_is_gimp3s_config_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    if sys.platform.startswith("linux"):
        assert install_plugin.gimp_config_dir() == tmp_path / "config" / "GIMP" / "3.0"
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "profile"))
    assert install_plugin.gimp_config_dir() == tmp_path / "profile"


def test_an_unusable_editor_python_is_a_user_error_and_installs_nothing(tmp_path):
    with pytest.raises(UserError, match="cannot run the editor's Python"):
        install_plugin.install_gimp(tmp_path, str(tmp_path / "no-such-python"))
    assert not (tmp_path / "smartbrush-fill").exists()


def test_a_python_without_zmq_that_gets_no_wheels_leaves_nothing_behind(tmp_path, monkeypatch):
    # an editor Python that runs but cannot import zmq, and no wheels can be fetched for it
    python = tmp_path / "python3"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    python.chmod(0o755)
    monkeypatch.setattr(install_plugin, "DEPENDENCIES", ("no-such-package-smartbrush-test",))
    with pytest.raises(UserError, match="nothing was installed"):
        install_plugin.install_gimp(tmp_path / "plug-ins", str(python))
    assert not (tmp_path / "plug-ins" / "smartbrush-fill").exists()


def test_the_installer_says_the_daemon_must_run_and_when_no_gimp_is_here(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gimp on it
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["install-plugin", "gimp", "--dest", str(tmp_path / "plug-ins"),
                 "--editor-python", sys.executable]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "the SmartBrush daemon must be running for it: start it with `smartbrush serve`" in out
    assert "no GIMP 3 found here" in out

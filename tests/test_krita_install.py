"""`smartbrush install-plugin krita`: files in place, vendored modules, kritarc enabled (no Krita needed)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from needs import needs

from smartbrush.cli import main
from smartbrush.commands.install_plugin import enable_krita_plugin

SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return tmp_path / "home"


def imports(python, modules: str) -> bool:
    done = subprocess.run([python, "-I", "-c", f"import {modules}"], capture_output=True)
    return done.returncode == 0


def system_python_can_run_the_plugin() -> bool:
    """Debian's krita, python3-pyqt5, python3-zmq and python3-msgpack (.ci/run installs them)."""
    return SYSTEM_PYTHON.exists() and imports(SYSTEM_PYTHON, "zmq, msgpack, PyQt5.QtWidgets")


def test_enable_keeps_the_rest_of_kritarc(tmp_path):
    kritarc = tmp_path / "kritarc"
    kritarc.write_text(
        "[General]\nLastTheme=Krita dark\n\n[python]\nenable_scripter=true\n"
        "enable_smartbrush_krita=false\n\n[MainWindow]\nState=AAAA==\n"
    )
    enable_krita_plugin(kritarc, "smartbrush_krita")
    enable_krita_plugin(kritarc, "smartbrush_krita")  # idempotent
    assert kritarc.read_text() == (
        "[General]\nLastTheme=Krita dark\n\n[python]\nenable_scripter=true\n"
        "enable_smartbrush_krita=true\n\n[MainWindow]\nState=AAAA==\n"
    )
    enable_krita_plugin(kritarc, "other_plugin")
    assert "enable_smartbrush_krita=true\nenable_other_plugin=true\n\n[MainWindow]" in (
        kritarc.read_text()
    )
    fresh = tmp_path / "new" / "kritarc"
    enable_krita_plugin(fresh, "smartbrush_krita")
    assert fresh.read_text() == "[python]\nenable_smartbrush_krita=true\n"


@needs(system_python_can_run_the_plugin(), "needs /usr/bin/python3 with PyQt5, zmq, msgpack")
def test_install_krita_plugin_for_a_user(home, capsys, monkeypatch):
    monkeypatch.setenv(
        "PATH", "/usr/bin:/bin"
    )  # as Krita should be started: python3 is the system's
    assert main(["install-plugin", "krita"]) == 0
    pykrita = home / ".local/share/krita/pykrita"
    package = pykrita / "smartbrush_krita"
    assert (
        (pykrita / "smartbrush_krita.desktop").read_text().count("X-KDE-Library=smartbrush_krita")
    )
    assert (package / "krita_adapter.py").exists() and (package / "docker.py").exists()
    assert (
        "<shortcut>ctrl+alt+b</shortcut>"
        in (home / ".local/share/krita/actions/smartbrush_krita.action").read_text()
    )
    vendored = sorted(p.name for p in (package / "vendor" / "smartbrush" / "wire").glob("*.py"))
    wire = sorted(p.name for p in Path(__file__).resolve().parents[1].glob("smartbrush/wire/*.py"))
    assert vendored == wire and "protocol.py" in wire
    assert (package / "vendor" / "smartbrush" / "__init__.py").is_file()
    kritarc = (home / ".config/kritarc").read_text()
    assert "enable_smartbrush_krita=true" in kritarc
    # Start daemon runs this very smartbrush (a virtualenv's is not on Krita's PATH)
    start = shlex.join([sys.executable, "-m", "smartbrush", "serve"])
    assert f"[SmartBrush]\nstart_command={start}" in kritarc
    out = capsys.readouterr().out
    assert "already importable by /usr/bin/python3" in out
    assert "first python3 on this PATH" not in out

    # reinstalling replaces the old copy (no stale files left behind); a command the user set stays
    (package / "stale.py").write_text("")
    rc = home / ".config/kritarc"
    rc.write_text(rc.read_text().replace(start, "/opt/sb/bin/smartbrush serve --model shapes"))
    assert main(["install-plugin", "krita"]) == 0
    assert not (package / "stale.py").exists()
    assert "start_command=/opt/sb/bin/smartbrush serve --model shapes" in rc.read_text()


def test_install_with_an_editor_python_that_cannot_run(home, tmp_path, capsys):
    code = main(
        ["install-plugin", "krita", "--dest", str(tmp_path / "pk"), "--editor-python", "/nope"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("smartbrush install-plugin: error: cannot run the editor's Python /nope")
    assert "Traceback" not in err
    assert not (tmp_path / "pk").exists()  # nothing half-installed


@needs(system_python_can_run_the_plugin(), "needs /usr/bin/python3 with PyQt5, zmq, msgpack")
def test_install_names_the_path_pitfall_when_another_python3_comes_first(home, tmp_path, capsys,
                                                                          monkeypatch):  # fmt: skip
    # a virtualenv's python3 first on PATH, as in a shell where SmartBrush's own venv is active
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert main(["install-plugin", "krita"]) == 0
    out = capsys.readouterr().out
    assert (
        f"note: the first python3 on this PATH is {venv_bin / 'python3'}, not /usr/bin/python3"
        in out
    )
    assert "start it with a PATH whose python3 is the system one" in out


@pytest.mark.skipif(
    imports(sys.executable, "PyQt5.QtCore"), reason="this Python has PyQt5: it cannot stand in"
)
def test_install_refuses_a_krita_python_without_pyqt5(home, tmp_path, capsys):
    # this interpreter is a real Python without PyQt5, as /usr/bin/python3 is before python3-pyqt5
    dest = tmp_path / "pykrita"
    code = main(["install-plugin", "krita", "--dest", str(dest), "--editor-python", sys.executable])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{sys.executable} cannot import what Krita's Python plugins need" in err
    assert "No module named 'PyQt5'" in err
    assert "sudo apt-get install " in err and "python3-pyqt5" in err
    assert "first python3 on PATH" in err  # the PATH pitfall is named
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not dest.exists() and not (home / ".config/kritarc").exists()  # nothing installed

"""`smartbrush install-plugin krita`: files in place, vendored modules, kritarc enabled (no Krita needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from smartbrush.cli import main
from smartbrush.install_plugin import enable_krita_plugin

SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return tmp_path / "home"


def system_python_has_zmq() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    done = subprocess.run([SYSTEM_PYTHON, "-I", "-c", "import zmq, msgpack"], capture_output=True)
    return done.returncode == 0


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


@pytest.mark.skipif(not system_python_has_zmq(), reason="needs /usr/bin/python3 with zmq+msgpack")
def test_install_krita_plugin_for_a_user(home, capsys):
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
    vendored = sorted(p.name for p in (package / "vendor" / "smartbrush").glob("*.py"))
    assert vendored == ["__init__.py", "client.py", "editing.py", "protocol.py"]
    assert "enable_smartbrush_krita=true" in (home / ".config/kritarc").read_text()
    out = capsys.readouterr().out
    assert "already importable by /usr/bin/python3" in out

    # reinstalling replaces the old copy (no stale files left behind)
    (package / "stale.py").write_text("")
    assert main(["install-plugin", "krita"]) == 0
    assert not (package / "stale.py").exists()


def test_install_with_an_editor_python_that_cannot_run(home, tmp_path, capsys):
    code = main(
        ["install-plugin", "krita", "--dest", str(tmp_path / "pk"), "--editor-python", "/nope"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("smartbrush install-plugin: error: cannot run the editor's Python /nope")
    assert "Traceback" not in err
    assert not (tmp_path / "pk").exists()  # nothing half-installed

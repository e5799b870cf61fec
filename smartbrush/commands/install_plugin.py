"""`smartbrush install-plugin krita|gimp [--dest DIR]`: install an editor plugin for this user.

The plugins run inside the editor's own Python, which cannot import this package. So the plugin is
copied together with a vendored copy of the pure-Python wire package (smartbrush.wire: protocol, client,
editor flow, errors)
and, when the editor's Python lacks them, wheels of pyzmq and msgpack for that Python's version.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from smartbrush.wire.errors import UserError

KRITA_PLUGIN = "smartbrush_krita"
PACKAGE = Path(__file__).resolve().parents[1]  # smartbrush/
REPO = PACKAGE.parent
# A source checkout has the plugins at its top; an installed wheel carries them as data files.
PLUGINS = next(
    (
        folder
        for folder in (
            REPO / "plugins",
            Path(sysconfig.get_path("data")) / "share/smartbrush/plugins",
        )
        if (folder / "krita" / KRITA_PLUGIN).is_dir()
    ),
    REPO / "plugins",
)
# What an editor plugin needs, vendored whole; pure Python apart from pyzmq and msgpack.
WIRE = PACKAGE / "wire"
VENDOR_INIT = '''"""The wire part of SmartBrush (smartbrush.wire), vendored for an editor plugin.

Installed by `smartbrush install-plugin`; reinstall to update. The full package lives elsewhere.
"""

__version__ = "{version}"
'''
DEPENDENCIES = ("pyzmq", "msgpack")  # pip names; imported as zmq and msgpack
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "vendor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("editor", choices=("krita", "gimp"))
    parser.add_argument(
        "--dest",
        type=Path,
        help="the editor's plugin folder (Krita: the pykrita folder; default: this user's one)",
    )
    parser.add_argument(
        "--editor-python",
        help="the Python the editor embeds, to check and vendor pyzmq/msgpack for "
        "(default for Krita on Linux: /usr/bin/python3)",
    )


def run(args: argparse.Namespace) -> int:
    if args.editor == "krita":
        install_krita(args.dest, args.editor_python)
    else:
        install_gimp(args.dest, args.editor_python)
    return 0


# --- Krita ---------------------------------------------------------------------------------------


def install_krita(dest: Path | None = None, editor_python: str | None = None) -> Path:
    """Copy the Krita plugin into the pykrita folder, vendor its dependencies, enable it.

    Returns the installed package folder.
    """
    source = PLUGINS / "krita"
    if not (source / KRITA_PLUGIN / "__init__.py").is_file():
        raise UserError(f"the Krita plugin sources are missing: {source} (use a source checkout)")
    python = editor_python or default_krita_python()
    if python is not None:
        check_krita_python(python)  # fail before touching anything if Krita could not load a plugin
    pykrita = (dest or krita_data_dir() / "pykrita").expanduser()
    pykrita.mkdir(parents=True, exist_ok=True)

    package = pykrita / KRITA_PLUGIN
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(source / KRITA_PLUGIN, package, ignore=IGNORED)
    shutil.copy2(source / f"{KRITA_PLUGIN}.desktop", pykrita)
    # Krita reads .action files (the menu entry's text and default shortcut) from the resource folder
    # next to pykrita.
    actions = pykrita.parent / "actions"
    actions.mkdir(exist_ok=True)
    shutil.copy2(source / f"{KRITA_PLUGIN}.action", actions)

    vendor = package / "vendor"
    vendor_smartbrush(vendor)
    how = provide_dependencies(python, vendor)

    kritarc = krita_config_file()
    enable_krita_plugin(kritarc, KRITA_PLUGIN)
    # Start daemon runs this smartbrush, wherever it lives (a virtualenv is not on Krita's PATH);
    # a command the user set stays.
    start = shlex.join([sys.executable, "-m", "smartbrush", "serve"])
    set_kritarc(kritarc, "SmartBrush", "start_command", start, keep_if_set=True)
    print(f"Installed the SmartBrush Krita plugin in {package}")
    print(f"  shortcut and menu entry: {actions / (KRITA_PLUGIN + '.action')}")
    print(f"  enabled in {kritarc} (restart Krita; if Krita was running, it may overwrite this:")
    print("  then tick SmartBrush in Settings > Configure Krita > Python Plugin Manager)")
    print(f"  pyzmq and msgpack: {how}")
    print(f"  Start daemon in the docker runs: {start}")
    if python is not None and (warning := krita_path_warning(python)):
        print(f"  note: {warning}")
    return package


def krita_data_dir() -> Path:
    """Krita's per-user resource folder (holds pykrita/ and actions/)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("krita", appauthor=False, roaming=True))


def krita_config_file() -> Path:
    """Where Krita (KConfig) keeps kritarc."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData/Local")) / "kritarc"
    if sys.platform == "darwin":
        return Path.home() / "Library/Preferences/kritarc"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kritarc"


def default_krita_python() -> str | None:
    """Distribution Krita packages embed the system Python; the official builds bundle their own."""
    if sys.platform.startswith("linux") and Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return None


def krita_python_libs() -> Path | None:
    """The folder of a distribution Krita's PyKrita bindings (krita-python-libs), if installed."""
    for pattern in ("/usr/lib/*/krita-python-libs", "/usr/lib*/krita-python-libs"):
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[0]
    return None


def check_krita_python(python: str) -> None:
    """Krita's Python plugins need PyQt5 and Krita's own PyKrita module: check both with `python`."""
    python_version(python)  # a Python that cannot run at all gets its own message
    libs = krita_python_libs()
    code = "import PyQt5.QtCore, PyQt5.QtWidgets"
    if libs is not None:
        code = f"import sys; sys.path.insert(0, {str(libs)!r}); {code}; import PyKrita.krita"
    try:
        done = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UserError(f"cannot run the editor's Python {python}: {error}") from None
    if done.returncode == 0:
        return
    why = (done.stderr.strip().splitlines() or ["import failed"])[-1]
    if "PyQt5" in why:
        packages = "python3-pyqt5" if libs or shutil.which("krita") else "krita python3-pyqt5"
        fix = (
            "Krita loads no Python plugin without PyQt5. On Debian/Ubuntu run: "
            f"sudo apt-get install {packages}"
        )
    else:
        fix = f"Krita's PyKrita module (in {libs}) does not load: reinstall Krita"
    raise UserError(
        f"{python} cannot import what Krita's Python plugins need ({why}). {fix}. "
        f"If Krita brings its own Python (AppImage, Windows, macOS), pass that one with "
        f"--editor-python. {KRITA_PATH_PITFALL}"
    )


KRITA_PATH_PITFALL = (
    "Krita finds its Python through the first python3 on PATH: start it with a PATH whose python3 is "
    "the system one (not a virtualenv's or pyenv's), or it loads no Python plugin."
)


def krita_path_warning(python: str) -> str | None:
    """The PATH pitfall, when the first python3 on PATH is not the Python Krita embeds."""
    first = shutil.which("python3")
    if first is None or Path(first).resolve() == Path(python).resolve():
        return None
    return f"the first python3 on this PATH is {first}, not {python}. {KRITA_PATH_PITFALL}"


def enable_krita_plugin(kritarc: Path, name: str) -> None:
    """Set `enable_<name>=true` in the [python] group of kritarc, keeping everything else as it is."""
    set_kritarc(kritarc, "python", f"enable_{name}", "true")


OLD_START_COMMAND = "smartbrush serve"  # the docker's default before install-plugin set a full one


def set_kritarc(
    kritarc: Path, group: str, name: str, value: str, keep_if_set: bool = False
) -> None:
    """Set `name=value` in [group] of kritarc (a KConfig INI file), keeping everything else as it
    is; with keep_if_set, a value already there stays (unless it is the old bare default)."""
    line = f"{name}={value}"
    text = kritarc.read_text(encoding="utf-8") if kritarc.exists() else ""
    lines = text.splitlines()
    try:
        start = lines.index(f"[{group}]")
    except ValueError:
        lines += (["", f"[{group}]"] if lines else [f"[{group}]"]) + [line]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines)
        )
        key = re.compile(rf"^{re.escape(name)}\s*=")
        found = [i for i in range(start + 1, end) if key.match(lines[i])]
        if found:
            current = lines[found[0]].split("=", 1)[1].strip()
            if not (keep_if_set and current and current != OLD_START_COMMAND):
                lines[found[0]] = line
        else:
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1  # keep the blank line before the next group
            lines.insert(end, line)
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    kritarc.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- GIMP (written by the GIMP plug-in's author) ----------------------------------------------------

GIMP_PLUGIN = "smartbrush-fill"  # GIMP 3 wants plug-ins/NAME/NAME.py, executable


def install_gimp(dest: Path | None = None, editor_python: str | None = None) -> Path:
    """Copy the GIMP 3 plug-in into a plug-ins folder, set its run bit, vendor its dependencies.

    Returns the installed plug-in folder.
    """
    source = PLUGINS / "gimp" / GIMP_PLUGIN
    if not (source / f"{GIMP_PLUGIN}.py").is_file():
        raise UserError(f"the GIMP plug-in sources are missing: {source} (use a source checkout)")
    python = editor_python or default_gimp_python()
    if python is not None:
        python_version(python)  # fail before copying anything if that Python cannot run
    plug_ins = (dest or gimp_config_dir() / "plug-ins").expanduser()
    plug_ins.mkdir(parents=True, exist_ok=True)

    folder = plug_ins / GIMP_PLUGIN
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source, folder, ignore=IGNORED)
    script = folder / f"{GIMP_PLUGIN}.py"
    script.chmod(script.stat().st_mode | 0o755)  # GIMP only runs executable plug-ins

    vendor = folder / "vendor"
    vendor_smartbrush(vendor)
    try:
        how = provide_dependencies(python, vendor)
    except UserError as error:
        shutil.rmtree(folder)  # a plug-in that cannot run is not left behind
        raise UserError(f"{error} (nothing was installed)") from None
    print(f"Installed the SmartBrush GIMP plug-in in {folder}")
    print("  restart GIMP, then select an area and use Filters > SmartBrush Fill...")
    print("  the SmartBrush daemon must be running for it: start it with `smartbrush serve`")
    print(f"  pyzmq and msgpack: {how}")
    if not gimp_found():
        print(
            "  note: no GIMP 3 found here (no gimp-3.0 or gimp on PATH, no Flatpak org.gimp.GIMP); "
            "the plug-in is ready for when it is installed"
        )
    return folder


def gimp_found() -> bool:
    """Whether this machine has a GIMP 3 this user could run."""
    flatpak = Path.home() / ".var/app/org.gimp.GIMP"
    return bool(shutil.which("gimp-3.0") or shutil.which("gimp") or flatpak.is_dir())


def gimp_config_dir() -> Path:
    """GIMP 3's per-user folder (holds plug-ins/); $GIMP3_DIRECTORY overrides it, as in GIMP."""
    if os.environ.get("GIMP3_DIRECTORY"):
        return Path(os.environ["GIMP3_DIRECTORY"])
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData/Roaming")) / "GIMP/3.0"
    if sys.platform == "darwin":
        return Path.home() / "Library/Application Support/GIMP/3.0"
    flatpak = Path.home() / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    native = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "GIMP/3.0"
    # The Flatpak keeps its own profile; use it when that is the only GIMP 3 this user has run.
    return flatpak if flatpak.is_dir() and not native.is_dir() else native


def default_gimp_python() -> str | None:
    """Distribution GIMP packages run Python plug-ins with the system python3; bundles ship their own."""
    if sys.platform.startswith("linux") and Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return None


# --- shared: vendoring ---------------------------------------------------------------------------


def vendor_smartbrush(vendor: Path) -> Path:
    """Copy smartbrush.wire whole into vendor/smartbrush/wire, under a minimal smartbrush package."""
    from smartbrush import __version__

    target = vendor / "smartbrush"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copytree(WIRE, target / "wire", ignore=IGNORED)
    (target / "__init__.py").write_text(VENDOR_INIT.format(version=__version__), encoding="utf-8")
    return target


def provide_dependencies(python: str | None, vendor: Path) -> str:
    """Make zmq and msgpack importable for the editor's Python; say how.

    Uses the editor Python's own packages when it has them, else installs wheels for its version
    into `vendor` (which the plugin puts first on sys.path).
    """
    if python is not None and imports_ok(python, vendor):
        return f"already importable by {python}"
    if python is None:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        where = f"Python {version} (pass --editor-python to check the editor's own)"
    else:
        version = python_version(python)
        where = f"{python} (Python {version})"
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(vendor), "--only-binary=:all:", "--python-version", version,
        *DEPENDENCIES,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or (python is not None and not imports_ok(python, vendor)):
        raise UserError(
            f"pyzmq and msgpack are not importable by {where}, and installing wheels into {vendor} "
            f"failed ({(done.stderr or 'import still fails').strip().splitlines()[-1]}). On Debian/"
            "Ubuntu run: sudo apt-get install python3-zmq python3-msgpack"
        )
    return f"wheels for {where} installed into {vendor}"


def imports_ok(python: str, vendor: Path) -> bool:
    code = f"import sys; sys.path.insert(0, {str(vendor)!r}); import zmq, msgpack"
    try:
        done = subprocess.run([python, "-I", "-c", code], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def python_version(python: str) -> str:
    code = "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UserError(f"cannot run the editor's Python {python}: {error}") from None
    if done.returncode != 0:
        raise UserError(f"cannot run the editor's Python {python}: {done.stderr.strip()}")
    return done.stdout.strip()

"""The import graph keeps the architecture: arrows point down, research beside runtime, no circles.

    commands (smartbrush.cli, smartbrush.commands) -> smartbrushd -> smartbrush.runtime
        -> smartbrush.method -> smartbrush.wire
    smartbrush.research uses runtime, method and wire; nothing below commands uses it.

Read from the source with `ast` (every import, also those inside functions), so it needs nothing
installed and catches an import that only runs on some code path.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"smartbrush": ROOT / "smartbrush", "smartbrushd": ROOT / "daemon" / "smartbrushd"}

# what each layer may import (besides itself, the standard library and third-party packages);
# `smartbrush` alone (its __version__ and lazy re-exports) may be imported from anywhere
ALLOWED = {
    "wire": set(),
    "method": {"wire"},
    "runtime": {"method", "wire"},
    "smartbrushd": {"runtime", "method", "wire"},
    "research": {"runtime", "method", "wire"},
    "testing": {"runtime", "method", "wire"},  # tiny real models and helpers for tests/benchmarks
    "commands": {"smartbrushd", "research", "runtime", "method", "wire", "testing"},
}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "smartbrushd":
        return "smartbrushd"
    if len(parts) == 1:
        return "root"
    if parts[1] in ("cli", "__main__", "commands"):
        return "commands"
    return parts[1]


def module_name(path: Path) -> str:
    for package, folder in PACKAGES.items():
        if path.is_relative_to(folder):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def source_files() -> list[Path]:
    return sorted(p for folder in PACKAGES.values() for p in folder.rglob("*.py"))


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports: `from a.b import c` is a.b.c when that is a module."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = {module_name(path) for path in files}
    graph = {module_name(path): imports_of(path, known) for path in files}
    # a package's __init__ is imported with every module in it: not an edge of the design
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def test_arrows_point_down():
    wrong = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer(target) not in (layer(module), "root")
        and layer(target) not in ALLOWED.get(layer(module), set())
        and layer(module) != "root"
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph = import_graph()
    circles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(circles)


@pytest.mark.parametrize(
    "layout",
    [
        {"smartbrush.wire.a": {"smartbrush.method.b"}},  # up
        {"smartbrush.runtime.a": {"smartbrush.research.b"}},  # research is not used by runtime
        {"smartbrush.method.a": {"smartbrush.commands.b"}},  # nor are commands
    ],
)
def test_the_rule_catches_an_upward_import(layout):
    ((module, targets),) = layout.items()
    assert all(layer(t) not in ALLOWED[layer(module)] for t in targets)


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    folder = tmp_path / "smartbrush" / "runtime"
    folder.mkdir(parents=True)
    probe = folder / "probe.py"
    probe.write_text(
        "def f():\n    from smartbrush.research import training\n    from . import jobs\n"
    )
    PACKAGES["smartbrush"], saved = tmp_path / "smartbrush", PACKAGES["smartbrush"]
    try:
        found = imports_of(probe, {"smartbrush.research.training", "smartbrush.runtime.jobs"})
    finally:
        PACKAGES["smartbrush"] = saved
    assert found == {"smartbrush.research.training", "smartbrush.runtime.jobs"}


def test_plugins_import_only_the_wire():
    """The editors' plugins run in the editor's Python with a vendored smartbrush.wire, nothing else."""
    wrong = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            wrong += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in PACKAGES and not name.startswith("smartbrush.wire")
            ]
    assert not wrong, "\n".join(wrong)

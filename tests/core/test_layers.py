"""The core's layers hold: every import, function-level ones included, goes down the
stated order (docs/architecture.md), and the core never imports Qt."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# lowest first; a module may import its own layer and the layers before it
ORDER = (
    "version", "errors", "jobs", "device", "io", "model", "gis", "features", "presets", "training",
    "learning", "inference", "labelling", "evaluation", "benchmarks", "cli",
)  # fmt: skip
TOP = ("__init__", "__main__")  # the public API and the entry point sit above everything
QT = ("PySide6", "PyQt5", "PyQt6", "qtpy", "qtawesome", "superqt")


def layer_of(module: str) -> str | None:
    """The layer of a dotted ``acseg_core`` module name (None: not the core's)."""
    parts = module.split(".")
    if parts[0] != "acseg_core":
        return None
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def imports_of(source: str) -> list[tuple[int, str]]:
    """(line, imported module) of every import statement, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def violations(module: str, source: str) -> list[str]:
    """Imports of ``module`` (given its source) that go up the layers or reach Qt."""
    here = layer_of(module)
    problems = []
    for line, target in imports_of(source):
        if target.split(".")[0] in QT:
            problems.append(f"{module}:{line} imports Qt ({target})")
            continue
        there = layer_of(target)
        if here is None or there is None or here in TOP:
            continue
        if there in TOP:
            problems.append(f"{module}:{line} imports the public API {target}")
        elif ORDER.index(there) > ORDER.index(here):
            problems.append(f"{module}:{line} imports {target} ({there} is above {here})")
    return problems


def core_modules() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO / "acseg_core").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path.read_text(encoding="utf-8")))
    return out


def test_every_core_module_sits_in_a_known_layer() -> None:
    unknown = [name for name, _ in core_modules() if layer_of(name) not in (*ORDER, *TOP)]
    assert unknown == []


def test_no_import_goes_up_the_layers_function_level_ones_included() -> None:
    problems = [p for name, source in core_modules() for p in violations(name, source)]
    assert problems == []


def test_the_check_catches_a_back_import_inside_a_function() -> None:
    source = "def f():\n    from acseg_core.inference.predict import predict\n"
    assert violations("acseg_core.model.refine", source) == [
        "acseg_core.model.refine:2 imports acseg_core.inference.predict "
        "(inference is above model)"
    ]
    assert violations("acseg_core.io.raster", "import PySide6.QtCore\n") == [
        "acseg_core.io.raster:1 imports Qt (PySide6.QtCore)"
    ]
    assert violations("acseg_core.labelling.export", source) == []

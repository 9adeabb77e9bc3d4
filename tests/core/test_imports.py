"""Every ``from acseg_core… import name`` in the code names something that exists,
including the imports inside functions (which only fail when that path runs)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OWN = ("acseg_core", "app", "resources")


def own_imports() -> list[tuple[str, int, str, str]]:
    found = []
    for root in OWN:
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                    continue
                if node.module.split(".")[0] in OWN:
                    rel = str(path.relative_to(REPO))
                    found += [(rel, node.lineno, node.module, a.name) for a in node.names]
    return found


def test_every_own_import_resolves() -> None:
    pytest.importorskip("PySide6")
    broken = []
    for where, line, module, name in own_imports():
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"{where}:{line}: {module} ({exc})")
            continue
        if name != "*" and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                broken.append(f"{where}:{line}: {module} has no {name}")
    assert broken == []

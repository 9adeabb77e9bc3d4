"""The core must import with Qt made unimportable: it stays headless."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import acseg_core

QT_BLOCKER = """
import importlib, importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'PySide6', 'PyQt5', 'PyQt6', 'qtpy', 'qtawesome', 'superqt'}:
            raise ImportError('Qt is blocked: ' + name)
        return None
sys.meta_path.insert(0, Block())
try:
    import PySide6
    print('BLOCKER BROKEN')
except ImportError:
    print('blocker active')
"""


def all_core_modules() -> list[str]:
    root = Path(acseg_core.__file__).parent
    return ["acseg_core"] + [
        m.name for m in pkgutil.walk_packages([str(root)], prefix="acseg_core.")
    ]


def test_every_core_module_imports_without_qt() -> None:
    modules = all_core_modules()
    assert {"acseg_core.cli", "acseg_core.io.raster", "acseg_core.model.config"} <= set(modules)
    code = QT_BLOCKER + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print('imported', len(sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0] == "blocker active"
    assert result.stdout.splitlines()[-1].startswith("imported")

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


def test_the_core_imports_and_predicts_in_one_process_without_dask(tmp_path: Path) -> None:
    """Dask is an extra: nothing imports it at module level, and one process needs none."""
    from tests.core.synthetic import make_regions_image, tiny_model_file

    make_regions_image(tmp_path / "a.png", size=(64, 64), bands=3)
    model = tiny_model_file(tmp_path / "model.pt", smooth=0)
    blocker = QT_BLOCKER.replace("'superqt'}", "'superqt', 'dask', 'distributed'}")
    code = blocker + "".join(f"importlib.import_module({m!r})\n" for m in all_core_modules())
    code += (
        "from acseg_core.cli import main\n"
        f"code = main(['predict', {str(model)!r}, {str(tmp_path / 'a.png')!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '--device', 'cpu'])\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
        "print('exit', code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "exit 0"
    assert (tmp_path / "out" / "a_clusters.png").is_file()

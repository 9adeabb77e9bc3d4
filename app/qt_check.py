"""Before the first window: name the system libraries Qt's xcb plugin lacks.

Without them Qt aborts with "could not load the Qt platform plugin xcb" and names
``libxcb-cursor0`` whatever is missing; ``ldd`` on the plugin says exactly which
libraries are absent, so the user gets the one ``apt-get install`` line that helps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# library file → Debian/Ubuntu package that provides it
PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def missing_libraries(plugin_dir: Path) -> list[str]:
    """Shared libraries the xcb platform plugin cannot find (empty when all load)."""
    plugin = plugin_dir / "platforms" / "libqxcb.so"
    if not plugin.is_file() or shutil.which("ldd") is None:
        return []
    try:
        output = subprocess.run(
            ["ldd", str(plugin)], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = [line.split("=>")[0].strip() for line in output.splitlines() if "not found" in line]
    return sorted(set(found))


def xcb_problem() -> str | None:
    """One line naming the missing libraries and the packages, or None when fine
    (or when the window will not use xcb: offscreen, Wayland, not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("QT_QPA_PLATFORM", "xcb").split(":")[0] not in ("", "xcb"):
        return None
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    missing = missing_libraries(plugins)
    if not missing:
        return None
    packages = " ".join(PACKAGES.get(lib, lib) for lib in missing)
    return (
        f"Qt's xcb plugin cannot load {', '.join(missing)}; "
        f"install them with: sudo apt-get install -y {packages}"
    )

"""The pre-flight check names the system packages Qt's xcb plugin lacks."""

from __future__ import annotations

from pathlib import Path

from app import qt_check


def test_missing_xcb_libraries_become_one_apt_line(monkeypatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(
        qt_check, "missing_libraries", lambda _dir: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    )
    line = qt_check.xcb_problem()
    assert line is not None and "\n" not in line
    assert line.endswith("apt-get install -y libxcb-icccm4 libxcb-keysyms1")


def test_no_check_offscreen_and_none_without_the_plugin(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert qt_check.xcb_problem() is None
    assert qt_check.missing_libraries(tmp_path) == []

"""Project save → reopen round trip, unsaved-changes title, failed saves, relinking."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QSettings

from app.main_window import MainWindow
from tests.gui.helpers import image_folder, model_file


def test_save_and_reopen_round_trip(qtbot, window, tmp_path: Path, dialogs) -> None:
    images = image_folder(tmp_path / "tiles")
    window.open_images(images)
    window.load_model_reporting(model_file(tmp_path / "model.pt"))
    roof = window.classes.add_class("roof", (200, 30, 30))
    window.classes.add_class("field", (30, 200, 30))
    window.classes.assign(2, roof)
    window.display.set_bands((3, 2, 1))
    window.overlay.set_opacity(0.3)
    window.images.set_current(1)
    assert window.isWindowModified() and "[*]" in window.windowTitle()

    target = tmp_path / "work.acseg"
    assert window.project.save_as(target)
    assert not window.isWindowModified()
    assert window.windowTitle().startswith("work.acseg")
    assert window.project.recent()[0] == target

    other = MainWindow(QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    other.project.autosave_timer.stop()
    other.open_project(target)
    assert other.images.images == images
    assert other.session.model_path == tmp_path / "model.pt"
    assert [c.name for c in other.classes.classes] == ["roof", "field"]
    assert other.classes.class_of(2).name == "roof" and other.classes.class_of(0) is None
    assert other.display.bands == (3, 2, 1) and abs(other.overlay.opacity - 0.3) < 1e-9
    assert other.images.current_index == 1
    assert not other.isWindowModified()
    other.runner.shutdown()


def test_failed_save_keeps_changes_and_says_why(window, tmp_path: Path, dialogs) -> None:
    window.open_images(image_folder(tmp_path / "tiles", count=1))
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert not window.project.save_as(blocker / "sub" / "p.acseg")
    assert window.document.dirty and window.isWindowModified()
    assert dialogs.shown[-1][1] == "Save failed"
    assert "changes are kept" in dialogs.shown[-1][2]


def test_close_asks_when_dirty(window, tmp_path: Path, dialogs) -> None:
    window.open_images(image_folder(tmp_path / "tiles", count=1))
    assert window.project.confirm_discard() is True  # images alone: nothing to lose
    assert dialogs.shown == []
    window.classes.add_class("work")
    dialogs.answer = "no"  # "Cancel" is neither save nor discard: the window stays
    assert window.project.confirm_discard() is False
    dialogs.answer = "discard"
    assert window.project.confirm_discard() is True
    assert [kind for kind, *_ in dialogs.shown] == ["question", "question"]


def test_autosave_writes_a_dirty_project(window, tmp_path: Path) -> None:
    window.open_images(image_folder(tmp_path / "tiles", count=1))
    target = tmp_path / "auto.acseg"
    assert window.project.save_as(target)
    before = target.read_text()
    window.classes.add_class("new class")
    assert window.project.autosave()
    assert target.read_text() != before and not window.document.dirty
    assert not window.project.autosave()  # nothing to do when clean


def test_missing_image_can_be_relinked(window, tmp_path: Path, dialogs) -> None:
    images = image_folder(tmp_path / "tiles")
    window.open_images(images)
    target = tmp_path / "p.acseg"
    assert window.project.save_as(target)
    moved = tmp_path / "moved"
    shutil.move(str(tmp_path / "tiles"), moved)
    window.document.mark_clean()
    window.project.open(target)
    assert "2 image(s) not found" in dialogs.texts()
    assert window.project.relink(images[0], moved / images[0].name) == 2
    assert window.images.images == [moved / p.name for p in images]
    assert window.viewer.info is not None and window.viewer.info.path == moved / images[0].name
    assert window.document.dirty

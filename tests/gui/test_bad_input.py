"""Bad input gives one clear dialog and the app stays usable with nothing lost."""

from __future__ import annotations

from pathlib import Path

from app.wizard import TrainWizard
from tests.gui.helpers import image_folder, model_file


def test_corrupt_file_is_a_dialog_and_the_previous_image_stays(window, tmp_path, dialogs) -> None:
    good = image_folder(tmp_path / "ok", count=1)[0]
    window.open_images([good])
    assert window.viewer.info.path == good
    corrupt = tmp_path / "broken.tif"
    corrupt.write_bytes(b"II*\x00 definitely not a tiff")
    window.add_images([corrupt])  # becomes current, cannot be shown
    assert dialogs.shown and dialogs.shown[-1][1] == "Cannot open image"
    assert str(corrupt) in dialogs.shown[-1][2]
    assert window.viewer.info.path == good and window.canvas.has_image
    window.images.set_current(0)  # still usable
    assert window.viewer.info.path == good


def test_missing_path_and_empty_folder_are_dialogs(window, tmp_path, dialogs) -> None:
    assert not window.open_paths_reporting([tmp_path / "nowhere"])
    assert "nowhere" in dialogs.texts()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    assert not window.open_paths_reporting([tmp_path / "empty"])
    assert "no usable images" in dialogs.shown[-1][2]
    assert window.images.images == []


def test_wizard_refuses_a_folder_with_nothing_usable(window, tmp_path: Path) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.tif").write_bytes(b"junk")
    wizard = TrainWizard(window.runner, folder, window)
    assert not wizard.folder_page.isComplete()
    assert "no usable images" in wizard.folder_page.summary.text()


def test_another_band_count_is_one_notice_per_folder_not_a_dialog_per_image(
    qtbot, window, tmp_path, dialogs
) -> None:
    three_band = image_folder(tmp_path / "rgb", count=2, bands=3)
    window.open_images(three_band)
    assert window.load_model_reporting(model_file(tmp_path / "m.pt", bands=4))
    qtbot.waitUntil(lambda: bool(window.notices.shown), timeout=30_000)
    window.images.step(1)  # the next image of the folder: the same problem
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=30_000)
    assert window.notices.shown == [
        f"images in {tmp_path / 'rgb'} have 3 band(s) but the model was trained on 4: "
        "they cannot be predicted with this model"
    ]
    assert window.notices.label.isVisible() or not window.isVisible()
    assert dialogs.shown == []  # nothing modal
    assert not window.session.has_prediction(three_band[1])
    assert window.canvas.has_image  # image still shown, app usable


def test_opening_a_folder_skips_a_corrupt_file_with_a_notice(window, tmp_path, dialogs) -> None:
    good = image_folder(tmp_path / "mixed", count=2)
    (tmp_path / "mixed" / "corrupt.tif").write_bytes(b"II*\x00 definitely not a tiff")
    assert window.open_paths_reporting([tmp_path / "mixed"])
    assert window.images.images == good
    assert "corrupt.tif" in window.notices.shown[0] and dialogs.shown == []


def test_not_a_model_file_is_a_dialog_and_keeps_the_model(window, tmp_path, dialogs) -> None:
    good = model_file(tmp_path / "m.pt")
    assert window.load_model_reporting(good)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    assert not window.load_model_reporting(bad)
    assert dialogs.shown[-1][1] == "Cannot load model" and str(bad) in dialogs.shown[-1][2]
    assert window.session.model_path == good

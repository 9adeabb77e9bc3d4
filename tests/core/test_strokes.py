"""The strokes read-out: learning from strokes, refits, storage, tiling, the learn CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.cli import main
from acseg_core.inference.predict import predict_array
from acseg_core.jobs import run_to_end
from acseg_core.labelling.classes import NO_EDIT, ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.project import Project
from acseg_core.learning.fit import fit_strokes, save_learned
from acseg_core.learning.live import LiveImage
from acseg_core.learning.samples import gather
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import load_model
from acseg_core.model.readouts import ReadOut
from acseg_core.model.readouts.registry import LEARNT
from tests.core.synthetic import disk_strokes, make_regions_image, tiny_model

SIZE = (96, 120)
NAMES = ["a", "b", "c"]
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, object]:
    folder = tmp_path_factory.mktemp("strokes")
    image = folder / "scene.png"
    labels = make_regions_image(image, size=SIZE, bands=3, classes=3, seed=1)
    return image, labels, tiny_model(3, 4, fit_on=[image])


def stroke_map(labels: np.ndarray, classes: list[int], per_class: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = np.full(labels.shape, 255, np.uint8)
    for c in classes:
        r, k = np.nonzero(labels == c)
        pick = rng.choice(len(r), per_class, replace=False)
        out[r[pick], k[pick]] = c
    return out


PSEUDO = 2000  # unstroked samples per image, as `learn` gathers them


def fit(loaded, image, strokes: np.ndarray, seed: int = 0):
    samples = run_to_end(gather(loaded, image, StrokeSet.from_map(strokes), tile=64,
                                pseudo=PSEUDO))  # fmt: skip
    return fit_strokes(loaded, [samples], NAMES, COLOURS, seed=seed)


def predict(loaded, image, tile: int = 512) -> np.ndarray:
    return predict_array(loaded, image, readout=ReadOut(None, 0), precision="fp32",
                         tile=tile).clusters  # fmt: skip


def test_strokes_of_two_classes_label_the_unstroked_pixels_of_their_regions(scene) -> None:
    image, labels, loaded = scene
    strokes = stroke_map(labels, [0, 2])
    ids = predict(fit(loaded, image, strokes), image)
    region = (labels != 1) & (strokes == 255)
    assert set(np.unique(ids[region])) <= {0, 2}
    assert (ids[region] == labels[region]).mean() > 0.9


def test_refit_twice_is_identical_and_undo_restores_the_previous_model(scene) -> None:
    image, labels, loaded = scene
    strokes = stroke_map(labels, [0, 1, 2])
    first, again = fit(loaded, image, strokes), fit(loaded, image, strokes)
    assert first.digest == again.digest
    before = predict(first, image)
    more = strokes.copy()
    more[labels == 1] = 0  # a wrong, big stroke ...
    changed = predict(fit(loaded, image, more), image)
    assert (changed != before).any()
    undone = fit(loaded, image, strokes)  # ... undone, then refitted
    assert undone.digest == first.digest
    assert np.array_equal(predict(undone, image), before)


def test_strokes_model_round_trips_and_tiles_equal_one_shot(scene, tmp_path: Path) -> None:
    image, labels, loaded = scene
    fitted = fit(loaded, image, stroke_map(labels, [0, 1, 2]))
    save_learned(tmp_path / "s.pt", fitted)
    back = load_model(tmp_path / "s.pt", device="cpu")  # weights_only load
    assert back.config.readout.kind == LEARNT and back.config.classes == tuple(NAMES)
    assert back.config.class_colours == tuple(COLOURS)
    assert back.config.bank is not None and back.meta["bank_digest"]  # the bank it reads
    assert loaded.config.bank is None  # the base model is left as it was
    one_shot = predict(back, image)
    assert np.array_equal(one_shot, predict(fitted, image))
    assert np.array_equal(predict(back, image, tile=72), one_shot)
    live = LiveImage(loaded, image)
    assert np.array_equal(live.predict(fitted, smooth=0), one_shot)


def _cli_setup(tmp_path: Path, scene) -> tuple[Path, Path, Path]:
    image, labels, loaded = scene
    from acseg_core.model.checkpoint import save_checkpoint

    model = tmp_path / "m.pt"
    save_checkpoint(model, loaded.model, loaded.config)
    folder = tmp_path / "strokes"
    folder.mkdir()
    Image.fromarray(stroke_map(labels, [0, 1, 2])).save(folder / f"{image.stem}.png")
    return model, image, folder


def test_cli_learn_takes_a_folder_whose_unstroked_images_still_count(
    tmp_path: Path, scene, capsys
) -> None:
    model, image, folder = _cli_setup(tmp_path, scene)
    images = tmp_path / "images"
    images.mkdir()
    (images / image.name).write_bytes(image.read_bytes())
    (images / f"other{image.suffix}").write_bytes(image.read_bytes())  # no stroke file
    listed = tmp_path / "list.txt"
    listed.write_text(f"images/{image.name}\n")
    new = tmp_path / "new.pt"
    for inputs in (["images"], ["--list", "list.txt"]):
        args = ["learn", str(model), *[str(tmp_path / i) if i == "images" else i
                                        for i in inputs]]  # fmt: skip
        args = [a if a != "list.txt" else str(listed) for a in args]
        assert main([*args, "--strokes", str(folder), "--out", str(new)]) == 0
        assert load_model(new).config.classes == ("class 0", "class 1", "class 2")
    out = capsys.readouterr().out
    assert "leave-one-stroke-out accuracy: class 0" in out


def test_cli_learn_then_predict_writes_class_index_maps(tmp_path: Path, scene) -> None:
    model, image, folder = _cli_setup(tmp_path, scene)
    classes = tmp_path / "classes.txt"
    classes.write_text("water:0,0,255\nroof\nfield\n")
    new = tmp_path / "new.pt"
    args = ["learn", str(model), str(image), "--strokes", str(folder), "--out", str(new)]
    assert main([*args, "--classes", str(classes)]) == 0
    assert load_model(new).config.classes == ("water", "roof", "field")
    assert main(["predict", str(new), str(image), "--out", str(tmp_path / "pred")]) == 0
    written = np.asarray(Image.open(next((tmp_path / "pred").glob("*.png"))))
    assert written.shape == SIZE and set(np.unique(written)) <= {0, 1, 2}
    assert (written == scene[1]).mean() > 0.8


@pytest.mark.parametrize("problem", ["size", "value", "image", "stroke file", "overwrite"])
def test_cli_learn_bad_input_is_one_clear_line(tmp_path: Path, scene, capsys, problem) -> None:
    model, image, folder = _cli_setup(tmp_path, scene)
    stroke = folder / f"{image.stem}.png"
    target, out = image, tmp_path / "new.pt"
    if problem == "size":
        Image.fromarray(np.full((10, 10), 255, np.uint8)).save(stroke)
    elif problem == "value":
        bad = np.asarray(Image.open(stroke)).copy()
        bad[0, 0] = 7
        Image.fromarray(bad).save(stroke)
    elif problem == "image":
        target = tmp_path / "missing.png"
    elif problem == "stroke file":
        stroke.unlink()
    else:
        out = model
    args = ["learn", str(model), str(target), "--strokes", str(folder), "--out", str(out)]
    assert main([*args, "--classes", str(_names(tmp_path))]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    named = {"size": stroke, "value": stroke, "image": target, "stroke file": folder}
    assert str(named.get(problem, out)) in err[0]


def _names(tmp_path: Path) -> Path:
    path = tmp_path / "names.json"
    path.write_text('["a", "b", "c"]')
    return path


def test_cli_learn_from_a_project_uses_its_hand_edits(tmp_path: Path, scene) -> None:
    image, labels, _ = scene
    model, _, _ = _cli_setup(tmp_path, scene)
    class_map = ClassMap.empty(4).add_class("water", (0, 0, 255)).add_class("roof", (255, 0, 0))
    layer = EditLayer(*SIZE, tile=32)
    strokes = stroke_map(labels, [0, 1])
    ids = np.where(strokes == 255, NO_EDIT, strokes + 1).astype(np.uint8)  # positions → ids
    layer.write(0, 0, ids)
    project = Project()
    project.add_images([image])
    project.set_model(model)
    project.set_class_map(class_map)
    project.set_edits(image, layer)
    project.save(tmp_path / "p.acseg")
    new = tmp_path / "new.pt"
    assert main(["learn", "--project", str(tmp_path / "p.acseg"), "--out", str(new)]) == 0
    learnt = load_model(new)
    assert learnt.config.classes == ("water", "roof")
    assert learnt.meta["strokes"]["class_ids"] == [1, 2]
    pred = predict(learnt, image)
    region = labels <= 1
    assert (pred[region] == labels[region]).mean() > 0.8


def test_the_quality_check_names_a_stroke_painted_on_the_wrong_class(scene) -> None:
    from acseg_core.learning.quality import check_strokes

    image, labels, loaded = scene
    honest = disk_strokes(labels, 4, seed=3)
    good = run_to_end(gather(loaded, image, StrokeSet.from_map(honest), tile=64, pseudo=PSEUDO))
    quality = check_strokes(loaded, [("scene.png", good)], NAMES)
    assert quality.suspects == [] and all(v is not None and v > 0.8
                                          for v in quality.accuracy.values())  # fmt: skip
    # one "a" stroke painted over class c: the others read it as c
    wrong = honest.copy()
    r, k = np.nonzero(disk_strokes(labels, 1, seed=9) == 2)
    wrong[r, k] = 0
    bad = run_to_end(gather(loaded, image, StrokeSet.from_map(wrong), tile=64, pseudo=PSEUDO))
    quality = check_strokes(loaded, [("scene.png", bad)], NAMES)
    assert [(s.class_name, s.looks_like) for s in quality.suspects] == [("a", "c")]
    suspect = quality.suspects[0]
    assert abs(suspect.row - np.median(r)) <= 3 and abs(suspect.col - np.median(k)) <= 3
    assert any("looks like c" in line for line in quality.warnings())
    assert quality.accuracy["a"] < quality.accuracy["b"]

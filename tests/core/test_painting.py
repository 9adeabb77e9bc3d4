"""The painting rules, undo and teaching in the core (the app only maps gestures onto
them): strokes never put a class on nodata, one stroke is one undo step, budgets
drop the oldest steps, each image has its own history, fills follow the displayed
values, and hand edits teach class positions named by stable ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acseg_core.errors import AcsegError, InputError
from acseg_core.io.raster import NODATA
from acseg_core.labelling.classes import NO_EDIT, UNASSIGNED, ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.painting import (
    EDIT_CODE,
    EditHistory,
    Stroke,
    displayed_values,
    fill_footprint,
)
from acseg_core.labelling.shapes import segment_mask
from acseg_core.labelling.teaching import (
    Lesson,
    check_lesson,
    class_map_for_learnt,
    edited_strokes,
    strokes_from_edits,
)
from acseg_core.labelling.undo import UndoStack


def clusters_with_a_hole() -> np.ndarray:
    clusters = np.zeros((40, 50), np.uint8)
    clusters[:, 25:] = 1
    clusters[10:20, 5:15] = NODATA
    return clusters


def test_a_stroke_never_paints_a_class_on_nodata_but_the_eraser_clears_it() -> None:
    clusters = clusters_with_a_hole()
    layer = EditLayer(40, 50, tile=16)
    stroke = Stroke(layer, clusters)
    window = stroke.paint((0, 0, np.ones((30, 30), bool)), 3)
    assert window == (0, 0, 30, 30)
    painted = layer.to_array()
    assert (painted[10:20, 5:15] == NO_EDIT).all()  # the hole stayed unpainted
    assert (painted[:10, :30] == 3).all() and (painted[20:30, :30] == 3).all()
    diff = stroke.finish()
    assert diff is not None and diff.pixels == 30 * 30 - 10 * 10
    # nothing changes: no window, no step
    again = Stroke(layer, clusters)
    assert again.paint((0, 0, np.ones((5, 5), bool)), 3) is None and again.finish() is None
    eraser = Stroke(layer, clusters)
    assert eraser.paint((0, 0, np.ones((40, 50), bool)), NO_EDIT) is not None
    assert layer.is_empty
    # a map of another size (another image) keeps nothing off
    free = Stroke(EditLayer(40, 50), np.zeros((3, 3), np.uint8))
    free.paint((5, 10, np.ones((5, 5), bool)), 2)
    assert (free.layer.to_array()[10:15, 5:10] == 2).all()


def test_one_stroke_is_one_step_and_undo_redo_restore_exactly() -> None:
    layer = EditLayer(64, 64, tile=16)
    stack = UndoStack()
    stroke = Stroke(layer)
    for x in range(5, 50, 4):
        stroke.paint(segment_mask(x, 20, x + 4, 22, 3, 64, 64), 2)
    stroke.paint(segment_mask(10, 20, 12, 20, 2, 64, 64), 2)  # over itself: no new pixels
    stack.push(stroke.finish())
    after = layer.to_array()
    assert len(stack) == 1 and (after == 2).sum() > 100
    stack.undo()
    assert layer.is_empty
    stack.redo()
    assert np.array_equal(layer.to_array(), after)


def test_the_budget_drops_the_oldest_steps_and_each_image_has_its_own_history() -> None:
    history = EditHistory(budget=2000)
    a, b = Path("a.tif"), Path("b.tif")
    layer_a, layer_b = EditLayer(64, 64), EditLayer(64, 64)
    for i in range(6):
        stroke = Stroke(layer_a)
        stroke.paint(segment_mask(8 + 8 * i, 30, 8 + 8 * i, 30, 6, 64, 64), 1)
        history.push(a, stroke.finish())
    stack = history.stack(a)
    assert stack.nbytes <= 2000 and 1 <= len(stack) < 6
    stroke = Stroke(layer_b)
    stroke.paint((0, 0, np.ones((4, 4), bool)), 5)
    history.push(b, stroke.finish())
    history.undo(b)
    assert layer_b.is_empty and not layer_a.is_empty  # b's undo never touches a
    history.clear()
    assert len(history.stack(a)) == 0


def test_displayed_values_put_edits_above_clusters_and_the_fill_follows_them() -> None:
    clusters = clusters_with_a_hole()
    class_map = ClassMap.empty(2).add_class("roof", (200, 0, 0)).assign(1, 1)
    layer = EditLayer(40, 50)
    layer.write(30, 0, np.full((40, 5), 1, np.uint8))  # a hand edit of class 1 inside cluster 1
    shown = displayed_values(clusters, layer, (0, 0, 50, 40), class_map, by_class=False)
    assert shown.dtype == np.uint16 and shown[0, 32] == EDIT_CODE + 1 and shown[0, 40] == 1
    assert shown[12, 8] == NODATA
    by_class = displayed_values(clusters, layer, (0, 0, 50, 40), class_map, by_class=True)
    assert by_class[0, 40] == 1 and by_class[0, 32] == 1 and by_class[0, 0] == UNASSIGNED
    # clusters view: the edit strip splits cluster 1; classes view: it does not
    col, row, mask = fill_footprint(clusters, layer, (40, 0), class_map, by_class=False)
    assert mask.sum() == 40 * 15 and (col, row) == (35, 0)
    _, _, mask = fill_footprint(clusters, layer, (40, 0), class_map, by_class=True)
    assert mask.sum() == 40 * 25


def test_hand_edits_teach_positions_and_learnt_positions_name_classes() -> None:
    class_map = (
        ClassMap.empty(3).add_class("water", (0, 0, 255)).add_class("roof", (255, 0, 0))
        .add_class("field", (0, 255, 0)).assign(0, 3).assign(2, 1)
    )  # fmt: skip
    lesson = Lesson.of(class_map)
    assert lesson.names == ("water", "roof", "field") and lesson.class_ids == (1, 2, 3)
    assert lesson.cluster_positions == (2, -1, 0)
    layer = EditLayer(20, 20, tile=8)
    layer.write(0, 0, np.full((2, 3), 3, np.uint8))  # field (id 3) → position 2
    layer.write(10, 10, np.full((1, 2), UNASSIGNED, np.uint8))  # "no class" teaches nothing
    strokes = strokes_from_edits(layer, class_map)
    assert len(strokes) == 6 and set(strokes.classes.tolist()) == {2}
    # a class removed after a learn reads as unassigned; renames follow the ids
    learnt = class_map_for_learnt(class_map.rename_class(2, "building").remove_class(3), (1, 2, 3))
    assert learnt.clusters == 3 and learnt.assignment == (1, 2, UNASSIGNED)
    assert learnt.class_of_cluster(1).name == "building"


def test_edited_strokes_skip_empty_layers_and_name_a_missing_image(tmp_path: Path) -> None:
    class_map = ClassMap.empty(2).add_class("a", (1, 2, 3)).add_class("b", (4, 5, 6))
    painted = EditLayer(8, 8)
    painted.write(0, 0, np.full((2, 2), 1, np.uint8))
    here = tmp_path / "here.png"
    here.write_bytes(b"x")
    found = edited_strokes([(here, painted), (tmp_path / "none.png", None),
                            (tmp_path / "empty.png", EditLayer(8, 8))], class_map)  # fmt: skip
    assert list(found) == [here] and len(found[here]) == 4
    with pytest.raises(InputError, match=r"gone\.png: image not found"):
        edited_strokes([(tmp_path / "gone.png", painted)], class_map)
    with pytest.raises(AcsegError, match="at least two classes"):
        check_lesson(Lesson.of(ClassMap.empty(2).add_class("a", (1, 2, 3))), found)
    with pytest.raises(AcsegError, match="no hand edits"):
        check_lesson(Lesson.of(class_map), {})

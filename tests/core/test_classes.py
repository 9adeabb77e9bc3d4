"""Class map: edits, stable ids, lookup tables, palettes, serialisation; the edit layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acseg_core.errors import AcsegError, InputError
from acseg_core.labelling.classes import (
    NO_EDIT,
    NODATA,
    UNASSIGNED,
    ClassMap,
    colourise,
    composite,
    default_cluster_colors,
)
from acseg_core.labelling.edits import EditLayer

REPO_ROOT = Path(__file__).resolve().parents[2]


def three_classes() -> ClassMap:
    cm = ClassMap.empty(6)
    cm = cm.add_class("road", (200, 200, 200)).add_class("tree", (0, 160, 0))
    cm = cm.add_class("water", (0, 0, 255))
    return cm.assign_many({0: 1, 1: 2, 2: 2, 4: 3})


def test_add_assign_and_share_a_class() -> None:
    cm = three_classes()
    assert [c.id for c in cm.classes] == [1, 2, 3]
    assert cm.class_of_cluster(1).name == "tree" and cm.class_of_cluster(2).name == "tree"
    assert cm.class_of_cluster(3) is None
    assert cm.clusters_of(2) == (1, 2)
    assert cm.export_value(3) == 3


def test_remove_class_unassigns_its_clusters_and_keeps_other_ids() -> None:
    cm = three_classes().remove_class(2)
    assert [c.name for c in cm.classes] == ["road", "water"]
    assert cm.assignment == (1, UNASSIGNED, UNASSIGNED, UNASSIGNED, 3, UNASSIGNED)
    assert cm.class_by_id(3).name == "water"
    assert cm.export_value(3) == 2  # export values close the gap; ids do not
    assert cm.add_class("new").classes[-1].id == 4  # the removed id is not reused


def test_rename_recolour_move_are_new_values() -> None:
    cm = three_classes()
    renamed = cm.rename_class(1, "asphalt").recolor_class(1, (1, 2, 3)).move_class(1, 2)
    assert cm.class_by_id(1).name == "road"  # the original is untouched
    assert [c.name for c in renamed.classes] == ["tree", "water", "asphalt"]
    assert renamed.class_by_id(1).color == (1, 2, 3)
    assert renamed.export_value(1) == 3


def test_invalid_edits_are_refused() -> None:
    cm = three_classes()
    with pytest.raises(AcsegError, match="used twice"):
        cm.add_class("road")
    with pytest.raises(AcsegError, match="':'"):
        cm.rename_class(1, "a:b")
    with pytest.raises(AcsegError, match="cluster 6 out of range"):
        cm.assign(6, 1)
    with pytest.raises(AcsegError, match="no class with id 9"):
        cm.assign(0, 9)


def test_new_classes_get_distinct_unused_colours() -> None:
    cm = ClassMap.empty(2)
    for i in range(40):
        cm = cm.add_class(f"c{i}")
    colours = {c.color for c in cm.classes}
    assert len(colours) == 40 and (0, 0, 0) not in colours
    assert cm.export_problems() == []


def test_export_problems_name_shared_colours_and_reserved_name() -> None:
    cm = ClassMap.empty(2).add_class("a", (9, 9, 9)).add_class("b", (9, 9, 9))
    cm = cm.add_class("background", (1, 1, 1))
    problems = " ".join(cm.export_problems())
    assert "'a' and 'b' share colour 9,9,9" in problems and "reserved" in problems


def test_cluster_lut_maps_clusters_to_class_ids_and_keeps_nodata() -> None:
    cm = three_classes()
    clusters = np.array([[0, 1, 2, 3], [4, 5, 7, NODATA]], dtype=np.uint8)
    labels = cm.labels_from_clusters(clusters)
    assert labels.dtype == np.uint8
    assert labels.tolist() == [[1, 2, 2, 0], [3, 0, 0, NODATA]]  # 7 >= K: unassigned
    values = cm.export_lut()[labels]
    assert values.tolist() == [[1, 2, 2, 0], [3, 0, 0, 0]]


def test_rgba_luts_and_cluster_visibility() -> None:
    cm = three_classes()
    labels = np.array([[1, 0, NODATA]], dtype=np.uint8)
    rgba = colourise(labels, cm.label_rgba_lut())
    assert rgba.shape == (1, 3, 4)
    assert rgba[0, 0].tolist() == [200, 200, 200, 255]
    assert rgba[0, 1, 3] == 0 and rgba[0, 2, 3] == 0
    visible = [True, False, True, True, True, True]
    lut = cm.cluster_rgba_lut(visible)
    colours = default_cluster_colors(6)
    assert lut[0, :3].tolist() == colours[0].tolist() and lut[0, 3] == 255
    assert lut[1, 3] == 0 and lut[NODATA, 3] == 0 and lut[6, 3] == 0


def test_default_cluster_colours_are_distinct_for_many_clusters() -> None:
    colours = default_cluster_colors(254)
    assert colours.shape == (254, 3)
    assert len({tuple(c) for c in colours.tolist()}) == 254
    assert not (colours == 0).all(axis=1).any()


def test_dict_round_trip_and_validation_messages() -> None:
    cm = three_classes().remove_class(1)
    assert ClassMap.from_dict(cm.to_dict()) == cm
    bad = cm.to_dict()
    bad["classes"][0]["color"] = [1, 2]
    with pytest.raises(AcsegError, match=r"classes\[0\]\.color must be 3 integers"):
        ClassMap.from_dict(bad)
    bad = cm.to_dict()
    bad["assignment"][0] = 77
    with pytest.raises(AcsegError, match="unknown class id"):
        ClassMap.from_dict(bad)


def test_with_clusters_keeps_existing_mapping() -> None:
    cm = three_classes()
    assert cm.with_clusters(3).assignment == (1, 2, 2)
    assert cm.with_clusters(8).assignment == (1, 2, 2, 0, 3, 0, 0, 0)


def test_composite_uses_edits_where_edited_but_never_over_nodata() -> None:
    labels = np.array([[1, 2, NODATA]], dtype=np.uint8)
    edits = np.array([[NO_EDIT, 3, 3]], dtype=np.uint8)
    assert composite(labels, edits).tolist() == [[1, 3, NODATA]]
    assert composite(labels, None) is labels


# -- edit layer ------------------------------------------------------------------------


def test_edit_layer_is_sparse_and_reads_what_was_written() -> None:
    layer = EditLayer(1000, 1200, tile=64)
    stroke = np.full((10, 20), 2, dtype=np.uint8)
    layer.write(630, 300, stroke)
    assert len(list(layer.tiles())) == 2  # 10 rows × 20 cols crossing one tile border
    assert layer.bbox() == (630, 300, 20, 10)
    assert layer.edited_pixels() == 200
    window = layer.read((620, 295, 40, 20))
    assert (window[5:15, 10:30] == 2).all() and (window == 2).sum() == 200
    assert (window[window != 2] == NO_EDIT).all()
    version = layer.version
    mask = np.zeros_like(stroke, dtype=bool)
    mask[:, :5] = True
    layer.write(630, 300, np.full_like(stroke, NO_EDIT), mask=mask)  # erase part
    assert layer.edited_pixels() == 150 and layer.version > version
    layer.write(630, 300, np.full_like(stroke, NO_EDIT))  # erase the rest
    assert layer.is_empty and layer.bbox() is None


def test_edit_layer_clips_windows_past_the_edges() -> None:
    layer = EditLayer(50, 50, tile=16)
    layer.write(-5, 45, np.full((10, 10), 1, dtype=np.uint8))
    assert layer.edited_pixels() == 5 * 5
    assert layer.read((-5, 45, 10, 10))[:5, 5:].tolist() == [[1] * 5] * 5


def test_edit_layer_save_load_round_trip(tmp_path) -> None:
    layer = EditLayer(300, 200, tile=64)
    layer.write(10, 250, np.arange(100, dtype=np.uint8).reshape(10, 10) % 5)
    snapshot = layer.copy()
    layer.write(0, 0, np.zeros((1, 1), np.uint8))
    assert snapshot.edited_pixels() == 100 and layer.edited_pixels() == 101
    layer.save(tmp_path / "e.npz")
    back = EditLayer.load(tmp_path / "e.npz")
    assert back.shape == (300, 200)
    np.testing.assert_array_equal(back.to_array(), layer.to_array())
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"bad\.npz: damaged edits file"):
        EditLayer.load(tmp_path / "bad.npz")


def test_new_class_colours_are_distinct_and_never_a_small_models_cluster_colours() -> None:
    import json

    from acseg_core.labelling.classes import ClassMap, default_palette

    shipped = json.loads((REPO_ROOT / "resources" / "palettes" / "clusters.json").read_text())
    assert default_palette()[0].tolist() == shipped["colors"][0]  # the shipped file is read
    class_map = ClassMap()
    for index in range(20):
        class_map = class_map.add_class(f"class {index}")
    colours = [c.color for c in class_map.classes]
    cluster_colours = {tuple(int(v) for v in rgb) for rgb in default_palette()[:32]}
    assert len(set(colours)) == 20
    assert not set(colours) & cluster_colours

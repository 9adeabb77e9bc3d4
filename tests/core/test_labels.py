"""Label readers: index, ISPRS colours (+ Potsdam-3), colour tables, lookups, merges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.errors import AcsegError, InputError
from acseg_core.io.labels import LABEL_IGNORE, parse_label_format

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "labels"


def save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def rgb_image(colours: list[list[tuple[int, int, int]]]) -> np.ndarray:
    return np.array(colours, dtype=np.uint8)


def test_index_labels_with_ignore_values(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", np.array([[0, 1, 2], [7, 255, 3]]))
    plain = parse_label_format("index").read(path)
    assert plain.tolist() == [[0, 1, 2], [7, 255, 3]]
    ignored = parse_label_format("index:0,255").read(path)
    assert ignored.tolist() == [[-1, 1, 2], [7, -1, 3]]
    assert parse_label_format("index").n_classes is None


def test_index_labels_read_from_tiff_and_by_window(tmp_path: Path) -> None:
    path = tmp_path / "a.tif"
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(path)
    fmt = parse_label_format("index")
    assert fmt.read(path, window=(1, 1, 2, 2)).tolist() == [[5, 6], [9, 10]]


def test_index_format_refuses_rgb_labels(tmp_path: Path) -> None:
    path = save(tmp_path / "rgb.png", np.zeros((2, 2, 3)))
    with pytest.raises(InputError, match=r"3 bands.*colour labels"):
        parse_label_format("index").read(path)


ISPRS = {
    "imp": (255, 255, 255),
    "bld": (0, 0, 255),
    "low": (0, 255, 255),
    "tree": (0, 255, 0),
    "car": (255, 255, 0),
    "clut": (255, 0, 0),
    "black": (0, 0, 0),
}


def isprs_label(tmp_path: Path) -> Path:
    c = ISPRS
    return save(
        tmp_path / "x_label.png",
        rgb_image(
            [[c["imp"], c["bld"], c["low"], c["tree"]], [c["car"], c["clut"], c["black"], c["imp"]]]
        ),
    )


def test_potsdam_colour_code(tmp_path: Path) -> None:
    fmt = parse_label_format("potsdam")
    assert fmt.class_names == (
        "impervious surfaces",
        "building",
        "low vegetation",
        "tree",
        "car",
        "clutter",
    )
    assert fmt.read(isprs_label(tmp_path)).tolist() == [[0, 1, 2, 3], [4, 5, -1, 0]]


def test_potsdam3_merge(tmp_path: Path) -> None:
    fmt = parse_label_format("potsdam", merge="potsdam3")
    assert fmt.class_names == ("roads and cars", "vegetation", "buildings and clutter")
    assert fmt.read(isprs_label(tmp_path)).tolist() == [[0, 2, 1, 1], [0, 2, -1, 0]]


def test_shipped_tables_match_the_builtin_isprs_code(tmp_path: Path) -> None:
    label = isprs_label(tmp_path)
    builtin = parse_label_format("potsdam", merge="potsdam3").read(label)
    shipped = parse_label_format(
        f"colors:{RESOURCES / 'isprs.csv'}", merge=str(RESOURCES / "potsdam3.csv")
    )
    assert np.array_equal(shipped.read(label), builtin)


def test_colour_table_with_shared_classes_and_ignore(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text(
        "# a comment\nr,g,b,class_name\n10,20,30,road\n1,2,3,grass\n4,5,6,road\n0,0,0,ignore\n"
    )
    path = save(tmp_path / "l.png", rgb_image([[(10, 20, 30), (1, 2, 3)], [(4, 5, 6), (0, 0, 0)]]))
    fmt = parse_label_format(f"colors:{table}")
    assert fmt.class_names == ("road", "grass")
    assert fmt.read(path).tolist() == [[0, 1], [0, LABEL_IGNORE]]


def test_colour_missing_from_table_is_a_clear_error(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("10,20,30,road\n")
    path = save(tmp_path / "l.png", rgb_image([[(10, 20, 30), (9, 9, 9)], [(9, 9, 9), (7, 7, 7)]]))
    with pytest.raises(InputError, match=r"3 pixels have colours not in .*\(9,9,9\) ×2"):
        parse_label_format(f"colors:{table}").read(path)


def test_dubai_table(tmp_path: Path) -> None:
    fmt = parse_label_format(f"colors:{RESOURCES / 'dubai.csv'}")
    assert fmt.class_names == ("building", "land", "road", "vegetation", "water")
    path = save(
        tmp_path / "d.png",
        rgb_image([[(60, 16, 152), (226, 169, 41)], [(155, 155, 155), (0, 0, 0)]]),
    )
    assert fmt.read(path).tolist() == [[0, 4], [-1, -1]]


def coco_like_table(tmp_path: Path) -> Path:
    table = tmp_path / "fine_to_coarse.csv"
    table.write_text(
        "value,fine_name,coarse_index,coarse_name,kind\n"
        "0,person,9,person-things,thing\n"
        "5,bus,11,vehicle-things,thing\n"
        "100,cage,13,other-stuff,stuff\n"
        "105,clouds,22,sky-stuff,stuff\n"
        "156,sky-other,22,sky-stuff,stuff\n"
    )
    return table


def test_lookup_picks_the_coarse_names_and_ignores_unknown_values(tmp_path: Path) -> None:
    path = save(tmp_path / "c.png", np.array([[0, 5, 100], [105, 156, 255]]))
    fmt = parse_label_format(f"lookup:{coco_like_table(tmp_path)}")
    assert fmt.class_names == ("person-things", "vehicle-things", "other-stuff", "sky-stuff")
    assert fmt.read(path).tolist() == [[0, 1, 2], [3, 3, -1]]


def test_lookup_keep_selects_stuff_only(tmp_path: Path) -> None:
    path = save(tmp_path / "c.png", np.array([[0, 5, 100], [105, 156, 255]]))
    fmt = parse_label_format(f"lookup:{coco_like_table(tmp_path)}", keep="kind=stuff")
    assert fmt.class_names == ("other-stuff", "sky-stuff")
    assert fmt.read(path).tolist() == [[-1, -1, 0], [1, 1, -1]]
    fine = parse_label_format(
        f"lookup:{coco_like_table(tmp_path)}", keep="kind=stuff", class_column="fine_name"
    )
    assert fine.class_names == ("cage", "clouds", "sky-other")


def test_loveda_lookup_names_classes_and_ignores_nodata(tmp_path: Path) -> None:
    fmt = parse_label_format(f"lookup:{RESOURCES / 'loveda.csv'}")
    assert fmt.n_classes == 7 and fmt.class_names[0] == "background"
    path = save(tmp_path / "l.png", np.array([[0, 1, 7]]))
    assert fmt.read(path).tolist() == [[-1, 0, 6]]


def test_merge_file_drops_unlisted_classes(tmp_path: Path) -> None:
    merge = tmp_path / "m.csv"
    merge.write_text("class_name,merged_name\nbuilding,built\nclutter,built\ntree,green\n")
    fmt = parse_label_format("potsdam", merge=str(merge))
    assert fmt.class_names == ("built", "green")
    assert fmt.read(isprs_label(tmp_path)).tolist() == [[-1, 0, -1, 1], [-1, 0, -1, -1]]


def test_merge_on_index_labels_uses_values_as_names(tmp_path: Path) -> None:
    merge = tmp_path / "m.csv"
    merge.write_text("1,a\n2,a\n3,b\n")
    path = save(tmp_path / "l.png", np.array([[1, 2, 3, 4]]))
    assert parse_label_format("index", merge=str(merge)).read(path).tolist() == [[0, 0, 1, -1]]


@pytest.mark.parametrize(
    ("spec", "merge", "keep", "message"),
    [
        ("png", None, None, "unknown label format"),
        ("colors", None, None, "needs a table file"),
        ("index:x", None, None, "must be integers"),
        ("potsdam", "nosuch", None, "neither potsdam3"),
        ("index", None, "kind=stuff", "lookup"),
    ],
)
def test_bad_specs_are_one_line_errors(
    spec: str, merge: str | None, keep: str | None, message: str
) -> None:
    with pytest.raises(AcsegError, match=message):
        parse_label_format(spec, merge=merge, keep=keep)


def test_merge_naming_unknown_class_is_refused(tmp_path: Path) -> None:
    merge = tmp_path / "m.csv"
    merge.write_text("road,x\n")
    with pytest.raises(AcsegError, match="no class named 'road'"):
        parse_label_format("potsdam", merge=str(merge))


# -- real label files (../shared/data) ------------------------------------------------


def class_fractions(fmt, paths) -> tuple[np.ndarray, float]:
    counts = np.zeros(64, dtype=np.int64)
    ignored = total = 0
    for path in paths:
        classes = fmt.read(path)
        counts += np.bincount(classes[classes >= 0], minlength=64)
        ignored += int((classes < 0).sum())
        total += classes.size
    return counts, ignored / total


@pytest.mark.shared_data
def test_real_isprs_labels(shared_data: Path) -> None:
    label = shared_data / "isprs-vaihingen" / "top_mosaic_09cm_area1_crop0_label.png"
    counts, ignored = class_fractions(parse_label_format("potsdam"), [label])
    assert 0.02 < ignored < 0.2  # eroded boundaries
    assert (counts[:5] > 0).all() and counts[5] == 0  # clutter absent in this crop
    counts3, ignored3 = class_fractions(parse_label_format("potsdam", merge="potsdam3"), [label])
    assert ignored3 == ignored and counts3[:3].sum() == counts[:6].sum()
    assert counts3[0] == counts[0] + counts[4]  # roads + cars


@pytest.mark.shared_data
def test_real_loveda_labels(shared_data: Path) -> None:
    labels = sorted((shared_data / "loveda" / "labels").glob("*.png"))
    counts, ignored = class_fractions(
        parse_label_format(f"lookup:{RESOURCES / 'loveda.csv'}"), labels
    )
    assert ignored < 0.05
    assert (counts > 0).sum() >= 5 and counts[7:].sum() == 0


@pytest.mark.shared_data
def test_real_dubai_labels(shared_data: Path) -> None:
    labels = sorted((shared_data / "dubai" / "labels").glob("*.png"))[:6]
    counts, ignored = class_fractions(
        parse_label_format(f"colors:{RESOURCES / 'dubai.csv'}"), labels
    )
    assert ignored < 0.5
    assert (counts[:5] > 0).sum() >= 4 and counts[5:].sum() == 0


@pytest.mark.shared_data
def test_real_cocostuff_15_labels(shared_data: Path) -> None:
    table = shared_data / "cocostuff" / "fine_to_coarse.csv"
    fmt = parse_label_format(f"lookup:{table}", keep="kind=stuff")
    assert fmt.n_classes == 15 and all(n.endswith("-stuff") for n in fmt.class_names)
    labels = sorted((shared_data / "cocostuff" / "labels").glob("*.png"))
    counts, ignored = class_fractions(fmt, labels)
    assert 0.2 < ignored < 0.6  # thing and unlabelled pixels
    assert (counts > 0).sum() >= 10


@pytest.mark.shared_data
def test_real_cityscapes_train_ids(shared_data: Path) -> None:
    label = shared_data / "cityscapes" / "frankfurt_000000_000294_gtFine_labelTrainIds.png"
    counts, ignored = class_fractions(parse_label_format("index:255"), [label])
    assert ignored < 0.5 and counts[19:].sum() == 0 and (counts > 0).sum() >= 3

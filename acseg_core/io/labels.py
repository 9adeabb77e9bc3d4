"""Label readers: turn a label image into class indices (-1 = unlabelled) + class names.

Formats (``parse_label_format`` spec strings, used by ``acseg-core evaluate``):

- ``index`` — one-band PNG/TIFF whose pixel value is the class; ``index:0`` or
  ``index:0,255`` also marks values as unlabelled (LoveDA 0 = no-data, Cityscapes 255).
- ``potsdam`` (alias ``isprs``) — the ISPRS Potsdam/Vaihingen colour code; black is
  the eroded boundary and ignored.
- ``colors:FILE`` — an RGB label with a colour table: CSV lines ``r,g,b,class_name``
  (``#`` comments and a header line allowed; several colours may share a class;
  the name ``ignore`` marks unlabelled colours). A colour missing from the table is
  an error, so a wrong table cannot silently drop pixels.
- ``lookup:CSV`` — an index label remapped through a table with a header: a
  ``value`` column and a class column (``class_name``, else the last ``*_name``
  column, e.g. ``coarse_name`` in COCO-Stuff's ``fine_to_coarse.csv``). Values not in
  the table (COCO-Stuff 255) and classes named ``ignore`` are unlabelled. ``keep``
  (``COLUMN=VALUE``, e.g. ``kind=stuff`` for COCO-Stuff-15) ignores the other rows.

``merge`` then groups classes: ``potsdam3`` ({impervious, car}, {low vegetation,
tree}, {building, clutter}) or a CSV of ``class_name,merged_name`` lines; classes
left out of the merge table become unlabelled. Tables ship in ``resources/labels/``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from acseg_core.errors import AcsegError, InputError
from acseg_core.io.files import require_regular_file
from acseg_core.io.raster import open_raster

LABEL_IGNORE = -1
IGNORE_NAME = "ignore"

ISPRS_COLOURS: tuple[tuple[tuple[int, int, int], str], ...] = (
    ((255, 255, 255), "impervious surfaces"),
    ((0, 0, 255), "building"),
    ((0, 255, 255), "low vegetation"),
    ((0, 255, 0), "tree"),
    ((255, 255, 0), "car"),
    ((255, 0, 0), "clutter"),
    ((0, 0, 0), IGNORE_NAME),  # eroded class boundaries
)
POTSDAM3_MERGE: tuple[tuple[str, str], ...] = (
    ("impervious surfaces", "roads and cars"),
    ("car", "roads and cars"),
    ("low vegetation", "vegetation"),
    ("tree", "vegetation"),
    ("building", "buildings and clutter"),
    ("clutter", "buildings and clutter"),
)
BUILTIN_MERGES = {"potsdam3": POTSDAM3_MERGE, "vaihingen3": POTSDAM3_MERGE}


@dataclass(frozen=True)
class LabelFormat:
    """How label pixels become class indices.

    ``kind`` says how a pixel becomes a code: ``index`` (its value) or ``colors``
    (r << 16 | g << 8 | b). ``table`` maps codes to class indices (-1 = ignore);
    without a table (plain ``index``) the code *is* the class and the class list is
    open-ended (``class_names`` None): the evaluator grows it as values appear.
    """

    kind: str
    description: str
    class_names: tuple[str, ...] | None = None
    table: tuple[tuple[int, int], ...] | None = None
    ignore_values: frozenset[int] = frozenset()
    strict: bool = False  # codes missing from the table: error (True) or unlabelled

    @property
    def n_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    def names(self, n_classes: int) -> list[str]:
        """Class names, inventing ``"0", "1", ...`` for open-ended index labels."""
        if self.class_names is not None:
            return list(self.class_names)
        return [str(i) for i in range(n_classes)]

    def read(self, path: str | Path, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Class indices (int32 H×W, -1 = unlabelled) of a label file or one window of it."""
        with open_raster(path) as raster:
            count = raster.info.count
            if self.kind == "colors":
                if count < 3:
                    raise InputError(
                        path, f"has {count} band(s); colour labels need RGB (is it an index label?)"
                    )
                raw = raster.read(window, bands=[1, 2, 3])
            else:
                if count != 1:
                    raise InputError(
                        path,
                        f"has {count} bands; index labels need one band "
                        "(colour labels need --label-format potsdam or colors:FILE)",
                    )
                raw = raster.read(window, bands=[1])
        return self.convert(raw, path)

    def convert(self, raw: np.ndarray, path: str | Path = "<array>") -> np.ndarray:
        """(bands, H, W) raw label pixels → int32 class indices (-1 = unlabelled)."""
        if self.kind == "colors":
            rgb = raw[:3].astype(np.int32)
            codes = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
        else:
            if np.issubdtype(raw.dtype, np.floating):
                raise InputError(path, f"index labels must be integers, not {raw.dtype}")
            codes = raw[0].astype(np.int64)
        if self.table is None:
            out = codes.astype(np.int32)
            out[codes < 0] = LABEL_IGNORE
            for value in self.ignore_values:
                out[codes == value] = LABEL_IGNORE
            return out
        return self._lookup(codes, path)

    def _lookup(self, codes: np.ndarray, path: str | Path) -> np.ndarray:
        assert self.table is not None
        keys = np.asarray([k for k, _ in self.table], dtype=np.int64)
        values = np.asarray([v for _, v in self.table], dtype=np.int32)
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        pos = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
        found = keys[pos] == codes
        if self.strict and not found.all():
            missing, counts = np.unique(codes[~found], return_counts=True)
            top = np.argsort(counts)[::-1][:3]
            listed = ", ".join(f"{_code_text(self.kind, missing[i])} ×{counts[i]}" for i in top)
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise InputError(
                path,
                f"{int(counts.sum())} pixels have colours not in the {self.description} table: "
                f"{listed}{more} (add them to the table, as '{IGNORE_NAME}' to skip them)",
            )
        out = np.where(found, values[pos], LABEL_IGNORE).astype(np.int32)
        return out


def parse_label_format(
    spec: str = "index",
    merge: str | None = None,
    keep: str | None = None,
    class_column: str | None = None,
) -> LabelFormat:
    """A :class:`LabelFormat` from a spec string (see the module docstring)."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if keep and kind != "lookup":
        raise AcsegError("--keep selects rows of a lookup table: use it with lookup:CSV")
    if kind == "index":
        fmt = LabelFormat("index", spec, ignore_values=_ignore_values(arg, spec))
    elif kind in ("potsdam", "isprs", "vaihingen"):
        fmt = _colour_format(ISPRS_COLOURS, "ISPRS colour code")
    elif kind in ("colors", "colours"):
        if not arg:
            raise AcsegError("colors: needs a table file, e.g. colors:resources/labels/dubai.csv")
        fmt = _colour_format(read_colour_table(arg), Path(arg).name)
    elif kind == "lookup":
        if not arg:
            raise AcsegError("lookup: needs a CSV file, e.g. lookup:fine_to_coarse.csv")
        fmt = _lookup_format(Path(arg), keep, class_column)
    else:
        raise AcsegError(
            f"unknown label format {spec!r} (expected index, index:IGNORE, potsdam, "
            "colors:FILE or lookup:CSV)"
        )
    if merge:
        fmt = merge_classes(fmt, _merge_table(merge), merge)
    return fmt


def read_colour_table(path: str | Path) -> list[tuple[tuple[int, int, int], str]]:
    """``r,g,b,class_name`` lines (comments, blank lines and a header skipped)."""
    rows = []
    for index, (number, fields) in enumerate(_csv_rows(path)):
        if len(fields) < 4:
            raise InputError(path, f"line {number}: expected r,g,b,class_name")
        try:
            rgb = tuple(int(v) for v in fields[:3])
        except ValueError:
            if index == 0:
                continue  # header
            raise InputError(path, f"line {number}: r,g,b must be integers") from None
        if not all(0 <= v <= 255 for v in rgb):
            raise InputError(path, f"line {number}: r,g,b must be 0–255")
        rows.append(((rgb[0], rgb[1], rgb[2]), fields[3]))
    if not rows:
        raise InputError(path, "no colours in the table")
    return rows


def merge_classes(fmt: LabelFormat, pairs: Iterable[tuple[str, str]], what: str) -> LabelFormat:
    """Group classes (old name → new name); classes not listed become unlabelled."""
    pairs = list(pairs)
    new_names = _unique(new for _, new in pairs if new != IGNORE_NAME)
    target = {old: (new_names.index(new) if new != IGNORE_NAME else -1) for old, new in pairs}
    if fmt.table is None:  # open-ended index: merge table names the values
        try:
            table = tuple((int(old), cls) for old, cls in target.items())
        except ValueError:
            raise AcsegError(f"merge {what}: index labels have numeric class names") from None
        return replace(
            fmt, class_names=tuple(new_names), table=table, description=f"{fmt.description}+{what}"
        )
    assert fmt.class_names is not None
    unknown = sorted(set(target) - set(fmt.class_names))
    if unknown:
        raise AcsegError(
            f"merge {what}: no class named {', '.join(map(repr, unknown))} in {fmt.description} "
            f"(classes: {', '.join(fmt.class_names)})"
        )
    remap = [target.get(name, -1) for name in fmt.class_names]
    table = tuple((code, remap[cls] if cls >= 0 else -1) for code, cls in fmt.table)
    return replace(fmt, class_names=tuple(new_names), table=table)


# -- helpers ----------------------------------------------------------------------


def _colour_format(rows: Iterable[tuple[tuple[int, int, int], str]], what: str) -> LabelFormat:
    rows = list(rows)
    names = _unique(name for _, name in rows if name != IGNORE_NAME)
    table = []
    for (r, g, b), name in rows:
        table.append(((r << 16) | (g << 8) | b, names.index(name) if name != IGNORE_NAME else -1))
    return LabelFormat("colors", what, tuple(names), tuple(table), strict=True)


def _lookup_format(path: Path, keep: str | None, class_column: str | None) -> LabelFormat:
    require_regular_file(path, "lookup table")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError:
        raise InputError(path, "not a lookup table (not UTF-8 text)") from None
    columns = list(rows[0].keys()) if rows else []
    if "value" not in columns:
        raise InputError(path, "lookup table needs a header with a 'value' column")
    column = class_column or _class_column(columns)
    if column not in columns:
        raise InputError(path, f"no class column {column!r} (columns: {', '.join(columns)})")
    keep_column, keep_value = _parse_keep(keep, columns, path)
    pairs: list[tuple[int, str]] = []
    for number, row in enumerate(rows, start=2):
        try:
            value = int(row["value"])
        except (TypeError, ValueError):
            raise InputError(path, f"line {number}: value must be an integer") from None
        name = (row.get(column) or "").strip()
        if keep_column and (row.get(keep_column) or "").strip() != keep_value:
            name = IGNORE_NAME
        pairs.append((value, name or IGNORE_NAME))
    names = _unique(name for _, name in pairs if name != IGNORE_NAME)
    table = tuple((v, names.index(n) if n != IGNORE_NAME else -1) for v, n in pairs)
    what = f"{path.name}:{column}" + (f" ({keep})" if keep else "")
    return LabelFormat("index", what, tuple(names), table, strict=False)


def _class_column(columns: list[str]) -> str:
    if "class_name" in columns:
        return "class_name"
    named = [c for c in columns if c.endswith("_name") or c == "name"]
    return named[-1] if named else "class_name"


def _parse_keep(keep: str | None, columns: list[str], path: Path) -> tuple[str | None, str]:
    if not keep:
        return None, ""
    column, sep, value = keep.partition("=")
    if not sep or column not in columns:
        raise InputError(
            path, f"--keep {keep!r}: expected COLUMN=VALUE with a column of {', '.join(columns)}"
        )
    return column, value


def _merge_table(merge: str) -> tuple[tuple[str, str], ...]:
    builtin = BUILTIN_MERGES.get(merge.lower())
    if builtin is not None:
        return builtin
    path = Path(merge)
    if not path.exists():
        raise AcsegError(
            f"merge {merge!r}: neither {', '.join(BUILTIN_MERGES)} nor an existing CSV file"
        )
    pairs = []
    for index, (number, fields) in enumerate(_csv_rows(path)):
        if len(fields) < 2:
            raise InputError(path, f"line {number}: expected class_name,merged_name")
        if index == 0 and fields[:2] == ["class_name", "merged_name"]:
            continue
        pairs.append((fields[0], fields[1]))
    return tuple(pairs)


def _csv_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """Non-empty, non-comment CSV rows with their 1-based line numbers."""
    require_regular_file(path, "table")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError:
        raise InputError(path, "not a table (not UTF-8 text)") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rows.append((number, [f.strip() for f in next(csv.reader([line]))]))
    return rows


def _ignore_values(arg: str, spec: str) -> frozenset[int]:
    if not arg:
        return frozenset()
    try:
        return frozenset(int(v) for v in arg.split(",") if v.strip())
    except ValueError:
        raise AcsegError(f"label format {spec!r}: ignore values must be integers") from None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _code_text(kind: str, code: int) -> str:
    code = int(code)
    if kind == "colors":
        return f"({code >> 16},{(code >> 8) & 255},{code & 255})"
    return str(code)

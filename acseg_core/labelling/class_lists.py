"""Class lists read from files, so classes set themselves up instead of being typed.

:func:`read_class_list` accepts what a user is likely to have at hand:

* CVAT's ``labelmap.txt`` (``name:r,g,b:parts:actions``; an export of this app or of
  CVAT) and the ``name:r,g,b`` / ``name`` lines ``acseg-core learn --classes`` reads;
  the ``background`` line of a labelmap is unassigned pixels, not a class;
* the tables in ``resources/labels/``: colour tables (``r,g,b,class_name``), lookup
  tables (``value,class_name``) and merge tables (``class_name,merged_name``: the
  merged names); ``ignore`` rows are not classes;
* JSON: a class map as a project stores it (or a project file), or a list of names.

Each class comes as ``(name, colour or None)``; a class without a colour takes its
land-cover colour or a free one when added (:meth:`ClassMap.add_classes`).
"""

from __future__ import annotations

import json
from pathlib import Path

from acseg_core.errors import AcsegError, InputError
from acseg_core.gis.palettes import Color
from acseg_core.io.labels import IGNORE_NAME, read_colour_table
from acseg_core.labelling.classes import BACKGROUND_NAME, ClassMap

CLASS_LIST_FILTER = "Class lists (*.txt *.csv *.json *.acseg);;All files (*)"

ClassEntry = tuple[str, Color | None]


def read_class_list(path: str | Path) -> list[ClassEntry]:
    """The classes listed in ``path`` (any format above), in order, names unique.
    Raises :class:`InputError` naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "class list not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the class list ({type(exc).__name__})") from None
    entries = _from_json(text, path)
    if entries is None:
        entries = _from_csv(text, path) if _looks_like_csv(text) else parse_class_lines(text, path)
    entries = [(n, c) for n, c in entries if n.lower() not in (BACKGROUND_NAME, IGNORE_NAME)]
    unique: dict[str, Color | None] = {}
    for name, colour in entries:
        if name not in unique or unique[name] is None:
            unique[name] = colour
    if not unique:
        raise InputError(path, "no class names in the class list")
    return list(unique.items())


def parse_class_lines(text: str, path: str | Path = "<text>") -> list[ClassEntry]:
    """``name`` or ``name:r,g,b[:parts:actions]`` lines (``#`` lines skipped), as in
    CVAT's labelmap.txt. A colour that is not three values 0–255 is an InputError."""
    entries: list[ClassEntry] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        colour = rest.split(":")[0].strip()
        rgb: Color | None = None
        if colour:
            try:
                values = tuple(int(v) for v in colour.split(","))
            except ValueError:
                raise InputError(path, f"bad colour in line {line!r} (expected r,g,b)") from None
            if len(values) != 3 or not all(0 <= v <= 255 for v in values):
                raise InputError(path, f"bad colour in line {line!r} (expected r,g,b)")
            rgb = (values[0], values[1], values[2])
        if name.strip():
            entries.append((name.strip(), rgb))
    return entries


def _from_json(text: str, path: Path) -> list[ClassEntry] | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(data, list) and all(isinstance(n, str) for n in data):
        return [(n.strip(), None) for n in data if n.strip()]
    if isinstance(data, dict):
        try:
            cmap = ClassMap.from_dict(data.get("class_map", data))
        except AcsegError as exc:
            raise InputError(path, f"bad class map ({exc})") from None
        return [(c.name, c.color) for c in cmap.classes]
    raise InputError(path, "a JSON class list is a list of names or a class map")


def _first_row(text: str) -> str:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    return ""


def _looks_like_csv(text: str) -> bool:
    first = _first_row(text).replace(" ", "")
    return first.startswith(("r,g,b", "value,", "class_name,")) or (
        first.count(",") >= 3 and ":" not in first
    )


def _from_csv(text: str, path: Path) -> list[ClassEntry]:
    header = [h.strip() for h in _first_row(text).split(",")]
    rows = [
        [f.strip() for f in line.split(",")]
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ][1:]
    if header[:2] == ["class_name", "merged_name"]:  # a merge table: the merged classes
        return [(row[1], None) for row in rows if len(row) >= 2 and row[1]]
    if "value" in header:  # a lookup table: value → class
        column = "class_name" if "class_name" in header else header[-1]
        at = header.index(column)
        return [(row[at], None) for row in rows if len(row) > at and row[at]]
    return [(name, rgb) for rgb, name in read_colour_table(path)]  # r,g,b,class_name


__all__ = ["CLASS_LIST_FILTER", "ClassEntry", "parse_class_lines", "read_class_list"]

"""The project file's JSON: writing it, and reading and validating it (schema 1 and 2).

Schema 2 keys cached prediction maps by what produced them
(``images[i].predictions = {key: path}``, :mod:`acseg_core.inference.cache`); schema 1
had one ``prediction`` path per image that said nothing of the model or read-out that
made it, so such entries are dropped on load (a cache: the maps are predicted again).
Every path is stored relative to the project file. Hand edits live in the project's
own edits folder (``<stem>.edits/``): an edits path outside it is refused, so a crafted
project never makes acseg write or delete a file elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acseg_core.errors import AcsegError
from acseg_core.io.normalise import Normalisation
from acseg_core.labelling.classes import ClassMap

if TYPE_CHECKING:
    from acseg_core.labelling.project import Project

FORMAT = "acseg-project"
SCHEMA_VERSION = 2
SUFFIX = ".acseg"


def to_json(project: Project, target: Path, edits: dict[Path, Path | None]) -> dict[str, Any]:
    """The JSON document of ``project`` saved at ``target`` (``edits``: file per image)."""
    base = target.parent
    norm = project.normalisation
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "model": relative(project.model, base),
        "normalisation": None
        if norm is None
        else {"low": list(norm.low), "high": list(norm.high), "nodata": norm.nodata},
        "class_map": project.class_map.to_dict(),
        "images": [
            {
                "path": relative(e.path, base),
                "predictions": {k: relative(v, base) for k, v in sorted(e.predictions.items())},
                "edits": relative(edits.get(e.path), base),
            }
            for e in project.images
        ],
        "display": project.display,
    }


def from_json(project: Project, data: Any) -> None:
    """Fill an empty ``project`` (whose path is set) from its file's JSON; raises
    :class:`Invalid` naming the field."""
    from acseg_core.labelling.project import ImageEntry

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise Invalid("not an acseg project file")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise Invalid("schema_version must be a positive integer")
    if version > SCHEMA_VERSION:
        raise Invalid(
            f"schema_version {version} is newer than this acseg ({SCHEMA_VERSION}); "
            "update acseg to open it"
        )
    assert project.path is not None
    base = project.path.parent
    edits_dir = project.edits_dir
    assert edits_dir is not None
    project._model = path_field(data, "model", base)
    project._normalisation = _normalisation(data.get("normalisation"))
    try:
        project._class_map = ClassMap.from_dict(data.get("class_map", {}))
    except AcsegError as exc:
        raise Invalid(f"class_map: {exc}") from None
    images = data.get("images", [])
    if not isinstance(images, list):
        raise Invalid("images must be a list")
    seen: set[Path] = set()
    for i, item in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(item, dict):
            raise Invalid(f"{where} must be an object")
        if not isinstance(item.get("path"), str) or not item["path"]:
            raise Invalid(f"{where}.path must be a string")
        entry = ImageEntry(
            path=path_field(item, "path", base, where),  # type: ignore[arg-type]
            predictions=_predictions(item.get("predictions"), base, where),
            edits_file=path_field(item, "edits", base, where),
        )
        if entry.path in seen:
            raise Invalid(f"{where}.path repeats an earlier image ({item['path']})")
        if entry.edits_file is not None and not inside(entry.edits_file, edits_dir):
            raise Invalid(
                f"{where}.edits {item['edits']} is outside the project's edits folder "
                f"{edits_dir.name}/ (refused: acseg writes and deletes hand edits only there)"
            )
        seen.add(entry.path)
        if entry.edits_file is not None and not entry.edits_file.is_file():
            project.warnings.append(
                f"{where}: edits file {item['edits']} not found; "
                f"hand edits of {entry.path.name} are lost"
            )
            entry.edits_file = None
            project.mark_dirty()
        project._images.append(entry)
    display = data.get("display", {})
    if not isinstance(display, dict):
        raise Invalid("display must be an object")
    project._display = display


def _predictions(value: Any, base: Path, where: str) -> dict[str, Path]:
    """Cached maps that still exist (a missing one is only a cache miss)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{where}.predictions must be an object")
    found = {}
    for key in value:
        file = path_field(value, key, base, f"{where}.predictions")
        if file is not None and file.is_file():
            found[str(key)] = file
    return found


def relative(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return path.as_posix()


def absolute(path: Path) -> Path:
    """Absolute and normalised, without resolving symlinks (they may be deliberate)."""
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(path))))


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder`` once links and ``..`` are resolved."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


class Invalid(Exception):
    """A validation problem inside the file (the loader adds the file name)."""


def path_field(data: dict[str, Any], key: str, base: Path, where: str = "") -> Path | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise Invalid(f"{where + '.' if where else ''}{key} must be a string or null")
    p = Path(value)
    return absolute(p if p.is_absolute() else base / p)


def _normalisation(value: Any) -> Normalisation | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("normalisation must be an object or null")
    low, high, nodata = value.get("low"), value.get("high"), value.get("nodata")

    def numbers(v: Any) -> bool:
        return isinstance(v, list) and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in v
        )

    if not numbers(low) or not numbers(high) or len(low) != len(high) or not low:
        raise Invalid("normalisation.low and .high must be equal-length lists of numbers")
    if nodata is not None and (not isinstance(nodata, int | float) or isinstance(nodata, bool)):
        raise Invalid("normalisation.nodata must be a number or null")
    return Normalisation(tuple(low), tuple(high), nodata)

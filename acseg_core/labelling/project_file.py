"""The project file's JSON: writing it, and reading and validating it (schemas 1–3).

Schema 2 keys cached prediction maps by what produced them
(``images[i].predictions = {key: path}``, :mod:`acseg_core.inference.cache`); schema 1
had one ``prediction`` path per image that said nothing of the model or read-out that
made it, so such entries are dropped on load (a cache: the maps are predicted again).
Schema 3 adds ``learnt``: the model learnt from the hand edits, a file in the project's
own ``<stem>.models/`` folder. Every path is stored relative to the project file. Hand
edits live in the project's own edits folder (``<stem>.edits/``) and the learnt model
in its models folder: a path outside them is refused, so a crafted project never
makes acseg write or delete a file elsewhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError, os_reason
from acseg_core.io.files import require_regular_file
from acseg_core.io.normalise import Normalisation
from acseg_core.labelling.classes import ClassMap

FORMAT = "acseg-project"
SCHEMA_VERSION = 3
SUFFIX = ".acseg"


@dataclass
class ImageEntry:
    """One image of the project. Paths are absolute in memory, relative on disk."""

    path: Path
    # cached maps by what produced them (acseg_core.inference.cache.prediction_key)
    predictions: dict[str, Path] = field(default_factory=dict)
    edits_file: Path | None = None  # stored hand edits (managed by the project)

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class ProjectFields:
    """What a project file holds, read and validated (paths absolute)."""

    model: Path | None = None
    normalisation: Normalisation | None = None
    class_map: ClassMap = field(default_factory=lambda: ClassMap.empty(0))
    images: list[ImageEntry] = field(default_factory=list)
    display: dict[str, Any] = field(default_factory=dict)
    learnt: Path | None = None
    warnings: list[str] = field(default_factory=list)  # non-fatal problems found on load


def to_json(
    fields: ProjectFields, target: Path, edits: dict[Path, Path | None], learnt: Path | None
) -> dict[str, Any]:
    """The JSON document of a project saved at ``target`` (``edits``: file per image,
    ``learnt``: the learnt model's file)."""
    base = target.parent
    norm = fields.normalisation
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "model": relative(fields.model, base),
        "learnt": relative(learnt, base),
        "normalisation": None
        if norm is None
        else {"low": list(norm.low), "high": list(norm.high), "nodata": norm.nodata},
        "class_map": fields.class_map.to_dict(),
        "images": [
            {
                "path": relative(e.path, base),
                "predictions": {k: relative(v, base) for k, v in sorted(e.predictions.items())},
                "edits": relative(edits.get(e.path), base),
            }
            for e in fields.images
        ],
        "display": fields.display,
    }


def read(path: Path) -> ProjectFields:
    """The validated fields of the project file at ``path``; InputError names the file
    and the problem."""
    require_regular_file(path, "project file")
    if not path.is_file():
        raise InputError(path, "project file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError as exc:
        raise InputError(path, "not a project file (nested too deeply)") from exc
    except UnicodeDecodeError as exc:
        raise InputError(path, "not a project file (not text)") from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except OSError as exc:
        raise InputError(path, f"cannot read ({os_reason(exc)})") from exc
    try:
        return from_json(path, data)
    except Invalid as exc:
        raise InputError(path, str(exc)) from None
    except RecursionError as exc:
        raise InputError(path, "not a project file (nested too deeply)") from exc


def from_json(path: Path, data: Any) -> ProjectFields:
    """The fields of the project file at ``path`` from its JSON; raises
    :class:`Invalid` naming the field."""
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
    base = path.parent
    own_edits = edits_dir(path)
    fields = ProjectFields(
        model=path_field(data, "model", base),
        normalisation=_normalisation(data.get("normalisation")),
        learnt=path_field(data, "learnt", base),
    )
    try:
        fields.class_map = ClassMap.from_dict(data.get("class_map", {}))
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
        if entry.edits_file is not None and not inside(entry.edits_file, own_edits):
            raise Invalid(
                f"{where}.edits {item['edits']} is outside the project's edits folder "
                f"{own_edits.name}/ (refused: acseg writes and deletes hand edits only there)"
            )
        seen.add(entry.path)
        if entry.edits_file is not None and not entry.edits_file.is_file():
            fields.warnings.append(
                f"{where}: edits file {item['edits']} not found; "
                f"hand edits of {entry.path.name} are lost"
            )
            entry.edits_file = None
        fields.images.append(entry)
    models = models_dir(path)
    if fields.learnt is not None and not inside(fields.learnt, models):
        raise Invalid(f"learnt must be a file in the project's {models.name} folder")
    if fields.learnt is not None and not fields.learnt.is_file():
        fields.warnings.append(
            f"learnt model {data['learnt']} not found; the unsupervised model is used"
        )
        fields.learnt = None
    display = data.get("display", {})
    if not isinstance(display, dict):
        raise Invalid("display must be an object")
    fields.display = display
    return fields


def edits_dir(project_file: Path) -> Path:
    """``<stem>.edits/`` beside the project file: its hand edits."""
    return project_file.with_name(project_file.stem + ".edits")


def models_dir(project_file: Path) -> Path:
    """``<stem>.models/`` beside the project file: the model learnt from its edits."""
    return project_file.with_name(project_file.stem + ".models")


def cache_dir(project_file: Path) -> Path:
    """``<stem>.cache/`` beside the project file: maps predicted for its images."""
    return project_file.with_name(project_file.stem + ".cache")


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


__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "SUFFIX",
    "ImageEntry",
    "Invalid",
    "ProjectFields",
    "absolute",
    "cache_dir",
    "edits_dir",
    "from_json",
    "inside",
    "models_dir",
    "read",
    "relative",
    "to_json",
]

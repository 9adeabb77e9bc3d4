"""Command-line options made from the config dataclasses, so the CLI never restates a
default: each option's type, choices, help and default come from the field
(``field(metadata={"help": ...})``) of :class:`~acseg_core.training.config.TrainConfig`,
:class:`~acseg_core.model.config.ModelConfig` or
:class:`~acseg_core.inference.predict.PredictOptions`.

Options are added with ``default=None``, so "not given" stays distinguishable and the
config (or a resumed run's stored config) supplies the value; the help shows it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from acseg_core.gis.polygons import DEFAULT_MIN_AREA
from acseg_core.presets import PRESETS, training_defaults
from acseg_core.training.config import FROM_PRESET


def field_of(cls: type, name: str) -> dataclasses.Field:
    """The dataclass field ``name`` of ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def default_text(cls: type, name: str) -> str:
    """How a field's default reads in ``--help`` (a preset-set value names each preset's)."""
    f = field_of(cls, name)
    default = f.default
    if default is FROM_PRESET:
        values = ", ".join(f"{p} {training_defaults(p)[name]}" for p in PRESETS)
        return f"the preset's: {values}"
    if default is None:
        return "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)


def value_type(cls: type, name: str) -> Callable[[str], Any]:
    """The converter for a field's annotation (``int | None`` → int)."""
    hints = typing.get_type_hints(cls)
    hint = hints[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint if hint in (int, float, str) else str


def add_field_options(
    group: Any,
    cls: type,
    names: Sequence[str],
    flags: dict[str, str] | None = None,
    metavars: dict[str, str] | None = None,
) -> None:
    """One ``--name`` option per field (``flags`` renames one: ``{"overclusters":
    "--overcluster"}``), typed, with the field's help, choices and default."""
    flags, metavars = flags or {}, metavars or {}
    for name in names:
        f = field_of(cls, name)
        meta = f.metadata
        flag = flags.get(name, "--" + name.replace("_", "-"))
        kwargs: dict[str, Any] = {"dest": name, "default": None}
        if meta.get("choices"):
            kwargs["choices"] = tuple(meta["choices"])
        else:
            kwargs["type"] = value_type(cls, name)
            kwargs["metavar"] = metavars.get(name, "N" if kwargs["type"] is int else None)
            if kwargs["metavar"] is None:
                del kwargs["metavar"]
        help_text = meta.get("help", name.replace("_", " "))
        kwargs["help"] = f"{help_text} (default: {default_text(cls, name)})"
        group.add_argument(flag, **kwargs)


def given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The options of ``names`` the user gave (left-out ones stay the config's)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}




def add_min_area(parser: argparse.ArgumentParser) -> None:
    """``--min-area PX``, the polygon sieve of the ``gpkg`` format (predict and export)."""
    parser.add_argument(
        "--min-area",
        type=int,
        default=None,
        metavar="PX",
        help="gpkg: regions under PX pixels join their largest neighbour first "
        f"(default {DEFAULT_MIN_AREA}; 0 = keep every pixel)",
    )

__all__ = ["add_field_options", "add_min_area", "default_text", "field_of", "given", "value_type"]

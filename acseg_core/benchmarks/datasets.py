"""Datasets of the accuracy benchmarks: shared-sample shortcuts and ``key=value`` specs.

DATASET_SPEC is either a shortcut for the shared samples (``shared:vaihingen6``,
``shared:vaihingen3``, ``shared:loveda``, ``shared:dubai``, ``shared:cocostuff15``,
resolved under ``$ACSEG_SHARED_DATA`` or ``../shared/data``) or comma-separated
``key=value`` pairs::

    name=dubai,images=DIR,labels=DIR,format=colors:resources/labels/dubai.csv
    name=coco15,images=DIR,labels=DIR,format=lookup:fine_to_coarse.csv,keep=kind=stuff,k=15

keys: ``name``, ``images`` (required), ``labels`` (default: the image folder),
``format`` (label format as ``acseg-core evaluate --label-format``; default
``index``), ``merge``, ``keep``, ``class-column``, ``k`` (clusters; default the
number of classes present), ``sobel`` (0/1: add Sobel channels, IIC's photo input),
``jitter-bands`` (bands view jitter may change, e.g. ``1+2``; default all: list only
visible bands, never NIR).
A value may contain ``=`` and ``,`` as long as no comma is followed by ``key=``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from acseg_core.errors import AcsegError

SHARED_ENV = "ACSEG_SHARED_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
LABEL_TABLES = REPO_ROOT / "resources" / "labels"
SPEC_KEYS = (
    "name", "images", "labels", "format", "merge", "keep", "class-column", "k", "sobel",
    "jitter-bands",
)  # fmt: skip
_SPEC_SPLIT = re.compile(r",(?=\s*[A-Za-z][\w-]*=)")


@dataclass(frozen=True)
class DatasetSpec:
    """A labelled folder and how to read its labels."""

    name: str
    images: Path
    labels: Path
    label_format: str = "index"
    merge: str | None = None
    keep: str | None = None
    class_column: str | None = None
    k: int | None = None
    sobel: bool = False
    # the bands view jitter may touch (TrainConfig.jitter_bands): never NIR; None = all
    jitter_bands: tuple[int, ...] | None = None

    def describe(self) -> str:
        parts = [f"name={self.name}", f"images={self.images}", f"labels={self.labels}"]
        parts.append(f"format={self.label_format}")
        for key, value in (("merge", self.merge), ("keep", self.keep), ("k", self.k)):
            if value is not None:
                parts.append(f"{key}={value}")
        if self.sobel:
            parts.append("sobel=1")
        if self.jitter_bands is not None:
            parts.append("jitter-bands=" + "+".join(str(b) for b in self.jitter_bands))
        return ",".join(parts)


def shared_data_root() -> Path:
    """``$ACSEG_SHARED_DATA``, else ``../shared/data`` beside the repo (or the cwd)."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env)
    for base in (REPO_ROOT.parent, Path.cwd().parent):
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "data"


def shared_specs(root: Path) -> dict[str, DatasetSpec]:
    """The shortcuts for the shared samples (see ``../shared/data/README.md``)."""
    vaihingen = root / "isprs-vaihingen"
    coco = root / "cocostuff"
    return {
        # clutter is absent from the crop, so K = 5 classes present; IRRG: band 0 is NIR
        "vaihingen6": DatasetSpec(
            "vaihingen6", vaihingen, vaihingen, "potsdam", jitter_bands=(1, 2)
        ),
        "vaihingen3": DatasetSpec(
            "vaihingen3", vaihingen, vaihingen, "potsdam", merge="potsdam3", jitter_bands=(1, 2)
        ),
        "loveda": DatasetSpec(
            "loveda",
            root / "loveda" / "images",
            root / "loveda" / "labels",
            f"lookup:{LABEL_TABLES / 'loveda.csv'}",
        ),
        "dubai": DatasetSpec(
            "dubai",
            root / "dubai" / "images",
            root / "dubai" / "labels",
            f"colors:{LABEL_TABLES / 'dubai.csv'}",
        ),
        # COCO-Stuff-15: the 15 coarse stuff classes (13 present here), K = 15 as IIC/AC
        "cocostuff15": DatasetSpec(
            "cocostuff15",
            coco / "images",
            coco / "labels",
            f"lookup:{coco / 'fine_to_coarse.csv'}",
            keep="kind=stuff",
            k=15,
        ),
    }


def parse_spec(text: str) -> DatasetSpec:
    """A :class:`DatasetSpec` from ``shared:NAME`` or ``key=value,...`` (module docstring)."""
    text = text.strip()
    if text.startswith("shared:"):
        root = shared_data_root()
        specs = shared_specs(root)
        name = text.removeprefix("shared:")
        if name not in specs:
            raise AcsegError(f"unknown shared dataset {name!r} (choose from {', '.join(specs)})")
        spec = specs[name]
        if not spec.images.is_dir():
            raise AcsegError(f"{text}: {spec.images} not found (set {SHARED_ENV})")
        return spec
    values: dict[str, str] = {}
    for part in _SPEC_SPLIT.split(text):
        key, sep, value = part.partition("=")
        key = key.strip().lower().replace("_", "-")
        if not sep or key not in SPEC_KEYS:
            raise AcsegError(
                f"dataset spec {text!r}: expected key=value pairs with keys "
                f"{', '.join(SPEC_KEYS)}, or shared:NAME"
            )
        if key in values:
            raise AcsegError(f"dataset spec {text!r}: {key} given twice")
        values[key] = value.strip()
    if "images" not in values:
        raise AcsegError(f"dataset spec {text!r}: images=DIR is required")
    images = Path(values["images"])
    k = values.get("k")
    try:
        k_value = int(k) if k is not None else None
    except ValueError:
        raise AcsegError(f"dataset spec {text!r}: k must be an integer") from None
    if k_value is not None and not 2 <= k_value <= 254:
        raise AcsegError(f"dataset spec {text!r}: k must be 2–254")
    return DatasetSpec(
        name=values.get("name") or images.name,
        images=images,
        labels=Path(values.get("labels") or images),
        label_format=values.get("format", "index"),
        merge=values.get("merge"),
        keep=values.get("keep"),
        class_column=values.get("class-column"),
        k=k_value,
        sobel=values.get("sobel", "0").lower() in ("1", "yes", "true", "on"),
        jitter_bands=_bands(text, values.get("jitter-bands")),
    )


def _bands(text: str, value: str | None) -> tuple[int, ...] | None:
    """``jitter-bands=1+2`` (0-based band indices joined by +) → (1, 2)."""
    if value is None:
        return None
    try:
        bands = tuple(int(part) for part in value.split("+") if part.strip())
    except ValueError:
        raise AcsegError(f"dataset spec {text!r}: jitter-bands must be like 0+1+2") from None
    if any(b < 0 for b in bands):
        raise AcsegError(f"dataset spec {text!r}: jitter-bands must be >= 0")
    return bands


# -- settings -------------------------------------------------------------------------


__all__ = ["DatasetSpec", "parse_spec", "shared_data_root", "shared_specs"]

"""Pairing images with their label files by name (ISPRS, Cityscapes, plain stems)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acseg_core.errors import AcsegError, InputError
from acseg_core.io.labels import LabelFormat
from acseg_core.io.raster import IMAGE_SUFFIXES, open_raster

STRIP_ROWS = 1024

# Name endings that differ between an image and its label (ISPRS, Cityscapes).
IMAGE_ENDINGS = ("_RGBIR", "_IRRG", "_RGB", "_IR", "_leftImg8bit")
LABEL_ENDINGS = (
    "_label",
    "_labels",
    "_mask",
    "_gtFine_labelTrainIds",
    "_gtFine_labelIds",
    "_labelTrainIds",
)
_LABEL_RE = re.compile("(" + "|".join(re.escape(e) for e in LABEL_ENDINGS) + ")$", re.I)
_IMAGE_RE = re.compile("(" + "|".join(re.escape(e) for e in IMAGE_ENDINGS) + ")$", re.I)


@dataclass(frozen=True)
class Pair:
    image: Path
    label: Path

    @property
    def name(self) -> str:
        return self.image.stem


def pair_key(stem: str, is_label: bool) -> str:
    """The shared part of an image's and its label's names (case-insensitive)."""
    pattern = _LABEL_RE if is_label else _IMAGE_RE
    return pattern.sub("", stem).lower()


def pair_images(images_dir: str | Path, labels_dir: str | Path) -> list[Pair]:
    """Pair every image with its label by name; refuse unpaired files, listing them.

    Same stem pairs (``a.jpg`` ↔ ``labels/a.png``), and so do the ISPRS and
    Cityscapes names (``X_RGBIR``/``X_IRRG``/``X_RGB`` ↔ ``X_label``). Labels may
    sit in the image folder, where files named like labels are taken as labels.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise InputError(folder, "folder not found")
    same = images_dir.resolve() == labels_dir.resolve()
    image_files = [p for p in _files(images_dir) if not (same and _LABEL_RE.search(p.stem))]
    label_files = [p for p in _files(labels_dir) if not same or _LABEL_RE.search(p.stem)]
    if not image_files:
        raise InputError(images_dir, "no images found")

    labels_by_key: dict[str, list[Path]] = {}
    for path in label_files:
        labels_by_key.setdefault(pair_key(path.stem, True), []).append(path)
        if path.stem.lower() != pair_key(path.stem, True):  # exact stem too
            labels_by_key.setdefault(path.stem.lower(), []).append(path)

    pairs: list[Pair] = []
    unpaired_images: list[Path] = []
    for image in image_files:
        candidates = labels_by_key.get(image.stem.lower()) or labels_by_key.get(
            pair_key(image.stem, False)
        )
        if not candidates:
            unpaired_images.append(image)
        elif len(set(candidates)) > 1:
            names = ", ".join(sorted(p.name for p in set(candidates)))
            raise InputError(image, f"several labels match this image ({names})")
        else:
            pairs.append(Pair(image, candidates[0]))
    used = {p.label for p in pairs}
    unpaired_labels = [p for p in label_files if p not in used]
    if unpaired_images or unpaired_labels:
        parts = []
        if unpaired_images:
            parts.append(f"images without a label: {_listing(unpaired_images)}")
        if unpaired_labels:
            parts.append(f"labels without an image: {_listing(unpaired_labels)}")
        raise AcsegError(f"cannot pair {images_dir} with {labels_dir}: " + "; ".join(parts))
    labels_taken: dict[Path, Path] = {}
    for pair in pairs:
        if pair.label in labels_taken:
            raise InputError(
                pair.label,
                f"is the label of both {labels_taken[pair.label].name} and {pair.image.name}",
            )
        labels_taken[pair.label] = pair.image
    return pairs


def check_pairs(pairs: Sequence[Pair], fmt: LabelFormat) -> np.ndarray:
    """Check sizes match and count labelled pixels per class (also the number present).

    Returns per-class pixel counts (length C; open-ended index labels: max value + 1).
    Reads every label once, so a broken label fails before any clustering work.
    """
    counts = np.zeros(fmt.n_classes or 0, dtype=np.int64)
    for pair in pairs:
        with open_raster(pair.image) as image, open_raster(pair.label) as label:
            isize = (image.info.width, image.info.height)
            lsize = (label.info.width, label.info.height)
        if isize != lsize:
            raise InputError(
                pair.label,
                f"label is {lsize[0]}×{lsize[1]} but image {pair.image.name} is "
                f"{isize[0]}×{isize[1]}",
            )
        for strip in strips(lsize[0], lsize[1]):
            classes = fmt.read(pair.label, strip)
            valid = classes[classes >= 0]
            if valid.size:
                found = np.bincount(valid, minlength=len(counts))
                if len(found) > len(counts):
                    counts = np.pad(counts, (0, len(found) - len(counts)))
                counts += found
    return counts


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _listing(paths: Sequence[Path], limit: int = 10) -> str:
    names = [p.name for p in paths[:limit]]
    more = f" (+{len(paths) - limit} more)" if len(paths) > limit else ""
    return ", ".join(names) + more


def strips(width: int, height: int) -> Iterator[tuple[int, int, int, int]]:
    for row in range(0, height, STRIP_ROWS):
        yield (0, row, width, min(STRIP_ROWS, height - row))


__all__ = ["Pair", "check_pairs", "pair_images", "pair_key", "strips"]

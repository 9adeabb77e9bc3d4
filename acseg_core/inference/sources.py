"""Inputs of a prediction run, streamed one path at a time (a folder is one sorted
listing, a list file is read line by line), so a hundred thousand files cost nothing
up front; unusable entries come as :class:`InputError` values, not exceptions."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from acseg_core.errors import InputError, missing_reason, os_reason
from acseg_core.inference.naming import is_acseg_output, looks_like_output
from acseg_core.io.raster import IMAGE_SUFFIXES


def iter_sources(
    paths: Sequence[Path], list_file: Path | None = None, out_dir: Path | None = None
) -> Iterator[Path | InputError]:
    """Input images one at a time; unusable entries come as :class:`InputError`.

    Folders are listed once, sorted, not recursively; hidden files (temp files of
    atomic writes among them) and non-regular files (FIFOs...) are left out, a symlink
    loop is named and skipped, and so are this command's own outputs
    (named like one *and* marked as acseg's) when the folder is ``out_dir`` (a rerun
    with ``--out`` = the input folder): a user's image of such a name stays an input.
    A list file holds one path per line (blank lines and ``#`` comments ignored),
    relative paths being relative to the list file's folder.
    """
    out_real = out_dir.resolve() if out_dir is not None else None
    for path in paths:
        if path.is_dir():
            try:
                names = sorted(_image_entries(path))
            except OSError as exc:
                yield InputError(path, f"cannot list the folder ({os_reason(exc)})")
                continue
            in_out_dir = out_real is not None and path.resolve() == out_real
            kept = broken = 0
            for name, usable in names:
                if not usable:  # a symlink loop: named and skipped, the rest predicted
                    broken += 1
                    yield InputError(path / name, missing_reason(path / name))
                    continue
                if in_out_dir and looks_like_output(Path(name)) and is_acseg_output(path / name):
                    continue
                kept += 1
                yield path / name
            if not kept and not broken:
                yield InputError(path, "no images in this folder")
        elif path.exists():
            yield path
        else:
            yield InputError(path, missing_reason(path, "file or folder"))
    if list_file is not None:
        yield from _iter_list_file(list_file)


def _image_entries(folder: Path) -> Iterator[tuple[str, bool]]:
    """(name, True) for the image-named regular files of ``folder``, (name, False) for
    an entry that cannot be followed (a symlink loop); FIFOs, other non-regular files
    and dangling links are left out."""

    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if (
                name.startswith(".")
                or Path(name).suffix.lower() not in IMAGE_SUFFIXES
                or Path(name).stem.endswith("_label")
            ):
                continue
            try:
                regular = entry.is_file()
            except OSError:  # ELOOP: DirEntry.is_file raises where Path.is_file says False
                yield name, False
                continue
            if regular:
                yield name, True


def count_sources(paths: Sequence[Path], list_file: Path | None = None) -> int:
    """How many entries :func:`iter_sources` will yield (one cheap pass, nothing kept)."""
    return sum(1 for _ in iter_sources(paths, list_file))


def _iter_list_file(list_file: Path) -> Iterator[Path | InputError]:
    try:
        with open(list_file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                path = Path(entry)
                if not path.is_absolute():
                    path = list_file.parent / path
                if path.is_file():
                    yield path
                else:
                    yield InputError(path, f"not found (line {number} of {list_file})")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(list_file, f"cannot read the list file ({exc})") from exc


__all__ = ["count_sources", "iter_sources"]

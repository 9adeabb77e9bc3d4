"""The files a project owns beside its JSON, written by a save before the JSON itself:
one compressed layer per edited image (``<stem>.edits/``) and the learnt model
(``<stem>.models/``). Every file gets a new name, so a failed save leaves the earlier
files (and the earlier JSON) as they were; the caller removes what it wrote on
failure and what was superseded on success."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acseg_core.labelling import project_file
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.project_file import ImageEntry
from acseg_core.model.checkpoint import LoadedModel, save_checkpoint

UNLOADED: Any = object()  # an edit layer still on disk (never loaded this session)


def write_edits(
    images: Sequence[ImageEntry],
    layers: dict[Path, Any],
    saved_versions: dict[Path, int],
    target: Path,
    moving: bool,
    written: list[Path],
) -> dict[Path, Path | None]:
    """New files for the changed edit layers (all of them on Save As): image → file
    (None: its edits are gone). ``layers`` maps each image to its layer, None (removed)
    or :data:`UNLOADED`; every file written is appended to ``written``."""
    edits_dir = project_file.edits_dir(target)
    new_refs: dict[Path, Path | None] = {}
    for entry in images:
        layer = layers.get(entry.path, UNLOADED)
        changed = layer is not UNLOADED and (
            layer is None or layer.version != saved_versions.get(entry.path)
        )
        if not changed and not (moving and entry.edits_file is not None):
            continue
        if layer is UNLOADED:  # Save As: carry stored edits to the new place
            layer = EditLayer.load(entry.edits_file)  # type: ignore[arg-type]
        if layer is None or layer.is_empty:
            new_refs[entry.path] = None
            continue
        file = edits_dir / f"{_safe_stem(entry.path)}-{uuid.uuid4().hex[:10]}.npz"
        written.append(file)
        layer.save(file)
        new_refs[entry.path] = file
    return new_refs


def write_learnt(
    pending: LoadedModel | None, stored: Path | None, target: Path, written: list[Path]
) -> Path | None:
    """The learnt model's file beside ``target``: ``pending`` written anew, else (Save
    As) a copy of ``stored``; None when there is none."""
    models = project_file.models_dir(target)
    if pending is not None:
        file = models / f"learnt-{pending.digest[:12]}-{uuid.uuid4().hex[:6]}.pt"
        written.append(file)
        save_checkpoint(file, pending.model, pending.config, meta=pending.meta)
        return file
    if stored is None:
        return None
    file = models / f"{stored.stem}-{uuid.uuid4().hex[:6]}.pt"
    written.append(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stored, file)
    return file


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:60] or "image"


__all__ = ["UNLOADED", "write_edits", "write_learnt"]

"""The project: images, model, learnt model, classes, hand edits, cached maps, settings.

A project is a JSON file (``*.acseg``, :mod:`.project_file`). Every path in it is
stored relative to the project file, so a folder holding the project and its images
can be moved or copied whole. Beside it live what it owns: ``<stem>.edits/`` (one
compressed sparse layer per image, :class:`~acseg_core.labelling.edits.EditLayer`),
``<stem>.models/`` (the model learnt from the edits) and ``<stem>.cache/`` (maps
predicted for its images; a temporary folder while the project is untitled, moved
beside the file by the first save).

The :class:`Project` is the one copy of this state: the app's models are views over it
and change it through its methods, so :attr:`Project.dirty` is always right and a
save needs no sync step. Display settings are view state: kept and saved, but a
change of them alone is no unsaved work.

Loading validates the file and raises one line naming the file and the problem;
images that have gone missing are not an error — :meth:`Project.missing_images` lists
them and :meth:`Project.relink` / :meth:`Project.relink_folder` repair them.

Saving is atomic and transactional: changed edit layers and a new learnt model are
written to *new* files, then the JSON is replaced, then superseded files are removed.
A failed save raises, removes what it wrote and leaves the project :attr:`dirty`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError, os_reason
from acseg_core.io.atomic import write_text_atomic
from acseg_core.io.normalise import Normalisation
from acseg_core.io.raster import open_raster
from acseg_core.labelling import project_file
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.project_file import (
    FORMAT,
    SCHEMA_VERSION,
    SUFFIX,
    ImageEntry,
    ProjectFields,
    absolute,
)
from acseg_core.labelling.project_store import UNLOADED, write_edits, write_learnt
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.config import ModelConfig


class Project:
    """In-memory project; change it through methods so :attr:`dirty` stays true."""

    def __init__(self, path: str | Path | None = None, fields: ProjectFields | None = None):
        self._path = absolute(Path(path)) if path is not None else None
        self._fields = fields or ProjectFields()
        self._layers: dict[Path, EditLayer | None] = {}  # loaded or set edit layers by image
        self._saved_versions: dict[Path, int] = {}
        self._learnt_pending: LoadedModel | None = None  # learnt, not saved yet
        self._learnt_changed = False
        self._temp_cache: Path | None = None
        self._dirty = bool(self._fields.warnings)  # a repaired file is worth saving

    # -- state -----------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def edits_dir(self) -> Path | None:
        return project_file.edits_dir(self._path) if self._path else None

    @property
    def warnings(self) -> list[str]:
        """Non-fatal problems found by :meth:`load`."""
        return list(self._fields.warnings)

    @property
    def dirty(self) -> bool:
        """Unsaved changes, including edits painted into a layer since the last save."""
        if self._dirty:
            return True
        return any(
            layer is not None and layer.version != self._saved_versions.get(key)
            for key, layer in self._layers.items()
        )

    def mark_dirty(self) -> None:
        self._dirty = True

    def mark_clean(self) -> None:
        """Take the current state as the saved one (a bundled sample opened: nothing the
        user did)."""
        self._dirty = False
        for key, layer in self._layers.items():
            if layer is not None:
                self._saved_versions[key] = layer.version

    @property
    def has_work(self) -> bool:
        """Whether losing this project loses something a user made: a model, classes,
        hand edits, a learnt model (images alone can be opened again)."""
        edited = any(
            (layer is not None and not layer.is_empty) for layer in self._layers.values()
        ) or any(e.edits_file is not None for e in self._fields.images)
        return bool(
            self._fields.model or self._fields.class_map.classes or edited or self.learnt
        )

    @property
    def images(self) -> tuple[ImageEntry, ...]:
        return tuple(self._fields.images)

    @property
    def image_paths(self) -> list[Path]:
        return [e.path for e in self._fields.images]

    @property
    def model(self) -> Path | None:
        """The unsupervised model (what a learn starts from)."""
        return self._fields.model

    @property
    def learnt(self) -> Path | LoadedModel | None:
        """The model learnt from the hand edits: a model not saved yet, else its file."""
        return self._learnt_pending or self._fields.learnt

    @property
    def normalisation(self) -> Normalisation | None:
        return self._fields.normalisation

    @property
    def class_map(self) -> ClassMap:
        return self._fields.class_map

    @property
    def display(self) -> dict[str, Any]:
        """Display settings owned by the app (a copy; change with :meth:`set_display`)."""
        return json.loads(json.dumps(self._fields.display))

    # -- changes ---------------------------------------------------------------------
    def set_class_map(self, class_map: ClassMap) -> None:
        if class_map != self._fields.class_map:
            self._fields.class_map = class_map
            self._dirty = True

    def set_display(self, settings: dict[str, Any]) -> None:
        """Replace the display settings (view state: saved, never dirtying alone)."""
        try:
            self._fields.display = json.loads(json.dumps(settings))
        except (TypeError, ValueError) as exc:
            raise AcsegError(f"display settings must be JSON data ({exc})") from exc

    def set_model(self, path: str | Path | None, config: ModelConfig | None = None) -> None:
        """Use another unsupervised model (hand edits stay; cached maps are keyed by model,
        so another model's are never shown; a learnt model of the previous one goes).
        With ``config``, normalisation is copied and the class map resized to K."""
        new = absolute(Path(path)) if path is not None else None
        if new == self._fields.model and config is None:
            return
        self._fields.model = new
        if config is not None:
            self._fields.normalisation = config.normalisation
            self._fields.class_map = self._fields.class_map.with_clusters(config.clusters)
        self.set_learnt(None)
        self._dirty = True

    def set_learnt(self, fitted: LoadedModel | None) -> None:
        """The model learnt from the edits (None: back to the unsupervised model); its
        file is written by the next save."""
        if fitted is None and self.learnt is None:
            return
        self._learnt_pending = fitted
        self._learnt_changed = True
        self._dirty = True

    def set_images(self, paths: Iterable[str | Path]) -> None:
        """Hold exactly ``paths``, in that order; images that stay keep their edits and
        cached maps."""
        wanted = [absolute(Path(p)) for p in paths]
        for entry in list(self._fields.images):
            if entry.path not in wanted:
                self.remove_image(entry)
        self.add_images(wanted)
        order = {path: i for i, path in enumerate(wanted)}
        ordered = sorted(self._fields.images, key=lambda e: order[e.path])
        if ordered != self._fields.images:
            self._fields.images = ordered
            self._dirty = True

    def add_images(self, paths: Iterable[str | Path]) -> list[ImageEntry]:
        """Append images not already in the project; returns the new entries."""
        known = {e.path for e in self._fields.images}
        added = []
        for p in paths:
            path = absolute(Path(p))
            if path not in known:
                known.add(path)
                entry = ImageEntry(path)
                self._fields.images.append(entry)
                added.append(entry)
        if added:
            self._dirty = True
        return added

    def remove_image(self, image: Any) -> None:
        entry = self.image(image)
        self._fields.images.remove(entry)
        self._layers.pop(entry.path, None)
        self._dirty = True

    def image(self, image: Any) -> ImageEntry:
        """The entry for an index, a path or an entry; AcsegError when not in the project."""
        images = self._fields.images
        if isinstance(image, ImageEntry):
            if image in images:
                return image
            image = image.path
        if isinstance(image, int) and not isinstance(image, bool):
            if 0 <= image < len(images):
                return images[image]
            raise AcsegError(f"no image number {image} in the project")
        path = absolute(Path(image))
        for entry in images:
            if entry.path == path:
                return entry
        raise AcsegError(f"{path}: not an image of this project")

    # -- cached maps -------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        """Where maps of this project's images are cached: ``<stem>.cache/`` beside the
        file, or a temporary folder while untitled (moved beside the file on save)."""
        if self._path is not None:
            return project_file.cache_dir(self._path)
        if self._temp_cache is None:
            self._temp_cache = Path(tempfile.mkdtemp(prefix="acseg-cache-"))
        return self._temp_cache

    def features_dir(self) -> Path:
        """Where the feature bank's per-image stores are cached (inside the cache folder,
        so they move and go with it)."""
        return self.cache_dir / "features"

    def set_prediction(self, image: Any, key: str, path: str | Path | None) -> None:
        """Remember (or forget, with None) the cached map of an image made as ``key``."""
        entry = self.image(image)
        if path is None:
            entry.predictions.pop(key, None)
        else:
            entry.predictions[key] = absolute(Path(path))
        self._dirty = True

    def prediction(self, image: Any, key: str) -> Path | None:
        """The cached map of an image made as ``key``, if its file is still there."""
        try:
            file = self.image(image).predictions.get(key)
        except AcsegError:
            return None
        return file if file is not None and file.is_file() else None

    def close(self) -> None:
        """Drop the temporary cache folder of an untitled project (nothing else)."""
        if self._temp_cache is not None:
            shutil.rmtree(self._temp_cache, ignore_errors=True)
            self._temp_cache = None

    # -- missing images ------------------------------------------------------------------
    def missing_images(self) -> list[ImageEntry]:
        return [e for e in self._fields.images if not e.exists]

    def relink(self, old: Any, new: str | Path) -> None:
        """Point an image entry at its new location (edits and prediction stay attached)."""
        entry = self.image(old)
        new_path = absolute(Path(new))
        if not new_path.is_file():
            raise InputError(new_path, "file not found")
        if any(e.path == new_path and e is not entry for e in self._fields.images):
            raise InputError(new_path, "already an image of this project")
        layer = self._layers.pop(entry.path, None)
        version = self._saved_versions.pop(entry.path, None)
        entry.path = new_path
        if layer is not None:
            self._layers[new_path] = layer
        if version is not None:
            self._saved_versions[new_path] = version
        self._dirty = True

    def relink_folder(self, folder: str | Path) -> int:
        """Relink every missing image to a file of the same name in ``folder``; returns
        how many were found."""
        folder = Path(folder)
        found = 0
        for entry in self.missing_images():
            candidate = folder / entry.path.name
            if candidate.is_file() and not any(
                e.path == absolute(candidate) for e in self._fields.images
            ):
                self.relink(entry, candidate)
                found += 1
        return found

    # -- hand edits ------------------------------------------------------------------------
    def get_edits(self, image: Any, create: bool = False) -> EditLayer | None:
        """The image's edit layer (loaded once, then shared), or None when it has none.

        With ``create`` an empty layer of the image's size is made (the image is opened
        for its size). Paint into the returned layer; :attr:`dirty` follows it.
        """
        entry = self.image(image)
        if entry.path in self._layers and self._layers[entry.path] is not None:
            return self._layers[entry.path]
        layer = None
        if entry.edits_file is not None and entry.path not in self._layers:
            layer = EditLayer.load(entry.edits_file)
            self._layers[entry.path] = layer
            self._saved_versions[entry.path] = layer.version
        if layer is None and create:
            with open_raster(entry.path) as raster:
                layer = EditLayer(raster.info.height, raster.info.width)
            self._layers[entry.path] = layer
            self._saved_versions[entry.path] = layer.version
        return layer

    def set_edits(self, image: Any, layer: EditLayer | None) -> None:
        """Replace an image's edit layer (None removes its edits at the next save)."""
        entry = self.image(image)
        self._layers[entry.path] = layer
        self._saved_versions.pop(entry.path, None)
        self._dirty = True

    # -- save / load -----------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        """Write the project (and changed edit layers, a new learnt model) atomically;
        ``path`` = Save As. On failure: raises AcsegError, deletes the files it wrote,
        stays dirty."""
        target = absolute(Path(path)) if path is not None else self._path
        if target is None:
            raise AcsegError("the project has no file yet: choose where to save it")
        moving = target != self._path
        self._adopt_temp_cache(project_file.cache_dir(target))
        written: list[Path] = []
        try:
            layers = {e.path: self._layers.get(e.path, UNLOADED) for e in self._fields.images}
            new_refs = write_edits(self._fields.images, layers, self._saved_versions, target,
                                   moving, written)  # fmt: skip
            learnt = self._fields.learnt
            if self._learnt_changed:
                learnt = write_learnt(self._learnt_pending, None, target, written)
            elif moving and learnt is not None:  # Save As: a copy beside the new file
                learnt = write_learnt(None, learnt, target, written)
            refs = {e.path: new_refs.get(e.path, e.edits_file) for e in self._fields.images}
            document = project_file.to_json(self._fields, target, refs, learnt)
            text = json.dumps(document, indent=2, ensure_ascii=False)
            write_text_atomic(target, text + "\n")
        except (OSError, AcsegError) as exc:
            for file in written:
                with contextlib.suppress(OSError):
                    file.unlink()
            if isinstance(exc, AcsegError):
                raise
            raise InputError(target, f"cannot save the project ({os_reason(exc)})") from exc
        self._commit(target, moving, new_refs, learnt)
        return target

    def _commit(
        self, target: Path, moving: bool, new_refs: dict[Path, Any], learnt: Path | None
    ) -> None:
        """After a successful save: adopt the new files, drop the superseded ones."""
        superseded = []
        for entry in self._fields.images:
            if entry.path in new_refs:
                old = entry.edits_file
                if old is not None and not moving and old != new_refs[entry.path]:
                    superseded.append(old)
                entry.edits_file = new_refs[entry.path]
        old_learnt = self._fields.learnt
        if old_learnt is not None and not moving and old_learnt != learnt:
            superseded.append(old_learnt)
        self._fields.learnt = learnt
        self._learnt_pending, self._learnt_changed = None, False
        for key, layer in self._layers.items():
            if layer is not None:
                self._saved_versions[key] = layer.version
        self._layers = {k: v for k, v in self._layers.items() if v is not None}
        self._path = target
        self._dirty = False
        owned = (project_file.edits_dir(target), project_file.models_dir(target))
        for old in superseded:
            if any(project_file.inside(old, folder) for folder in owned):  # never elsewhere
                with contextlib.suppress(OSError):
                    old.unlink()

    def _adopt_temp_cache(self, cache: Path) -> None:
        """Move maps cached while untitled into ``cache`` (beside the file being saved);
        a map that cannot move is only a cache miss."""
        temp, self._temp_cache = self._temp_cache, None
        if temp is None:
            return
        for entry in self._fields.images:
            for key, file in list(entry.predictions.items()):
                if file.parent != temp or not file.is_file():
                    continue
                with contextlib.suppress(OSError):
                    cache.mkdir(parents=True, exist_ok=True)
                    entry.predictions[key] = Path(shutil.move(str(file), str(cache / file.name)))
        shutil.rmtree(temp, ignore_errors=True)

    @classmethod
    def load(cls, path: str | Path) -> Project:
        """Read and validate a project file; InputError names the file and the problem."""
        path = absolute(Path(path))
        return cls(path, project_file.read(path))


__all__ = ["FORMAT", "SCHEMA_VERSION", "SUFFIX", "ImageEntry", "Project"]

"""The project file: images, model, classes, hand edits, display settings.

A project is a JSON file (``*.acseg``) with a ``schema_version``. Every path in it is
stored relative to the project file, so a folder holding the project and its images
can be moved or copied whole. Hand edits live beside it in ``<stem>.edits/`` as one
compressed sparse layer per image (:class:`~acseg_core.labelling.edits.EditLayer`).

Loading validates the file and raises one line naming the file and the problem;
images that have gone missing are not an error — :meth:`Project.missing_images` lists
them and :meth:`Project.relink` / :meth:`Project.relink_folder` repair them.

Saving is atomic and transactional: changed edit layers are written to *new* files,
then the JSON is replaced, then superseded edit files are removed. A failed save
raises, removes what it wrote and leaves the project :attr:`~Project.dirty`.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError, os_reason
from acseg_core.io.atomic import write_text_atomic
from acseg_core.io.files import require_regular_file
from acseg_core.io.normalise import Normalisation
from acseg_core.labelling import project_file
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.project_file import FORMAT, SCHEMA_VERSION, SUFFIX, absolute
from acseg_core.model.config import ModelConfig

_UNLOADED: Any = object()  # an edit layer still on disk


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


class Project:
    """In-memory project; change it through methods so :attr:`dirty` stays true."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._path = absolute(Path(path)) if path is not None else None
        self._images: list[ImageEntry] = []
        self._model: Path | None = None
        self._normalisation: Normalisation | None = None
        self._class_map = ClassMap.empty(0)
        self._display: dict[str, Any] = {}
        self._layers: dict[Path, EditLayer | None] = {}  # loaded or set edit layers by image
        self._saved_versions: dict[Path, int] = {}
        self._dirty = False
        self.warnings: list[str] = []  # non-fatal problems found by load()

    # -- state -----------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def edits_dir(self) -> Path | None:
        return _edits_dir(self._path) if self._path else None

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

    @property
    def images(self) -> tuple[ImageEntry, ...]:
        return tuple(self._images)

    @property
    def model(self) -> Path | None:
        return self._model

    @property
    def normalisation(self) -> Normalisation | None:
        return self._normalisation

    @property
    def class_map(self) -> ClassMap:
        return self._class_map

    @property
    def display(self) -> dict[str, Any]:
        """Display settings owned by the app (a copy; change with :meth:`set_display`)."""
        return json.loads(json.dumps(self._display))

    # -- changes ---------------------------------------------------------------------
    def set_class_map(self, class_map: ClassMap) -> None:
        if class_map != self._class_map:
            self._class_map = class_map
            self._dirty = True

    def set_display(self, settings: dict[str, Any]) -> None:
        try:
            encoded = json.loads(json.dumps(settings))
        except (TypeError, ValueError) as exc:
            raise AcsegError(f"display settings must be JSON data ({exc})") from exc
        if encoded != self._display:
            self._display = encoded
            self._dirty = True

    def set_model(self, path: str | Path | None, config: ModelConfig | None = None) -> None:
        """Use another model (hand edits stay; cached maps are keyed by model, so another
        model's are never shown). With ``config``, normalisation is copied and the class
        map resized to K."""
        self._model = absolute(Path(path)) if path is not None else None
        if config is not None:
            self._normalisation = config.normalisation
            self._class_map = self._class_map.with_clusters(config.clusters)
        self._dirty = True

    def sync(
        self,
        images: Iterable[str | Path],
        model: str | Path | None,
        config: ModelConfig | None,
        class_map: ClassMap,
        display: dict[str, Any],
    ) -> None:
        """Make the project hold what a front-end shows: exactly ``images``, in that
        order (entries of images that stay keep their edits and cached maps), the model
        (with its config: normalisation and K), the class map and the display settings."""
        wanted = [absolute(Path(p)) for p in images]
        for entry in list(self._images):
            if entry.path not in wanted:
                self.remove_image(entry)
        self.add_images(wanted)
        order = {path: i for i, path in enumerate(wanted)}
        ordered = sorted(self._images, key=lambda e: order[e.path])
        if ordered != self._images:
            self._images = ordered
            self._dirty = True
        model_path = absolute(Path(model)) if model is not None else None
        if model_path != self._model:
            self.set_model(model_path, config)
        self.set_class_map(class_map)
        self.set_display(display)

    def add_images(self, paths: Iterable[str | Path]) -> list[ImageEntry]:
        """Append images not already in the project; returns the new entries."""
        known = {e.path for e in self._images}
        added = []
        for p in paths:
            path = absolute(Path(p))
            if path not in known:
                known.add(path)
                entry = ImageEntry(path)
                self._images.append(entry)
                added.append(entry)
        if added:
            self._dirty = True
        return added

    def remove_image(self, image: Any) -> None:
        entry = self.image(image)
        self._images.remove(entry)
        self._layers.pop(entry.path, None)
        self._dirty = True

    def image(self, image: Any) -> ImageEntry:
        """The entry for an index, a path or an entry; AcsegError when not in the project."""
        if isinstance(image, ImageEntry):
            if image in self._images:
                return image
            image = image.path
        if isinstance(image, int) and not isinstance(image, bool):
            if 0 <= image < len(self._images):
                return self._images[image]
            raise AcsegError(f"no image number {image} in the project")
        path = absolute(Path(image))
        for entry in self._images:
            if entry.path == path:
                return entry
        raise AcsegError(f"{path}: not an image of this project")

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

    # -- missing images ------------------------------------------------------------------
    def missing_images(self) -> list[ImageEntry]:
        return [e for e in self._images if not e.exists]

    def relink(self, old: Any, new: str | Path) -> None:
        """Point an image entry at its new location (edits and prediction stay attached)."""
        entry = self.image(old)
        new_path = absolute(Path(new))
        if not new_path.is_file():
            raise InputError(new_path, "file not found")
        if any(e.path == new_path and e is not entry for e in self._images):
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
            if candidate.is_file() and not any(e.path == absolute(candidate) for e in self._images):
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
            from acseg_core.io.raster import open_raster

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
        """Write the project (and changed edit layers) atomically; ``path`` = Save As.

        On failure: raises AcsegError, deletes the edit files it wrote, stays dirty.
        """
        target = absolute(Path(path)) if path is not None else self._path
        if target is None:
            raise AcsegError("the project has no file yet: choose where to save it")
        moving = target != self._path
        edits_dir = _edits_dir(target)
        written: list[Path] = []
        new_refs: dict[Path, Path | None] = {}
        try:
            for entry in self._images:
                key = entry.path
                layer = self._layers.get(key, _UNLOADED)
                changed = layer is not _UNLOADED and (
                    layer is None or layer.version != self._saved_versions.get(key)
                )
                if not changed and not (moving and entry.edits_file is not None):
                    continue
                if layer is _UNLOADED:  # Save As: carry stored edits to the new place
                    layer = EditLayer.load(entry.edits_file)  # type: ignore[arg-type]
                if layer is None or layer.is_empty:
                    new_refs[key] = None
                    continue
                file = edits_dir / f"{_safe_stem(entry.path)}-{uuid.uuid4().hex[:10]}.npz"
                written.append(file)
                layer.save(file)
                new_refs[key] = file
            refs = {e.path: new_refs.get(e.path, e.edits_file) for e in self._images}
            document = project_file.to_json(self, target, refs)
            text = json.dumps(document, indent=2, ensure_ascii=False)
            write_text_atomic(target, text + "\n")
        except (OSError, AcsegError) as exc:
            for file in written:
                with contextlib.suppress(OSError):
                    file.unlink()
            if isinstance(exc, AcsegError):
                raise
            raise InputError(target, f"cannot save the project ({os_reason(exc)})") from exc

        superseded = []
        for entry in self._images:
            if entry.path in new_refs:
                old = entry.edits_file
                if old is not None and not moving and old != new_refs[entry.path]:
                    superseded.append(old)
                entry.edits_file = new_refs[entry.path]
        for key, layer in self._layers.items():
            if layer is not None:
                self._saved_versions[key] = layer.version
        self._layers = {k: v for k, v in self._layers.items() if v is not None}
        self._path = target
        self._dirty = False
        for old in superseded:
            if project_file.inside(old, _edits_dir(target)):  # never a file elsewhere
                with contextlib.suppress(OSError):
                    old.unlink()
        return target

    @classmethod
    def load(cls, path: str | Path) -> Project:
        """Read and validate a project file; InputError names the file and the problem."""
        path = absolute(Path(path))
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
        project = cls(path)
        try:
            project_file.from_json(project, data)
        except project_file.Invalid as exc:
            raise InputError(path, str(exc)) from None
        except RecursionError as exc:
            raise InputError(path, "not a project file (nested too deeply)") from exc
        return project


def _edits_dir(project_file: Path) -> Path:
    return project_file.with_name(project_file.stem + ".edits")


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:60] or "image"


__all__ = ["FORMAT", "SCHEMA_VERSION", "SUFFIX", "ImageEntry", "Project"]

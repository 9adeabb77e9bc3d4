"""The first-start experience: the bundled sample image, its small model and named
classes, a few strokes and the model learnt from them (water named water).

``resources/sample_model.pt`` and ``resources/sample_classes.json`` are made by
``python -m resources.make_sample_model``, ``resources/sample_edits.npz`` and
``resources/sample_learnt.pt`` by ``python -m resources.make_sample_strokes`` (``make
sample`` runs both); without them the sample opens with less (a plain image at worst).
"""

from __future__ import annotations

import json

from acseg_core.errors import AcsegError
from acseg_core.io.raster import probe
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.edits import EditLayer
from app.controllers.learning import LearnController
from app.controllers.model import ModelController
from app.models import ClassesModel, DocumentModel, ImageListModel
from resources import RESOURCES, sample_image_path

SAMPLE_MODEL = RESOURCES / "sample_model.pt"
SAMPLE_CLASSES = RESOURCES / "sample_classes.json"
SAMPLE_EDITS = RESOURCES / "sample_edits.npz"
SAMPLE_LEARNT = RESOURCES / "sample_learnt.pt"


def open_sample(
    images: ImageListModel,
    models: ModelController,
    classes: ClassesModel,
    document: DocumentModel,
    with_model: bool = True,
    learning: LearnController | None = None,
) -> None:
    """Show the sample; with its model and class map when they are bundled, and its
    strokes with the model learnt from them (through ``learning``, as a project's)."""
    images.set_images([sample_image_path()])
    if not with_model or not SAMPLE_MODEL.is_file():
        return
    if not models.load(SAMPLE_MODEL, device="cpu", report=False):
        document.mark_clean()
        return
    try:
        class_map = ClassMap.from_dict(json.loads(SAMPLE_CLASSES.read_text()))
    except (OSError, ValueError, AcsegError):
        document.mark_clean()
        return
    classes.set_class_map(class_map.with_clusters(classes.clusters))
    if learning is not None:
        show_strokes(document, learning)
    document.mark_clean()  # nothing the user did: no "unsaved changes"


def show_strokes(document: DocumentModel, learning: LearnController) -> None:
    """The sample's strokes as its hand edits and the model learnt from them over the
    sample model (left out, with the plain model shown, if either does not fit)."""
    if not (SAMPLE_EDITS.is_file() and SAMPLE_LEARNT.is_file()):
        return
    project = document.project
    try:
        layer = EditLayer.load(SAMPLE_EDITS)
    except AcsegError:
        return
    try:
        info = probe(sample_image_path())
    except AcsegError:
        return
    if layer.shape != (info.height, info.width):
        return
    project.set_edits(project.images[0], layer)
    problems: list[str] = []
    if learning.restore(SAMPLE_LEARNT, problems) and learning.learnt is not None:
        project.set_learnt(learning.learnt)

"""The first-start experience: the bundled sample image, its small model and named classes.

``resources/sample_model.pt`` and ``resources/sample_classes.json`` are made by
``python -m resources.make_sample_model``; without them the sample opens as a plain
image.
"""

from __future__ import annotations

import json

from acseg_core.errors import AcsegError
from acseg_core.labelling.classes import ClassMap
from app.controllers.model import ModelController
from app.models import ClassesModel, DocumentModel, ImageListModel
from resources import RESOURCES, sample_image_path

SAMPLE_MODEL = RESOURCES / "sample_model.pt"
SAMPLE_CLASSES = RESOURCES / "sample_classes.json"


def open_sample(
    images: ImageListModel,
    models: ModelController,
    classes: ClassesModel,
    document: DocumentModel,
    with_model: bool = True,
) -> None:
    """Show the sample; with its model and class map when they are bundled."""
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
    document.mark_clean()  # nothing the user did: no "unsaved changes"

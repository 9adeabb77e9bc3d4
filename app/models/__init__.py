"""Observable application state (QObjects with signals); views only listen."""

from app.models.classes import ClassesModel
from app.models.display import DISPLAY_PRESETS, DisplayModel, OverlayModel
from app.models.document import DocumentModel
from app.models.images import ImageListModel
from app.models.session import SessionModel

__all__ = [
    "DISPLAY_PRESETS",
    "ClassesModel",
    "DisplayModel",
    "DocumentModel",
    "ImageListModel",
    "OverlayModel",
    "SessionModel",
]

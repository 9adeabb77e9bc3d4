"""Observable application state: small QObjects with signals, views over the core
:class:`~acseg_core.labelling.project.Project` that :class:`DocumentModel` holds."""

from app.models.classes import ClassesModel
from app.models.display import DISPLAY_PRESETS, DisplayModel, OverlayModel
from app.models.document import DocumentModel
from app.models.images import ImageListModel
from app.models.session import SessionModel
from app.models.view_state import ViewState

__all__ = [
    "DISPLAY_PRESETS",
    "ClassesModel",
    "DisplayModel",
    "DocumentModel",
    "ImageListModel",
    "OverlayModel",
    "SessionModel",
    "ViewState",
]

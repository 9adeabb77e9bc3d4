"""Opening images the user chose: files and folders, the bundled sample.

Unreadable files in a chosen folder are skipped with one notice naming them (as
``acseg-core predict`` skips them); only when nothing usable is left is it an error.
The sample is a first impression, not work: opening the user's own images replaces
it, its model and its class map, so nothing made for the sample leaks into theirs.
"""

from __future__ import annotations

from pathlib import Path

from acseg_core.errors import AcsegError
from acseg_core.io.raster import usable_images
from app.controllers.model import ModelController
from app.controllers.project import ProjectController
from app.dialogs import show_error
from app.models import ClassesModel, DocumentModel, ImageListModel
from app.notices import Notices
from app.sample import open_sample


def skipped_notice(problems: list[str]) -> str:
    """One notice for the files left out of an opening."""
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"skipped {problems[0]}{more}"


class ImageOpener:
    def __init__(
        self,
        images: ImageListModel,
        project: ProjectController,
        models: ModelController,
        classes: ClassesModel,
        document: DocumentModel,
        notices: Notices,
    ) -> None:
        self.images, self.project, self.models = images, project, models
        self.classes, self.document, self.notices = classes, document, notices
        self.showing_sample = False
        project.cleared.connect(self._not_sample)

    def _not_sample(self) -> None:
        self.showing_sample = False

    def open_sample(self, with_model: bool = True) -> None:
        open_sample(self.images, self.models, self.classes, self.document, with_model,
                    self.project.learning)  # fmt: skip
        self.showing_sample = True

    def usable(self, paths: list[Path]) -> tuple[list[Path], list[str]]:
        """Images among files/folders that open, and one line per file that does not."""
        return usable_images(paths)

    def open(self, paths: list[Path]) -> bool:
        """Add the usable images (replacing the sample); a bad choice is a dialog."""
        try:
            images, problems = self.usable(paths)
        except AcsegError as exc:
            show_error(None, "Cannot open", str(exc))
            return False
        if not images:  # the reason itself when there is one
            text = f"{', '.join(map(str, paths))}: no usable images"
            if problems:
                text = problems[0] if len(problems) == 1 else f"{text} ({problems[0]}, …)"
            show_error(None, "Cannot open", text)
            return False
        if problems:
            self.notices.add(skipped_notice(problems))
        if self.showing_sample:
            self.project.reset()
        self.images.add_images(images)
        return True

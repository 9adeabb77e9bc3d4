"""Undo of a learn: the model shown before each learn, newest last.

A learn replaces what the project shows (the unsupervised model the first time, the
previous learnt model after that). Keeping those models, not their files, makes Undo
exact and instant: the earlier model comes back bit for bit with the maps already
cached under its key. The history is bounded (a learnt model holds a copy of the
trunk) and dropped when another unsupervised model is loaded.
"""

from __future__ import annotations

from collections import deque

from acseg_core.errors import AcsegError
from acseg_core.model.checkpoint import LoadedModel

MAX_LEARNS = 8  # learns that can be undone


class LearnHistory:
    """The models shown before each learn; ``None`` stands for the unsupervised one."""

    def __init__(self, limit: int = MAX_LEARNS) -> None:
        self._before: deque[LoadedModel | None] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._before)

    @property
    def can_undo(self) -> bool:
        return bool(self._before)

    def learnt(self, before: LoadedModel | None) -> None:
        """A learn replaced ``before`` (None: the unsupervised model was shown)."""
        self._before.append(before)

    def undo(self) -> LoadedModel | None:
        """The model to show again (None: the unsupervised one)."""
        if not self._before:
            raise AcsegError("no learn to undo")
        return self._before.pop()

    def clear(self) -> None:
        self._before.clear()


__all__ = ["MAX_LEARNS", "LearnHistory"]

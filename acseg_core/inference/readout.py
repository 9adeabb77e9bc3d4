"""The read-out of a prediction as one value: which read-out, and which majority window.

Every front-end holds one :class:`ReadOut` and hands it to
:func:`acseg_core.inference.predict.predict`; "the model's own" is ``None`` in either
field and :meth:`ReadOut.resolve` turns it into what the model actually applies, so
caches can be keyed by what produced a map (:attr:`ReadOut.key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acseg_core.errors import AcsegError
from acseg_core.model.readouts import HEAD, KINDS, LABELS
from acseg_core.model.refine import check_window


@dataclass(frozen=True)
class ReadOut:
    """``kind``: a read-out of :data:`~acseg_core.model.readouts.KINDS` (None = the model's
    own). ``smooth``: majority-filter window in px, 0 = off (None = the model's own)."""

    kind: str | None = None
    smooth: int | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise AcsegError(f"unknown read-out {self.kind!r} (choose from {', '.join(KINDS)})")
        if self.smooth is not None:
            window = check_window(int(self.smooth))
            object.__setattr__(self, "smooth", window if window > 1 else 0)

    @property
    def is_resolved(self) -> bool:
        return self.kind is not None and self.smooth is not None

    def resolve(self, loaded: Any) -> ReadOut:
        """What ``loaded`` (a LoadedModel) applies for this choice: both fields concrete.

        A kind the model has not fitted is refused (the head always exists).
        """
        fitted = fitted_kind(loaded)
        kind = self.kind if self.kind is not None else (fitted or HEAD)
        if kind != HEAD and kind != fitted:
            raise AcsegError(f"this model has no fitted {LABELS.get(kind, kind)} read-out")
        smooth = self.smooth
        if smooth is None:
            smooth = int(getattr(loaded.config, "smooth", 0) or 0)
        return ReadOut(kind, smooth)

    @property
    def key(self) -> str:
        """A short stable name of a resolved read-out, for cache keys and file names."""
        if not self.is_resolved:
            raise ValueError("resolve the read-out before asking for its key")
        return f"{self.kind}-s{self.smooth}"

    def describe(self) -> str:
        kind = "the model's read-out" if self.kind is None else LABELS[self.kind]
        if self.smooth is None:
            return f"{kind}, the model's window"
        return f"{kind}, {self.smooth} px majority filter" if self.smooth else f"{kind}, no filter"


MODEL_DEFAULT = ReadOut()


def fitted_kind(loaded: Any) -> str | None:
    """The fitted read-out a model carries (None: only the head), also for ``None``."""
    return getattr(getattr(loaded, "model", None), "fitted_readout", None)


def available_kinds(loaded: Any) -> tuple[str, ...]:
    """Read-outs a model can predict with: the head, and its fitted read-out if any."""
    fitted = fitted_kind(loaded)
    return (HEAD,) if fitted is None else (HEAD, fitted)


__all__ = ["MODEL_DEFAULT", "ReadOut", "available_kinds", "fitted_kind"]

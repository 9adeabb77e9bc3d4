"""The read-out of a prediction as one value: which read-out kind, which majority window.

A model file carries one, concrete (``ModelConfig.readout``: what the model applies by
itself). Every front-end holds one too and hands it to prediction; there "the
model's own" is ``None`` in either field, and :meth:`ReadOut.resolve` turns it into
what the model actually applies, so caches can be keyed by what produced a map
(:attr:`ReadOut.key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acseg_core.errors import AcsegError
from acseg_core.model.readouts.registry import HEAD, READOUTS, readout_kind
from acseg_core.model.refine import check_window

if TYPE_CHECKING:
    from acseg_core.model.checkpoint import LoadedModel


@dataclass(frozen=True)
class ReadOut:
    """``kind``: a read-out of :data:`~acseg_core.model.readouts.registry.READOUTS`
    (None = the model's own). ``smooth``: majority-filter window in px, 0 = off
    (None = the model's own)."""

    kind: str | None = None
    smooth: int | None = None

    def __post_init__(self) -> None:
        if self.kind is not None:
            readout_kind(self.kind)  # one line for an unknown kind
        if self.smooth is not None:
            window = check_window(int(self.smooth))
            object.__setattr__(self, "smooth", window if window > 1 else 0)

    @property
    def is_resolved(self) -> bool:
        return self.kind is not None and self.smooth is not None

    def over(self, base: ReadOut) -> ReadOut:
        """This choice with its ``None`` fields taken from ``base``."""
        kind = self.kind if self.kind is not None else base.kind
        smooth = self.smooth if self.smooth is not None else base.smooth
        return ReadOut(kind, smooth)

    def resolve(self, loaded: LoadedModel | None) -> ReadOut:
        """What ``loaded`` applies for this choice: both fields concrete.

        A kind the model has not fitted is refused (the head always exists).
        """
        fitted = fitted_kind(loaded)
        own = loaded.config.readout if loaded is not None else ReadOut(HEAD, 0)
        kind = self.kind if self.kind is not None else (fitted or HEAD)
        if kind != HEAD and kind != fitted:
            raise AcsegError(f"this model has no fitted {READOUTS[kind].label} read-out")
        smooth = self.smooth if self.smooth is not None else own.smooth
        return ReadOut(kind, smooth or 0)

    @property
    def key(self) -> str:
        """A short stable name of a resolved read-out, for cache keys and file names."""
        if not self.is_resolved:
            raise ValueError("resolve the read-out before asking for its key")
        return f"{self.kind}-s{self.smooth}"

    def describe(self) -> str:
        kind = "the model's read-out" if self.kind is None else READOUTS[self.kind].label
        if self.smooth is None:
            return f"{kind}, the model's window"
        return f"{kind}, {self.smooth} px majority filter" if self.smooth else f"{kind}, no filter"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "smooth": self.smooth}


MODEL_DEFAULT = ReadOut()
PLAIN_HEAD = ReadOut(HEAD, 0)  # plain AC: the head's argmax, no filter


def fitted_kind(loaded: LoadedModel | None) -> str | None:
    """The fitted read-out a model carries (None: only the head), also for ``None``."""
    if loaded is None:
        return None
    return loaded.model.fitted_readout


def available_kinds(loaded: LoadedModel | None) -> tuple[str, ...]:
    """Read-outs a model can predict with: the head, and its fitted read-out if any."""
    fitted = fitted_kind(loaded)
    return (HEAD,) if fitted is None else (HEAD, fitted)


def emits_classes(loaded: LoadedModel | None, readout: ReadOut = MODEL_DEFAULT) -> bool:
    """Whether maps ``loaded`` makes with ``readout`` hold class positions (a learnt
    read-out), not clusters."""
    if loaded is None:
        return False
    kind = readout.resolve(loaded).kind
    return bool(kind is not None and READOUTS[kind].emits_classes)


__all__ = [
    "MODEL_DEFAULT",
    "PLAIN_HEAD",
    "ReadOut",
    "available_kinds",
    "emits_classes",
    "fitted_kind",
]

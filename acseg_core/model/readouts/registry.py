"""Every read-out kind by name: the one list the network, prediction, learning and the
front-ends read (see :mod:`acseg_core.model.readouts.base`)."""

from __future__ import annotations

from acseg_core.errors import AcsegError
from acseg_core.model.readouts.bank_strokes import BankStrokesKind
from acseg_core.model.readouts.base import LearnableKind, ReadoutKind
from acseg_core.model.readouts.head import HEAD, HeadKind
from acseg_core.model.readouts.kmeans import KMeansKind
from acseg_core.model.readouts.strokes import StrokesKind

READOUTS: dict[str, ReadoutKind] = {
    k.name: k for k in (HeadKind(), KMeansKind(), StrokesKind(), BankStrokesKind())
}
KINDS = tuple(READOUTS)
# what `train --readout` offers: the head, and the kinds fitted after training without labels
TRAINABLE = tuple(name for name, kind in READOUTS.items() if name == HEAD or kind.after_training)
LEARNT = "bank-strokes"  # the kind a user's strokes teach (acseg_core.learning)


def readout_kind(name: str) -> ReadoutKind:
    """The kind called ``name``; one line naming the choices for an unknown one."""
    try:
        return READOUTS[name]
    except KeyError:
        raise AcsegError(f"unknown read-out {name!r} (choose from {', '.join(KINDS)})") from None


def learnable_kind(name: str = LEARNT) -> LearnableKind:
    kind = readout_kind(name)
    if not isinstance(kind, LearnableKind):
        raise AcsegError(f"the {kind.label} read-out is not taught by strokes")
    return kind


__all__ = ["HEAD", "KINDS", "LEARNT", "READOUTS", "TRAINABLE", "learnable_kind", "readout_kind"]

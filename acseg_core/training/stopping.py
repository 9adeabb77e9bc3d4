"""A label-free stopping rule: stop when the training loss has plateaued.

IIC-style losses fall fast, then flatten while the clusters slowly drift towards
balanced use (which can cost accuracy on imbalanced land cover). The rule compares
the mean loss of the last ``window`` steps with the mean of the ``window`` before:
once the relative improvement ``(previous − last) / |previous|`` is below ``tol``,
training stops. It needs nothing but the losses the loop already has, so it works
on any folder; ``min_steps`` keeps it from firing on the noisy first steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plateau_reached(
    losses: Sequence[float], window: int = 50, tol: float = 0.01, min_steps: int = 100
) -> bool:
    """True when the loss of the last ``window`` steps improved on the ``window``
    before by less than ``tol`` (relative), after at least ``min_steps`` steps."""
    if tol <= 0 or len(losses) < max(min_steps, 2 * window):
        return False
    last = float(np.mean(losses[-window:]))
    previous = float(np.mean(losses[-2 * window : -window]))
    scale = max(abs(previous), 1e-8)
    return (previous - last) / scale < tol


def plateau_step(
    losses: Sequence[float], window: int = 50, tol: float = 0.01, min_steps: int = 100
) -> int | None:
    """The first step (1-based count of losses) at which :func:`plateau_reached`
    fires on the curve ``losses``; None when it never does."""
    for step in range(max(min_steps, 2 * window), len(losses) + 1):
        if plateau_reached(losses[:step], window, tol, min_steps):
            return step
    return None


__all__ = ["plateau_reached", "plateau_step"]

"""Multinomial logistic regression, class-balanced, L2: the classifier of the bank's
strokes read-out (what scikit-learn's ``LogisticRegression(C, class_weight="balanced")``
fits, written with torch so the default install needs no scikit-learn).

It minimises ``C · Σ_i w_i · CE_i + ½‖W‖²`` (the intercepts unpenalised), with ``w_i``
giving every class the same total weight, by full-batch L-BFGS from zero: convex, so
the result is a pure function of the samples (no seed, no order effect). Classes
without samples get a large negative intercept: they are never predicted.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ABSENT_BIAS = -1e4
MAX_ITERATIONS = 300
TOLERANCE = 1e-6


def fit_logistic(
    x: np.ndarray, labels: np.ndarray, classes: int, c: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """(W classes×d, b classes) for standardised samples ``x`` (n×d) and ``labels``."""
    labels = np.asarray(labels, np.int64)
    present = np.unique(labels)
    z = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    target = torch.from_numpy(labels)
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    weight = torch.from_numpy(len(labels) / (len(present) * counts[labels]))
    w = torch.zeros(classes, z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    absent = torch.ones(classes, dtype=torch.bool)
    absent[torch.from_numpy(present)] = False
    optimiser = torch.optim.LBFGS(
        [w, b], max_iter=MAX_ITERATIONS, tolerance_grad=TOLERANCE,
        tolerance_change=1e-10, history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        logits = (z @ w.T + b).masked_fill(absent, ABSENT_BIAS)
        loss = c * (F.cross_entropy(logits, target, reduction="none") * weight).sum()
        loss = loss + 0.5 * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(objective)
    bias = b.detach().clone()
    bias[absent] = ABSENT_BIAS
    return w.detach().numpy().astype(np.float32), bias.numpy().astype(np.float32)


__all__ = ["ABSENT_BIAS", "fit_logistic"]

"""Multinomial logistic regression, class-balanced, L2: the classifier of the bank's
strokes read-out (what scikit-learn's ``LogisticRegression(C, class_weight="balanced")``
fits, so the default install needs no scikit-learn).

It minimises ``C · Σ_i w_i · CE_i + ½‖W‖²`` (the intercepts unpenalised), with ``w_i``
giving every class the same total weight, by SciPy's L-BFGS from zero in float64:
convex, so the result is a pure function of the samples (no seed, no order effect).
SciPy rather than ``torch.optim``: the latter's first use imports ``torch._dynamo``,
seconds a live refit cannot spend. Classes without samples get a large negative
intercept: they are never predicted.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

ABSENT_BIAS = -1e4
MAX_ITERATIONS = 300
TOLERANCE = 1e-6


def fit_logistic(
    x: np.ndarray, labels: np.ndarray, classes: int, c: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """(W classes×d, b classes) for standardised samples ``x`` (n×d) and ``labels``."""
    labels = np.asarray(labels, np.int64)
    z = np.ascontiguousarray(x, dtype=np.float64)
    present = np.unique(labels)
    k = len(present)
    index = np.searchsorted(present, labels)  # labels as positions among present classes
    counts = np.bincount(index, minlength=k).astype(np.float64)
    weight = c * len(labels) / (k * counts[index])
    onehot = np.zeros((len(labels), k))
    onehot[np.arange(len(labels)), index] = 1.0
    d = z.shape[1]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: k * d].reshape(k, d), theta[k * d :]
        logits = z @ w.T + b
        log_norm = logsumexp(logits, axis=1)
        loss = float(np.dot(weight, log_norm - logits[np.arange(len(z)), index]))
        loss += 0.5 * float(np.einsum("ij,ij->", w, w))
        residual = (np.exp(logits - log_norm[:, None]) - onehot) * weight[:, None]
        grad_w = residual.T @ z + w
        return loss, np.concatenate([grad_w.ravel(), residual.sum(axis=0)])

    result = minimize(objective, np.zeros(k * (d + 1)), jac=True, method="L-BFGS-B",
                      options={"maxiter": MAX_ITERATIONS, "gtol": TOLERANCE})  # fmt: skip
    w_present = result.x[: k * d].reshape(k, d)
    weights = np.zeros((classes, d), np.float32)
    bias = np.full(classes, ABSENT_BIAS, np.float32)
    weights[present] = w_present
    bias[present] = result.x[k * d :]
    return weights, bias


__all__ = ["ABSENT_BIAS", "fit_logistic"]

"""The label-free plateau rule on synthetic loss curves."""

from __future__ import annotations

import numpy as np

from acseg_core.training.stopping import plateau_reached, plateau_step


def curve(steps: int, tau: float, noise: float = 0.0, seed: int = 0) -> list[float]:
    """An IIC-like loss: −log K·(1 − e^(−t/τ)) plus noise."""
    t = np.arange(1, steps + 1)
    rng = np.random.default_rng(seed)
    return list(-np.log(5) * (1 - np.exp(-t / tau)) + noise * rng.standard_normal(steps))


def test_stops_after_the_knee_of_a_saturating_curve() -> None:
    losses = curve(1000, tau=80)
    step = plateau_step(losses, window=50, tol=0.01)
    # the mean of 50 steps improves on the 50 before by < 1 % from step 385 on
    assert step is not None and 250 < step < 450
    assert plateau_reached(losses[:step]) and not plateau_reached(losses[: step - 1])


def test_noise_does_not_stop_it_early_or_keep_it_running() -> None:
    for seed in range(5):
        step = plateau_step(curve(1000, tau=80, noise=0.02, seed=seed), window=50, tol=0.01)
        assert step is not None and 200 < step < 600


def test_never_fires_on_a_steadily_falling_curve_or_when_off() -> None:
    falling = list(-0.01 * np.arange(1, 600))
    assert plateau_step(falling, window=50, tol=0.01) is None
    assert plateau_step(curve(1000, tau=80), tol=0.0) is None
    assert not plateau_reached(curve(1000, tau=80)[:99], window=20, min_steps=100)

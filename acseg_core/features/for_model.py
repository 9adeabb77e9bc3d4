"""The feature bank a loaded model reads, and an image's features for it.

A model records its bank in ``config.bank`` and the bank's weights digest in
``meta["bank_digest"]``; :func:`bank_of` loads that bank and refuses other weights in
one line. :func:`model_features` gives an image's store: cached under ``root`` (the
app's project cache), or in a temporary folder the caller removes.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path

from acseg_core.features.bank import Bank, check_bank, load_bank
from acseg_core.features.cache import features_for
from acseg_core.features.store import FeatureStore
from acseg_core.jobs import CancelToken, Progress
from acseg_core.model.bankconfig import BankConfig
from acseg_core.model.checkpoint import LoadedModel

BANK_DIGEST = "bank_digest"  # the meta key of the bank's weights digest


def bank_of(loaded: LoadedModel) -> Bank | None:
    """The bank ``loaded`` reads (None: none); one line when the weights differ."""
    if loaded.config.bank is None:
        return None
    return check_bank(loaded.config.bank, str(loaded.meta.get(BANK_DIGEST, "")), "this model")


def with_bank(loaded: LoadedModel, config: BankConfig | None = None) -> LoadedModel:
    """``loaded`` reading a bank: itself when it has one, else a view of the same
    network (weights shared, never changed) with ``config`` (the default bank) attached,
    so a read-out on the bank can be taught on top of any trained AC model."""
    if loaded.config.bank is not None:
        return loaded
    bank = load_bank(config or BankConfig())
    attached = replace(loaded.config, bank=bank.config)
    model = copy.copy(loaded.model)  # a new attribute dict: the base keeps its config
    model.config = attached
    meta = {**loaded.meta, BANK_DIGEST: bank.weights_digest}
    return LoadedModel(model, attached, loaded.device, meta, loaded.digest)


@contextlib.contextmanager
def feature_root(root: Path | None) -> Iterator[Path]:
    """``root``, or a temporary folder for one-off stores, removed afterwards."""
    if root is not None:
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="acseg-bank-") as temp:
        yield Path(temp)


def model_features(
    loaded: LoadedModel, image: Path, root: Path, cancel: CancelToken | None = None
) -> Generator[Progress, None, FeatureStore | None]:
    """``image``'s features for ``loaded``'s bank (None for a model without one)."""
    bank = bank_of(loaded)
    if bank is None:
        return None
    return (yield from features_for(bank, image, root, cancel))


__all__ = ["BANK_DIGEST", "bank_of", "feature_root", "model_features", "with_bank"]

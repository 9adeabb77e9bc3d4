"""Bank features cached per image: computed once, found again by content.

A store's folder name holds the image's name, the first characters of its content
digest, the bank's key and its weights' digest, so a changed image, another bank or
other weights never reuse a store; the store's own record is checked on open as well.
The app caches beside the project's prediction cache; one-off commands use a
temporary folder.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path

from acseg_core.errors import InputError
from acseg_core.features.bank import Bank
from acseg_core.features.compute import build_store, content_digest
from acseg_core.features.store import FeatureStore
from acseg_core.jobs import CancelToken, Progress


def store_path(root: Path, image: Path, bank: Bank, digest: str) -> Path:
    """Where ``image``'s features by ``bank`` are cached under ``root``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", image.stem)[:60] or "image"
    return root / f"{stem}-{digest[:16]}-{bank.config.key}-{bank.weights_digest[:12]}"


def features_for(
    bank: Bank, image: Path, root: Path, cancel: CancelToken | None = None
) -> Generator[Progress, None, FeatureStore]:
    """``image``'s bank features: the cached store, or a new one built into ``root``."""
    digest = content_digest(image)
    target = store_path(root, image, bank, digest)
    if target.is_dir():
        try:
            store = FeatureStore.open(target)
        except InputError:
            store = None
        if store is not None and (store.meta.image, store.meta.weights) == (
            digest, bank.weights_digest
        ):
            return store
    return (yield from build_store(bank, image, target, cancel=cancel, digest=digest))


__all__ = ["features_for", "store_path"]

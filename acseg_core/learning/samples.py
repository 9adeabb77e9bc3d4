"""What the strokes read-out learns from: the network's per-pixel inputs at stroked pixels.

:func:`gather` runs the trained network tile by tile (the tiles ``predict`` uses, so
memory is bounded by the tile) over only the tiles that hold a stroke, and samples
the read-out's input blocks at the stroked pixels exactly as prediction computes
them there: grid blocks bilinearly at the pixel centre (what the read-out's
upsampling gives), full-size blocks at the pixel. The result, :class:`Samples`, is
small and depends only on the image, the model and the strokes, so a front-end
caches it per image and strokes digest.

:class:`~acseg_core.learning.live.LiveImage` holds the same blocks for a whole
(visible) image, computed once, so a refit after a stroke needs no network pass.

Which blocks: the learnable read-out kind's own (:meth:`LearnableKind.blocks`), so the
samples are what that kind's classifier sees at those pixels.

Pseudo-samples: classes without strokes may be named by a cluster→class map; for
those, ``pseudo`` seeded random pixels per image carry the base read-out's id, and
the fit labels them through the map (:mod:`acseg_core.learning.fit`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from acseg_core.errors import CancelledError, InputError
from acseg_core.features.for_model import feature_root, model_features, with_bank
from acseg_core.features.grid import grid_features
from acseg_core.features.store import FeatureStore
from acseg_core.io.normalise import apply_normalisation, image_normalisation
from acseg_core.io.raster import Raster, open_raster
from acseg_core.io.tiling import DEFAULT_TILE, TileGrid, plan_tiles
from acseg_core.jobs import CancelToken, Progress
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.geometry import grid_stride, tile_margin
from acseg_core.model.readouts.base import LearnableKind
from acseg_core.model.readouts.registry import learnable_kind

GATHER_TILE = DEFAULT_TILE


@dataclass(frozen=True)
class Samples:
    """Read-out inputs at sampled pixels: ``blocks[name]`` n×channels float32;
    ``labels`` class index (-1: a pseudo-sample); ``clusters`` the base read-out's id;
    ``groups`` the stroke each sample belongs to (-1: a pseudo-sample), what a
    leave-one-stroke-out check holds out together; ``pixels`` their (row, col)."""

    blocks: dict[str, np.ndarray]
    labels: np.ndarray
    clusters: np.ndarray
    groups: np.ndarray | None = None
    pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def stroke_groups(self) -> np.ndarray:
        """``groups``, or one group per sample where none were given."""
        if self.groups is not None:
            return self.groups
        return np.where(self.labels >= 0, np.arange(len(self.labels)), -1)

    @staticmethod
    def concat(parts: Sequence[Samples]) -> Samples:
        """The samples of several images (stroke ids stay apart)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no samples")
        names = list(parts[0].blocks)
        groups, offset = [], 0
        for part in parts:
            ids = part.stroke_groups()
            groups.append(np.where(ids >= 0, ids + offset, -1))
            offset += int(ids.max(initial=-1)) + 1
        return Samples(
            {name: np.concatenate([p.blocks[name] for p in parts]) for name in names},
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.clusters for p in parts]),
            np.concatenate(groups),
            _joined([p.pixels for p in parts]),
        )


def _joined(parts: list[np.ndarray | None]) -> np.ndarray | None:
    return None if any(p is None for p in parts) else np.concatenate(parts)  # type: ignore[arg-type]


class NetworkPass:
    """The network's read-out inputs for one normalised input (1×C×H×W, source frame):
    the learnable kind's blocks and the base read-out's ids, held for sampling."""

    def __init__(
        self,
        loaded: LoadedModel,
        x: torch.Tensor,
        base: str | None,
        kind: LearnableKind,
        bank: torch.Tensor | None = None,
    ) -> None:
        model = loaded.model
        self.size = tuple(x.shape[-2:])
        scale = loaded.input_scale
        if scale != 1.0:  # the network's frame, as Forward resamples
            small = tuple(max(1, round(s * scale)) for s in self.size)
            x = F.interpolate(x, size=small, mode="area" if scale < 1 else "bilinear")
        with torch.inference_mode():
            bank = None if bank is None else bank.to(x.device)
            self.inputs = model.grid_inputs(model.forward_features(x, bank=bank), x, bank)
            base_probs = model.readout_probabilities(self.inputs, base)
            grid, full = kind.blocks(self.inputs)
            self.grid = {name: v[0] for name, v in grid.items()}
            self.full = {name: v[0] for name, v in full.items()}
            self.base = base_probs[0].argmax(dim=0).to(torch.uint8)
        self.frame = tuple(x.shape[-2:])

    def sample(
        self, rows: np.ndarray, cols: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Blocks at source pixels (rows, cols) of this input, and the base ids there."""
        height, width = self.size
        gx = (2.0 * (torch.from_numpy(cols).double() + 0.5) / width - 1.0).float()
        gy = (2.0 * (torch.from_numpy(rows).double() + 0.5) / height - 1.0).float()
        grid = torch.stack([gx, gy], dim=-1)[None, None]  # 1×1×n×2
        out: dict[str, np.ndarray] = {}
        with torch.inference_mode():
            for name, tensor in (*self.grid.items(), *self.full.items()):
                v = F.grid_sample(tensor[None].float(), grid, mode="bilinear",
                                  padding_mode="border", align_corners=False)  # fmt: skip
                out[name] = v[0, :, 0].T.contiguous().numpy()
            if self.frame == self.size:
                ids = self.base[torch.from_numpy(rows).long(), torch.from_numpy(cols).long()]
            else:
                fr = np.minimum((rows + 0.5) * self.frame[0] / height, self.frame[0] - 1)
                fc = np.minimum((cols + 0.5) * self.frame[1] / width, self.frame[1] - 1)
                ids = self.base[torch.from_numpy(fr.astype(np.int64)),
                                torch.from_numpy(fc.astype(np.int64))]  # fmt: skip
        return out, ids.numpy().astype(np.uint8)


def pseudo_pixels(
    valid: np.ndarray, strokes: StrokeSet, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` seeded random valid pixels (rows, cols) of an image, spread over it.

    They do not depend on the strokes, so a refit after a stroke sees the same
    unlabelled samples (and reuses the read-out's statistics of them); the few that
    fall on a stroke are that pixel's unlabelled copy (``strokes`` only sizes the image).
    """
    if count <= 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    rng = np.random.default_rng([seed, strokes.height, strokes.width])
    n = min(count * 2, strokes.height * strokes.width)
    flat = rng.choice(strokes.height * strokes.width, n, replace=False)  # in random order
    rows, cols = (flat // strokes.width).astype(np.int32), (flat % strokes.width).astype(np.int32)
    keep = np.flatnonzero(valid[rows, cols])[:count]
    keep = keep[np.argsort(flat[keep], kind="stable")]  # spread over the image, read in order
    return rows[keep], cols[keep]


def gather(
    loaded: LoadedModel,
    image: str | Path,
    strokes: StrokeSet,
    *,
    pseudo: int = 0,
    seed: int = 0,
    base: str | None = None,
    tile: int = GATHER_TILE,
    cancel: CancelToken | None = None,
    kind: LearnableKind | None = None,
    feature_cache: Path | None = None,
) -> Generator[Progress, None, Samples]:
    """Samples of one image at its stroked pixels (plus ``pseudo`` seeded unstroked
    ones); yields progress per tile. ``base``: the read-out whose ids the
    pseudo-samples carry (None = the model's own, ``"head"`` = the head's). ``kind``:
    the read-out the samples teach (the default learnt kind); for one on the feature
    bank, the image's bank features are found in (or added to) ``feature_cache``."""
    kind = kind or learnable_kind()
    if kind.reads_bank:
        loaded = with_bank(loaded)
    image = Path(image)
    with feature_root(feature_cache) as root:
        store = yield from model_features(loaded, image, root, cancel)
        return (yield from _gather(loaded, image, strokes, pseudo, seed, base, tile, cancel,
                                   kind, store))  # fmt: skip


def _gather(
    loaded: LoadedModel,
    image: Path,
    strokes: StrokeSet,
    pseudo: int,
    seed: int,
    base: str | None,
    tile: int,
    cancel: CancelToken | None,
    kind: LearnableKind,
    store: FeatureStore | None,
) -> Generator[Progress, None, Samples]:
    with open_raster(image) as raster:
        info = raster.info
        loaded.check_bands(image, info.count)
        if (info.height, info.width) != strokes.shape:
            raise InputError(image, f"is {info.width}×{info.height} px but its strokes are "
                             f"{strokes.width}×{strokes.height} px")  # fmt: skip
        norm = loaded.config.normalisation or image_normalisation(raster)
        rows, cols = strokes.rows, strokes.cols
        labels = strokes.classes.astype(np.int16)
        groups = strokes.components()
        if pseudo:
            preview_valid = valid_mask(raster)
            pr, pc = pseudo_pixels(preview_valid, strokes, pseudo, seed)
            rows, cols = np.concatenate([rows, pr]), np.concatenate([cols, pc])
            labels = np.concatenate([labels, np.full(len(pr), -1, np.int16)])
            groups = np.concatenate([groups, np.full(len(pr), -1, np.int64)])
        grid = _plan(loaded, kind, info.width, info.height, tile)
        step = grid_stride(loaded.config, loaded.input_scale)
        tiles = [t for t in grid if _inside(t.keep, rows, cols).any()]
        parts: list[Samples] = []
        order: list[np.ndarray] = []
        for done, t in enumerate(tiles, start=1):
            if cancel:
                raise CancelledError(f"{image}: gathering strokes cancelled")
            pick = np.flatnonzero(_inside(t.keep, rows, cols))
            data = raster.read(t.read)
            valid = raster.valid_mask(data)
            x = torch.from_numpy(apply_normalisation(data, norm, valid))[None].to(loaded.device)
            bank = None if store is None else grid_features(store, t.read, step)[None]
            local_r, local_c = rows[pick] - t.read[1], cols[pick] - t.read[0]
            ok = valid[local_r, local_c]
            pick, local_r, local_c = pick[ok], local_r[ok], local_c[ok]
            blocks, ids = NetworkPass(loaded, x, base, kind, bank).sample(local_r, local_c)
            where = np.stack([rows[pick], cols[pick]], axis=1).astype(np.int32)
            parts.append(Samples(blocks, labels[pick], ids, groups[pick], where))
            order.append(pick)
            yield Progress(done, len(tiles), f"{image.name}: strokes tile {done}/{len(tiles)}")
    if not parts or not sum(len(p) for p in parts):
        return Samples({}, np.zeros(0, np.int16), np.zeros(0, np.uint8))
    blocks = {k: np.concatenate([p.blocks[k] for p in parts]) for k in parts[0].blocks}
    rank = np.argsort(np.concatenate(order), kind="stable")  # the strokes' own order
    return Samples(
        {k: v[rank] for k, v in blocks.items()},
        np.concatenate([p.labels for p in parts])[rank],
        np.concatenate([p.clusters for p in parts])[rank],
        np.concatenate([p.groups for p in parts])[rank],  # type: ignore[misc]
        np.concatenate([p.pixels for p in parts])[rank],  # type: ignore[misc]
    )


def _plan(loaded: LoadedModel, kind: LearnableKind, width: int, height: int,
          tile: int) -> TileGrid:  # fmt: skip
    """The tiles of the model with ``kind``'s context (the margins prediction of a model
    with that read-out uses), so samples equal what prediction computes there."""
    extra = 0 if loaded.config.readout.kind == kind.name else kind.context_cells
    stride = grid_stride(loaded.config, loaded.input_scale)
    margin = tile_margin(loaded.config, loaded.input_scale, extra)
    return plan_tiles(width, height, tile=max(tile, 2 * margin + stride), margin=margin,
                      stride=stride)  # fmt: skip


def _inside(window: tuple[int, int, int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    col, row, width, height = window
    return (rows >= row) & (rows < row + height) & (cols >= col) & (cols < col + width)


def valid_mask(raster: Raster) -> np.ndarray:
    """Validity of every pixel (read by row bands, so memory stays one band of rows)."""
    info = raster.info
    if info.nodata is None and not np.issubdtype(np.dtype(info.dtype), np.floating):
        return np.ones((info.height, info.width), bool)
    out = np.empty((info.height, info.width), bool)
    step = max(1, 4_000_000 // max(1, info.width * info.count))
    for top in range(0, info.height, step):
        h = min(step, info.height - top)
        out[top : top + h] = raster.valid_mask(raster.read((0, top, info.width, h)))
    return out


__all__ = ["NetworkPass", "Samples", "gather", "pseudo_pixels", "valid_mask"]

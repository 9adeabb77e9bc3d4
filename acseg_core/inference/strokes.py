"""What the strokes read-out learns from: the network's per-pixel inputs at stroked pixels.

:func:`gather` runs the trained network tile by tile (the tiles ``predict`` uses, so
memory is bounded by the tile) over only the tiles that hold a stroke, and samples
the read-out's input blocks at the stroked pixels exactly as prediction computes
them there: grid blocks bilinearly at the pixel centre (what the read-out's
upsampling gives), full-size blocks at the pixel. The result, :class:`Samples`, is
small and depends only on the image, the model and the strokes, so a front-end
caches it per image and strokes digest.

:class:`LiveImage` holds the same blocks for a whole (visible) image, computed once,
so a refit after a stroke needs no network pass: new samples are read from it and
its new prediction is the read-out alone (a fraction of a second on a 1000² image).

Pseudo-samples: classes without strokes may be named by a cluster→class map; for
those, ``pseudo`` seeded random pixels per image carry the base read-out's id, and
the fit labels them through the map (:mod:`acseg_core.inference.learn`).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from acseg_core.errors import CancelledError, InputError
from acseg_core.io.raster import NODATA
from acseg_core.jobs import CancelToken, Progress
from acseg_core.labelling.strokes import StrokeSet
from acseg_core.model.readouts.strokes import BLOCKS, grid_stack, local_mean

GATHER_TILE = 512


@dataclass(frozen=True)
class Samples:
    """Read-out inputs at sampled pixels: ``blocks[name]`` n×channels float32;
    ``labels`` class index (-1: a pseudo-sample); ``clusters`` the base read-out's id."""

    blocks: dict[str, np.ndarray]
    labels: np.ndarray
    clusters: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(parts: Sequence[Samples]) -> Samples:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no samples")
        return Samples(
            {name: np.concatenate([p.blocks[name] for p in parts]) for name in BLOCKS},
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.clusters for p in parts]),
        )


class _Pass:
    """The network's read-out inputs for one normalised input (1×C×H×W, source frame)."""

    def __init__(self, loaded: Any, x: torch.Tensor, base: str | None) -> None:
        from acseg_core.inference.forward import input_scale

        model = loaded.model
        self.size = tuple(x.shape[-2:])
        scale = input_scale(loaded)
        if scale != 1.0:  # the network's frame, as Forward resamples
            small = tuple(max(1, round(s * scale)) for s in self.size)
            x = F.interpolate(x, size=small, mode="area" if scale < 1 else "bilinear")
        with torch.inference_mode():
            z = model.encode(model.stem(x), None)
            normed = model.head_norm(z)
            frame = tuple(x.shape[-2:])
            logits = model.head_logits(normed)
            kind = model.fitted_readout if base != "head" else None
            if kind is None:
                base_probs = model.head_probabilities(normed, frame)
            elif getattr(model.readout, "uses_head", False):
                base_probs = model.readout(normed, x, logits)
            else:
                base_probs = model.readout(normed, x)
            stack = grid_stack(normed, x, logits, model.config.stride)
            self.inputs = (normed, x, logits)
            self.grid = {"grid": stack[0], "context": local_mean(stack)[0]}
            self.full = {"bands": x[0]}
            self.base = base_probs[0].argmax(dim=0).to(torch.uint8)
        self.frame = frame

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
    """``count`` seeded random valid, unstroked pixels (rows, cols) of an image."""
    if count <= 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    rng = np.random.default_rng([seed, strokes.height, strokes.width])
    n = min(count * 2, strokes.height * strokes.width)
    flat = np.unique(rng.choice(strokes.height * strokes.width, n, replace=False))
    rows, cols = (flat // strokes.width).astype(np.int32), (flat % strokes.width).astype(np.int32)
    stroked = np.zeros(strokes.shape, bool)
    stroked[strokes.rows, strokes.cols] = True
    keep = valid[rows, cols] & ~stroked[rows, cols]
    return rows[keep][:count], cols[keep][:count]


def gather(
    loaded: Any,
    image: str | Path,
    strokes: StrokeSet,
    *,
    pseudo: int = 0,
    seed: int = 0,
    base: str | None = None,
    tile: int = GATHER_TILE,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, Samples]:
    """Samples of one image at its stroked pixels (plus ``pseudo`` seeded unstroked
    ones); yields progress per tile. ``base``: the read-out whose ids the
    pseudo-samples carry (None = the model's own, ``"head"`` = the head's)."""
    from acseg_core.inference.predict import image_normalisation
    from acseg_core.io.normalise import apply_normalisation
    from acseg_core.io.raster import open_raster

    image = Path(image)
    with open_raster(image) as raster:
        info = raster.info
        if info.count != loaded.config.in_channels:
            raise InputError(image, f"has {info.count} band(s) but the model was trained on "
                             f"{loaded.config.in_channels}")  # fmt: skip
        if (info.height, info.width) != strokes.shape:
            raise InputError(image, f"is {info.width}×{info.height} px but its strokes are "
                             f"{strokes.width}×{strokes.height} px")  # fmt: skip
        norm = loaded.config.normalisation or image_normalisation(raster)
        rows, cols = strokes.rows, strokes.cols
        labels = strokes.classes.astype(np.int16)
        if pseudo:
            preview_valid = _valid_mask(raster)
            pr, pc = pseudo_pixels(preview_valid, strokes, pseudo, seed)
            rows, cols = np.concatenate([rows, pr]), np.concatenate([cols, pc])
            labels = np.concatenate([labels, np.full(len(pr), -1, np.int16)])
        grid = _plan(loaded, info.width, info.height, tile)
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
            local_r, local_c = rows[pick] - t.read[1], cols[pick] - t.read[0]
            ok = valid[local_r, local_c]
            pick, local_r, local_c = pick[ok], local_r[ok], local_c[ok]
            blocks, ids = _Pass(loaded, x, base).sample(local_r, local_c)
            parts.append(Samples(blocks, labels[pick], ids))
            order.append(pick)
            yield Progress(done, len(tiles), f"{image.name}: strokes tile {done}/{len(tiles)}")
    if not parts or not sum(len(p) for p in parts):
        empty = {name: np.zeros((0, 0), np.float32) for name in BLOCKS}
        return Samples(empty, np.zeros(0, np.int16), np.zeros(0, np.uint8))
    joined = Samples.concat(parts)
    rank = np.argsort(np.concatenate(order), kind="stable")  # the strokes' own order
    return Samples({k: v[rank] for k, v in joined.blocks.items()}, joined.labels[rank],
                   joined.clusters[rank])  # fmt: skip


def _plan(loaded: Any, width: int, height: int, tile: int) -> Any:
    """The tiles of a strokes model of this network (its margin covers the local mean)."""
    from acseg_core.inference.forward import input_scale
    from acseg_core.inference.predict import grid_stride
    from acseg_core.inference.tiling import margin_for, plan_tiles
    from acseg_core.model.nn import receptive_field
    from acseg_core.model.readouts.strokes import CONTEXT

    config = loaded.config
    scale = input_scale(loaded)
    stride = grid_stride(config, scale)
    field = receptive_field(config)
    if config.readout != "strokes":
        field += 2 * config.stride * CONTEXT
    margin = margin_for(math.ceil(field / scale), stride)
    return plan_tiles(width, height, tile=max(tile, 2 * margin + stride), margin=margin,
                      stride=stride)  # fmt: skip


def _inside(window: tuple[int, int, int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    col, row, width, height = window
    return (rows >= row) & (rows < row + height) & (cols >= col) & (cols < col + width)


def _valid_mask(raster: Any) -> np.ndarray:
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


class LiveImage:
    """One image's read-out inputs, held whole, for refits in a fraction of a second.

    Build it once per visible image (one network pass, fp32); then :meth:`samples`
    reads the strokes' samples from it and :meth:`predict` applies a fitted strokes
    read-out without touching the network. Memory: the stem-grid features (two
    blocks of 1/stride² of the image) plus bands and head probabilities per pixel.
    """

    def __init__(self, loaded: Any, image: str | Path, base: str | None = None) -> None:
        from acseg_core.inference.predict import image_normalisation
        from acseg_core.io.normalise import apply_normalisation
        from acseg_core.io.raster import open_raster

        self.image = Path(image)
        with open_raster(self.image) as raster:
            info = raster.info
            if info.count != loaded.config.in_channels:
                raise InputError(self.image, f"has {info.count} band(s) but the model was "
                                 f"trained on {loaded.config.in_channels}")  # fmt: skip
            norm = loaded.config.normalisation or image_normalisation(raster)
            data = raster.read((0, 0, info.width, info.height))
            self.valid = raster.valid_mask(data)
        x = torch.from_numpy(apply_normalisation(data, norm, self.valid))[None].to(loaded.device)
        self.loaded = loaded
        self._pass = _Pass(loaded, x, base)
        self.shape = (info.height, info.width)

    def samples(self, strokes: StrokeSet, pseudo: int = 0, seed: int = 0) -> Samples:
        """The same samples :func:`gather` gives for ``strokes``, from the held blocks."""
        rows, cols = strokes.rows, strokes.cols
        labels = strokes.classes.astype(np.int16)
        if pseudo:
            pr, pc = pseudo_pixels(self.valid, strokes, pseudo, seed)
            rows, cols = np.concatenate([rows, pr]), np.concatenate([cols, pc])
            labels = np.concatenate([labels, np.full(len(pr), -1, np.int16)])
        ok = self.valid[rows, cols]
        blocks, ids = self._pass.sample(rows[ok], cols[ok])
        return Samples(blocks, labels[ok], ids)

    def probabilities(self, fitted: Any) -> torch.Tensor:
        """C×H×W class probabilities of a model with a fitted strokes read-out."""
        readout = fitted.model.readout
        with torch.inference_mode():
            probs = readout(*self._pass.inputs)
            if self._pass.frame != self._pass.size:
                probs = F.interpolate(probs, size=self._pass.size, mode="bilinear",
                                      align_corners=False)  # fmt: skip
        return probs[0]

    def predict(self, fitted: Any, smooth: int | None = None) -> np.ndarray:
        """H×W uint8 class indices (255 = nodata), as ``predict`` gives for ``fitted``."""
        from acseg_core.model.refine import vote_shares

        window = int(fitted.config.smooth if smooth is None else smooth)
        probs = self.probabilities(fitted)
        with torch.inference_mode():
            if window > 1:
                probs = vote_shares(probs[None], window)[0]
            ids = probs.argmax(dim=0).to(torch.uint8).numpy()
        ids[~self.valid] = NODATA
        return ids


__all__ = ["LiveImage", "Samples", "gather", "pseudo_pixels"]

"""Regenerate ``clusters.json``: 254 mutually distinct colours (greedy max-min in CIELAB).

Black is left out (index 0 of every exported palette means background/unassigned),
and so are near-black and near-white, which vanish over dark or bright imagery.
Run: ``python resources/palettes/make_palettes.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COUNT = 254  # cluster values 0..253 plus a spare; 255 is nodata
SEEDS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48)]


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def main() -> None:
    levels = np.linspace(0, 255, 24).round()
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    keep = (lab[:, 0] > 20) & (lab[:, 0] < 95)
    grid, lab = grid[keep], lab[keep]
    chosen = [np.array(s, float) for s in SEEDS]
    dist = np.min([np.linalg.norm(lab - srgb_to_lab(s[None]), axis=1) for s in chosen], axis=0)
    while len(chosen) < COUNT:
        best = int(np.argmax(dist))
        chosen.append(grid[best])
        dist = np.minimum(dist, np.linalg.norm(lab - lab[best], axis=1))
    colours = [[int(v) for v in c] for c in chosen]
    out = Path(__file__).with_name("clusters.json")
    out.write_text(json.dumps({"name": "acseg-distinct", "colors": colours}) + "\n")
    print(f"wrote {len(colours)} colours to {out}")


if __name__ == "__main__":
    main()

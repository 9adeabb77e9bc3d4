"""Regenerate ``sample_edits.npz`` and ``sample_learnt.pt``: the sample's strokes and
the model learnt from them, so the first view is a map a user believes.

The unsupervised sample model (``make_sample_model``) puts the sample's water body in
the same cluster as the asphalt, so no cluster is "water". A user fixes that with a
few strokes and **Learn from edits**; this does the same, ahead of time:

1. a few short brush strokes per class (``--strokes`` of ``--width`` px, seeded),
   drawn inside the sample's own labels (``sample_dubai_labels.png``, eroded so a
   stroke never touches a border), as hand edits of the sample's class map
   (``sample_classes.json``), written as ``sample_edits.npz`` (an edit layer);
2. the app's lesson from those edits (``acseg_core.labelling.teaching``: the same
   strokes, names, colours and cluster → class map the app's Learn from edits uses)
   fitted by ``acseg_core.learning.job.learn`` on the sample model, with whatever
   read-out the current defaults learn, saved as ``sample_learnt.pt``;
3. prints the pixel accuracy of both maps against the sample's labels.

The app shows the strokes as the sample's hand edits and the learnt model over the
sample model; **Model → Back to the unsupervised model** shows the clusters. Run
``python -m resources.make_sample_strokes`` (or ``make sample``) again after the
sample model or the learnt read-out changes.
"""

from __future__ import annotations

import argparse

import numpy as np

from resources import RESOURCES, SAMPLE_LABELS, sample_image_path

SAMPLE_MODEL = RESOURCES / "sample_model.pt"
SAMPLE_CLASSES = RESOURCES / "sample_classes.json"
SAMPLE_EDITS = RESOURCES / "sample_edits.npz"
SAMPLE_LEARNT = RESOURCES / "sample_learnt.pt"
LABEL_TABLE = RESOURCES / "labels" / "dubai.csv"


def draw_strokes(
    truth: np.ndarray, class_ids: list[int], strokes: int, width: int, length: int, seed: int
) -> np.ndarray:
    """An edit array (class id per pixel, 0 = none): ``strokes`` segments per class,
    each inside its class's region of ``truth`` (class position per pixel, −1 none)
    shrunk by the stroke's radius and a margin, spread over the region."""
    from scipy import ndimage

    from acseg_core.labelling.shapes import segment_mask

    rng = np.random.default_rng(seed)
    height, width_px = truth.shape
    edits = np.zeros(truth.shape, np.uint8)
    radius = width / 2
    margin = int(np.ceil(radius)) + 3
    for position, class_id in enumerate(class_ids):
        inside = ndimage.binary_erosion(truth == position, iterations=margin)
        rows, cols = np.nonzero(inside)
        if rows.size == 0:
            continue
        chosen: list[tuple[int, int]] = []
        for _ in range(strokes):  # farthest point from the strokes so far: spread out
            if chosen:
                dist = np.min([(rows - r) ** 2 + (cols - c) ** 2 for r, c in chosen], axis=0)
                pick = int(np.argmax(dist + rng.random(dist.shape)))
            else:
                pick = int(rng.integers(rows.size))
            r, c = int(rows[pick]), int(cols[pick])
            chosen.append((r, c))
            angle = rng.uniform(0, np.pi)
            dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
            footprint = segment_mask(c - dx, r - dy, c + dx, r + dy, radius, height, width_px)
            if footprint is None:
                continue
            col, row, mask = footprint
            window = np.s_[row : row + mask.shape[0], col : col + mask.shape[1]]
            edits[window][mask & inside[window]] = class_id  # a stroke stays in its class
    return edits


def main(argv: list[str] | None = None) -> None:
    import json

    from acseg_core.inference.predict import predict_array
    from acseg_core.io.labels import parse_label_format
    from acseg_core.jobs import run_to_end
    from acseg_core.labelling.classes import ClassMap
    from acseg_core.labelling.edits import EditLayer
    from acseg_core.labelling.teaching import Lesson, edited_strokes
    from acseg_core.learning.fit import stroked_pixels
    from acseg_core.learning.job import learn
    from acseg_core.model.checkpoint import load_model, save_checkpoint
    from acseg_core.model.readouts import MODEL_DEFAULT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=6, help="strokes per class")
    parser.add_argument("--width", type=int, default=6, help="brush width in px")
    parser.add_argument("--length", type=int, default=40, help="stroke length in px")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    image = sample_image_path()
    base = load_model(SAMPLE_MODEL, device="cpu")
    class_map = ClassMap.from_dict(json.loads(SAMPLE_CLASSES.read_text()))
    truth = parse_label_format(f"colors:{LABEL_TABLE}").read(SAMPLE_LABELS)
    names = [c.name for c in class_map.classes]
    table = [line.split(",")[-1] for line in LABEL_TABLE.read_text().splitlines()[3:]]
    if names != table[: len(names)]:
        raise SystemExit(f"{SAMPLE_CLASSES.name}'s classes {names} are not {LABEL_TABLE.name}'s")
    ids = [c.id for c in class_map.classes]
    edits = draw_strokes(truth, ids, args.strokes, args.width, args.length, args.seed)
    layer = EditLayer(*edits.shape)
    layer.write(0, 0, edits, edits != 0)
    layer.save(SAMPLE_EDITS)

    lesson = Lesson.of(class_map)
    strokes = edited_strokes([(image, layer)], class_map)
    fitted = run_to_end(
        learn(base, strokes, lesson.names, lesson.colours,
              cluster_classes=lesson.cluster_positions, class_ids=lesson.class_ids,
              seed=args.seed)
    )  # fmt: skip
    save_checkpoint(SAMPLE_LEARNT, fitted.model, fitted.config, meta=fitted.meta)

    keep = truth >= 0
    plain = predict_array(base, image, readout=MODEL_DEFAULT).clusters
    lut = np.array([lesson.cluster_positions[k] for k in range(len(lesson.cluster_positions))])
    before = float((lut[plain][keep] == truth[keep]).mean())
    learnt = predict_array(load_model(SAMPLE_LEARNT, device="cpu"), image).clusters
    after = float((learnt[keep] == truth[keep]).mean())
    counts = ", ".join(f"{name} {n} px" for name, n in stroked_pixels(fitted).items())
    size = SAMPLE_LEARNT.stat().st_size / 1e6
    kind = fitted.config.readout.kind
    print(f"wrote {SAMPLE_EDITS.name} ({counts}), {SAMPLE_LEARNT.name} ({size:.2f} MB, {kind})")
    print(f"pixel accuracy on the sample's labels: clusters named {before:.1%}, learnt {after:.1%}")
    for position, name in enumerate(names):
        mask = truth == position
        if mask.any():
            print(f"  {name}: {float((learnt[mask] == position).mean()):.1%} of its pixels")


if __name__ == "__main__":
    main()

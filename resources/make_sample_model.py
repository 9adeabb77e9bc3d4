"""Regenerate ``sample_model.pt`` and ``sample_classes.json`` for the bundled sample.

The app opens the real Dubai sample (``sample_dubai.jpg``, CC0) with this model, so
a first start (and the README screenshot) shows real clusters and named classes.
Run ``python -m resources.make_sample_model`` (a few minutes on a laptop CPU):

1. trains a ``cpu-small`` AC model (K = 5) on the sample with the settings
   ``acseg-core train`` uses (the preset's record: its steps, crop and learning rate,
   then the k-means read-out and the 25 px majority filter), through the same
   ``acseg_core.training.loop.train`` the app and CLI use;
2. stores its weights in float16 (``load_model`` casts them back) so the file stays
   well under 2 MB;
3. predicts the sample, maps every cluster to its majority class of the sample's
   labels (``sample_dubai_labels.png``, the Dubai colour code), and writes that named
   class map as ``sample_classes.json`` (``ClassMap.to_dict``).
"""


from __future__ import annotations

import argparse
import json
import tempfile

from resources import RESOURCES, SAMPLE_LABELS, sample_image_path

SAMPLE_MODEL = RESOURCES / "sample_model.pt"
SAMPLE_CLASSES = RESOURCES / "sample_classes.json"
SCENE_CLASSES = [  # (name, display colour) in the order of resources/labels/dubai.csv
    ("building", (200, 60, 50)),
    ("land", (215, 190, 140)),
    ("road", (150, 150, 150)),
    ("vegetation", (40, 150, 60)),
    ("water", (40, 110, 220)),
]


def main(argv: list[str] | None = None) -> None:
    from acseg_core.evaluation.metrics import confusion_matrix, majority_mapping
    from acseg_core.inference.predict import predict_array
    from acseg_core.labelling.classes import ClassMap
    from acseg_core.model.checkpoint import load_checkpoint, load_model, save_checkpoint
    from acseg_core.model.config import ModelConfig, from_dict
    from acseg_core.model.nn import build_model
    from acseg_core.presets import preset
    from acseg_core.training.config import TrainConfig
    from acseg_core.training.loop import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # default: what `acseg-core train` does with cpu-small (its steps, crop and lr,
    # then the k-means read-out and the 25 px filter), so the sample shows the defaults
    parser.add_argument("--steps", type=int)
    parser.add_argument("--crop", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--clusters", type=int, default=5)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    given = {k: v for k, v in (("crop", args.crop), ("batch", args.batch), ("lr", args.lr)) if v}
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(  # the preset's record for everything not given
            inputs=(str(sample_image_path()),),
            out_dir=tmp,
            model=preset("cpu-small", in_channels=3, clusters=args.clusters),
            steps=args.steps,
            seed=args.seed,
            device="cpu",
            **given,
        )
        run = train(config)
        while True:
            try:
                progress = next(run)
            except StopIteration as stop:
                result = stop.value
                break
            loss = progress.metrics.get("loss")
            if progress.metrics.get("step", 0) % 25 == 0 and loss is not None:
                print(f"step {progress.metrics['step']}: loss {loss:.4f}")
        payload = load_checkpoint(result.model_path)
        model_config = from_dict(ModelConfig, payload["model_config"])
        model = build_model(model_config)
        model.load_state_dict(payload["state_dict"])
        save_checkpoint(
            SAMPLE_MODEL,
            model.half(),
            model_config,
            meta={**payload.get("meta", {}), "note": "sample model, float16 weights"},
        )
    loaded = load_model(SAMPLE_MODEL, device="cpu")
    clusters = predict_array(loaded, sample_image_path()).clusters
    from acseg_core.io.labels import parse_label_format

    table = RESOURCES / "labels" / "dubai.csv"
    truth = parse_label_format(f"colors:{table}").read(SAMPLE_LABELS)
    keep = truth >= 0
    confusion = confusion_matrix(clusters[keep], truth[keep], args.clusters, len(SCENE_CLASSES))
    mapping = majority_mapping(confusion)
    class_map = ClassMap.empty(args.clusters)
    ids = {}
    for name, colour in SCENE_CLASSES:
        class_map = class_map.add_class(name, colour)
        ids[name] = class_map.classes[-1].id
    for cluster, cls in enumerate(mapping):
        if cls >= 0:
            class_map = class_map.assign(cluster, ids[SCENE_CLASSES[int(cls)][0]])
    SAMPLE_CLASSES.write_text(json.dumps(class_map.to_dict(), indent=2) + "\n")
    hits = sum(confusion[k, int(c)] for k, c in enumerate(mapping) if c >= 0)
    accuracy = hits / max(1, confusion.sum())
    print(f"wrote {SAMPLE_MODEL} ({SAMPLE_MODEL.stat().st_size / 1e6:.2f} MB), {SAMPLE_CLASSES}")
    print(f"majority-mapped pixel accuracy on the sample: {accuracy:.1%}")


if __name__ == "__main__":
    main()

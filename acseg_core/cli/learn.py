"""`acseg-core learn`: a model whose read-out is taught by strokes.

``learn MODEL IMAGES... --strokes DIR --out NEW_MODEL [--classes FILE]``: DIR holds
one single-band PNG per image (same stem); value = class index 0..C−1, 255 = not
stroked. ``learn --project FILE --out NEW_MODEL``: a project's hand edits are the
strokes and its class map names the classes (clusters mapped to a class with no
edit keep teaching it). ``predict NEW_MODEL`` then writes class-index maps.

``--classes FILE``: a class map as the project stores it (JSON with ``classes`` and
``assignment``, or a project file), a JSON list of names, or text with one class per
line (``name`` or ``name:r,g,b``, as CVAT's labelmap.txt; ``#`` lines skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError
from acseg_core.inference.sources import iter_sources
from acseg_core.io.files import require_regular_file
from acseg_core.io.raster import open_raster
from acseg_core.jobs import CancelToken, ctrl_c_cancels, run_to_end
from acseg_core.labelling.class_lists import parse_class_lines
from acseg_core.labelling.classes import ClassMap, default_palette
from acseg_core.labelling.project import Project
from acseg_core.labelling.teaching import Lesson, edited_strokes
from acseg_core.learning.fit import save_learned, stroked_pixels
from acseg_core.learning.job import learn, quality_of
from acseg_core.learning.strokes import StrokeSet, read_stroke_file, stroke_file_for
from acseg_core.model.checkpoint import load_model


def register(sub: Any) -> None:
    parser = sub.add_parser("learn", help="teach a model's read-out from strokes or hand edits")
    parser.add_argument("model", type=Path, nargs="?", help="the trained model file")
    parser.add_argument(
        "images", type=Path, nargs="*",
        help="images or folders (as train and predict take them); images without a "
        "stroke file still give unlabelled samples",
    )  # fmt: skip
    parser.add_argument(
        "--list", type=Path, metavar="FILE",
        help="text file of image paths, one per line (relative to the file's folder)",
    )  # fmt: skip
    parser.add_argument("--strokes", type=Path, metavar="DIR", help="stroke PNGs (same stems)")
    parser.add_argument("--classes", type=Path, metavar="FILE", help="class names (and map)")
    parser.add_argument("--project", type=Path, metavar="FILE", help="learn from a project")
    parser.add_argument("--out", type=Path, metavar="NEW_MODEL", help="the model to write")
    parser.add_argument("--seed", type=int, default=0, help="fit seed (0)")
    parser.add_argument("--device", default="cpu", help="auto|cpu|cuda (default cpu)")
    parser.set_defaults(handler=run)


def read_classes(path: Path) -> tuple[list[str], list[tuple[int, int, int]], list[int] | None]:
    """(names, colours, cluster→class index or None) from a ``--classes`` file."""
    require_regular_file(path, "classes file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "classes file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the classes file ({type(exc).__name__})") from None
    palette = default_palette()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        try:
            cmap = ClassMap.from_dict(data.get("class_map", data))
        except AcsegError as exc:
            raise InputError(path, f"bad class map ({exc})") from None
        lesson = Lesson.of(cmap)
        return list(lesson.names), list(lesson.colours), list(lesson.cluster_positions)
    if isinstance(data, list) and all(isinstance(n, str) for n in data):
        return list(data), [tuple(int(v) for v in palette[i]) for i in range(len(data))], None
    entries = parse_class_lines(text, path)
    if not entries:
        raise InputError(path, "no class names in the classes file")
    names = [name for name, _ in entries]
    colours = [rgb or tuple(int(v) for v in palette[i]) for i, (_, rgb) in enumerate(entries)]
    return names, colours, None  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        raise AcsegError("--out NEW_MODEL is required")
    class_ids = None
    if args.project is not None:
        if args.model is not None or args.images or args.strokes is not None:
            raise AcsegError("give either --project or MODEL IMAGES... --strokes DIR")
        model_path, strokes, (names, colours, mapping), class_ids = _from_project(args.project)
        inputs = [args.project, model_path, *strokes]
    else:
        if args.model is None or not (args.images or args.list) or args.strokes is None:
            raise AcsegError("usage: learn MODEL IMAGES... --strokes DIR --out NEW_MODEL")
        model_path = args.model
        classes = read_classes(args.classes) if args.classes is not None else None
        strokes = _from_folder(_images(args.images, args.list), args.strokes, classes)
        names, colours, mapping = classes or _default_classes(strokes)
        inputs = [args.model, *strokes, args.strokes] + (
            [args.classes] if args.classes is not None else []
        )
    target = args.out.resolve()
    if any(target == Path(p).resolve() for p in inputs) or target.is_dir():
        raise InputError(args.out, "refusing to write the new model over an input")
    loaded = load_model(model_path, device=args.device)
    token = CancelToken()
    with ctrl_c_cancels(token, "stopping (Ctrl+C again to abort)"):
        fitted = run_to_end(learn(loaded, strokes, names, colours, cluster_classes=mapping,
                                  seed=args.seed, class_ids=class_ids, cancel=token))  # fmt: skip
    save_learned(args.out, fitted)
    counts = ", ".join(f"{n} {c}" for n, c in stroked_pixels(fitted).items())
    print(f"{args.out}: strokes read-out, {len(names)} classes; stroked pixels: {counts}")
    quality = quality_of(fitted)
    if quality is not None:
        print(quality.summary())
        for warning in quality.warnings():
            print(f"acseg-core learn: warning: {warning}", file=sys.stderr)
    return 0


def _images(paths: list[Path], list_file: Path | None) -> list[Path]:
    """The images named, in the folders given and in the list file (one line for a
    missing or unusable one)."""
    if list_file is not None and not list_file.is_file():
        raise InputError(list_file, "list file not found")
    images = []
    for source in iter_sources(paths, list_file):
        if isinstance(source, InputError):
            raise source
        images.append(source)
    return images


def _from_folder(images: list[Path], folder: Path, classes: Any) -> dict[Path, StrokeSet]:
    """Each image's strokes from ``folder`` (same stem); none for an image without a
    stroke file (it still gives unlabelled samples); at least one must have some."""
    if not folder.is_dir():
        raise InputError(folder, "strokes folder not found")
    count = len(classes[0]) if classes else None
    out = {}
    for image in images:
        with open_raster(image) as raster:
            shape = (raster.info.height, raster.info.width)
        try:
            stroke_file = stroke_file_for(folder, image)
        except InputError:
            out[image] = StrokeSet.empty(*shape)
            continue
        out[image] = read_stroke_file(stroke_file, shape, count)
    if not any(len(s) for s in out.values()):
        raise InputError(folder, "no stroke file for any of the images (same stems, .png)")
    return out


def _default_classes(strokes: dict[Path, Any]) -> tuple[list[str], list[Any], None]:
    top = max((int(s.classes.max()) for s in strokes.values() if len(s)), default=-1)
    if top < 1:
        raise AcsegError("strokes of at least two classes are needed to learn from")
    names = [f"class {i}" for i in range(top + 1)]
    return names, [tuple(int(v) for v in default_palette()[i]) for i in range(top + 1)], None


def _from_project(path: Path) -> tuple[Path, dict[Path, Any], Any, list[int]]:
    project = Project.load(path)
    if project.model is None:
        raise InputError(path, "the project has no model")
    layers = [(entry.path, project.get_edits(entry)) for entry in project.images]
    strokes = edited_strokes(layers, project.class_map)
    if not strokes:
        raise InputError(path, "the project has no hand edits to learn from")
    lesson = Lesson.of(project.class_map)
    classes = (list(lesson.names), list(lesson.colours), list(lesson.cluster_positions))
    return project.model, strokes, classes, list(lesson.class_ids)

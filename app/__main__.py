"""``acseg`` / ``python -m app``: launch the desktop app.

``acseg [FILE|FOLDER ...]`` opens images (the bundled sample when none are
given, and an offer to reopen the last project); ``--screenshot OUT.png`` renders
the window to a PNG and exits, which is how the README's screenshot is made (works
offscreen).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from acseg_core.errors import AcsegError
from acseg_core.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acseg", description="acseg labeling assistant")
    parser.add_argument("paths", nargs="*", help="images or folders to open (default: sample)")
    parser.add_argument("--version", action="version", version=f"acseg {__version__}")
    parser.add_argument("--project", help="open an .acseg project file")
    parser.add_argument("--model", help="load a model (model.pt from acseg-core train)")
    parser.add_argument(
        "--screenshot", metavar="OUT.png", help="render the window to OUT.png and exit"
    )
    return parser


def _check_inputs(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Refuse bad paths before any window opens (one line, non-zero exit); a file that
    cannot be read among usable ones is skipped with a notice, as predict skips it.
    Returns the images and one line per skipped file."""
    from acseg_core.io.raster import usable_images

    images, problems = usable_images(paths)
    if paths and not images:
        if len(problems) == 1:
            raise AcsegError(problems[0])
        if problems:
            raise AcsegError(f"{', '.join(paths)}: no usable images ({problems[0]}, …)")
        raise AcsegError(f"{', '.join(paths)}: no images found")
    return images, problems


def _check_screenshot_target(out: Path, args: argparse.Namespace, images: list[Path]) -> None:
    """The screenshot never replaces an input (an image, the project, the model)."""
    from acseg_core.errors import InputError

    inputs = [*images, *(Path(p) for p in (args.project, args.model) if p)]
    target = out.expanduser().resolve()
    if any(target == Path(p).expanduser().resolve() for p in inputs):
        raise InputError(out, "refusing to write the screenshot over an input file")
    if out.suffix.lower() != ".png":
        raise InputError(out, "the screenshot is a PNG: name it *.png")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        images, skipped = _check_inputs(args.paths)
        if args.screenshot:
            _check_screenshot_target(Path(args.screenshot), args, images)
    except AcsegError as exc:
        print(f"acseg: error: {exc}", file=sys.stderr)
        return 1

    from PySide6.QtWidgets import QApplication

    from app.dialogs import HEADLESS
    from app.qt_check import xcb_problem

    problem = xcb_problem()
    if problem is not None:  # Qt would abort with a misleading message
        print(f"acseg: error: {problem}", file=sys.stderr)
        return 1
    from app.main_window import MainWindow
    from app.opening import skipped_notice

    HEADLESS.on = bool(args.screenshot)  # nobody can answer a dialog: print, never block
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("acseg")
    app.setOrganizationName("acseg")
    window = MainWindow()
    try:
        if args.project:
            window.open_project(Path(args.project))
            if images:
                window.add_images(images)
        elif images:
            window.open_images(images)
        else:
            window.opener.open_sample(with_model=not args.model)
        if args.model:
            window.load_model(Path(args.model))
        if skipped:
            window.notices.add(skipped_notice(skipped))
    except AcsegError as exc:
        print(f"acseg: error: {exc}", file=sys.stderr)
        return 1
    if args.screenshot:
        try:
            window.save_screenshot(Path(args.screenshot))
        except AcsegError as exc:
            print(f"acseg: error: {exc}", file=sys.stderr)
            return 1
        return 1 if HEADLESS.problems else 0
    window.show()
    if not (args.paths or args.project or args.model):
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, window.offer_last_project)  # once the window is up
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())

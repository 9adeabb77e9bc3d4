"""``acseg-core``: the headless front-end (train | learn | predict | manifest | evaluate |
export | bench).

Each verb lives in ``acseg_core/cli/<verb>.py`` with ``register(subparsers)``
and a handler; this module only dispatches and turns expected failures
(:class:`AcsegError`) into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from acseg_core.errors import AcsegError
from acseg_core.version import __version__

COMMANDS = ("train", "learn", "predict", "manifest", "evaluate", "export", "bench")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acseg-core",
        description="Unsupervised segmentation (Autoregressive Clustering), headless.",
    )
    parser.add_argument("--version", action="version", version=f"acseg-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"acseg_core.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; return the process exit code (never raises for user errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or EXIT_OK)
    except AcsegError as exc:
        print(f"acseg-core {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"acseg-core {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())

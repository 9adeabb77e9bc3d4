"""Placeholder for verbs whose issue has not landed yet (exit code 2)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from acseg_core.raster import list_images


def register_stub(sub: Any, name: str, help_text: str, takes_paths: bool = True) -> None:
    parser = sub.add_parser(name, help=f"{help_text} (not built yet)")
    if takes_paths:
        parser.add_argument("paths", nargs="*", help="input files or folders")

    def handler(args: argparse.Namespace) -> int:
        list_images(getattr(args, "paths", []) or [])  # a bad path still gets its one line
        print(f"acseg-core {name}: not built yet", file=sys.stderr)
        return 2

    parser.set_defaults(handler=handler)

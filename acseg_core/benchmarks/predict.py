"""Benchmark: predict (not built yet)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--predict-size", type=int, nargs="+", metavar="N", help="predict N×N rasters (issue 6)"
    )
    return None


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    print("acseg-core bench (predict): not built yet", file=sys.stderr)
    return None

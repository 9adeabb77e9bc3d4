"""Benchmark: accuracy (not built yet)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accuracy",
        nargs="+",
        metavar="DATASET_SPEC",
        help="AC vs k-means on labelled folders (issue 9)",
    )
    return None


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    print("acseg-core bench (accuracy): not built yet", file=sys.stderr)
    return None

"""Benchmark: speed (not built yet)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # filled by issue 4: --steps, --crop, --batch ...
    return None


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    print("acseg-core bench (speed): not built yet", file=sys.stderr)
    return None

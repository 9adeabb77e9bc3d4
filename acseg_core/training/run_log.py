"""JSON-lines run log: one event per line, appended and flushed as it happens.

Appending (not atomic rewrites) is deliberate: a crash keeps every line written
so far, and a resumed run continues the same file.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


class RunLog:
    """Append ``{"time": ..., "event": ..., **fields}`` lines to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> None:
        record = {"time": round(time.time(), 3), "event": event, **fields}
        line = json.dumps(_jsonable(record), ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a run log (for tests and the GUI's training panel).

    A last line still being written (no newline yet) is left out.
    """
    text = Path(path).read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def _jsonable(value: Any) -> Any:
    """Paths become strings; NaN/inf floats become strings (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value

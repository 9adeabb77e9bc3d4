"""Shards of a collection for array jobs (SLURM ``--array``, Kubernetes Indexed Jobs,
AWS Batch arrays), and the merge of their manifests.

``--shard I/N`` keeps the inputs whose *shard key* hashes to ``I`` modulo ``N``
(SHA-256, not Python's salted ``hash``). The key is the input's file name without
its extension (``/data/2021/tile_0042.tif`` → ``tile_0042``), the part of the path an
output is named by (``tile_0042_clusters.tif``). So:

* the same file always lands in the same shard, whatever the listing order, the
  working folder, the mount point or the machine;
* two inputs that would write the same output (``a/x.tif`` and ``b/x.tif``) land in
  the *same* shard, where the second is refused exactly as in a single run, instead
  of two array tasks writing one file (or a ``--resume`` taking one's map for the
  other's);
* the union of the N shards is the whole collection, each input in one shard.

:func:`merge_manifests` joins the shards' manifests into one record per input and
names the inputs that failed or that no manifest mentions. The inputs expected are
listed again from the run records the shards wrote (:mod:`.manifest`), or given.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError
from acseg_core.inference.manifest import read_runs
from acseg_core.inference.sources import iter_sources

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0 ≤ index < count)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` → Shard; anything else is one line saying what is expected."""
        match = _SHARD.fullmatch(text)
        if match is None:
            raise AcsegError(f"--shard {text}: expected I/N with 0 <= I < N (e.g. 0/4)")
        index, count = int(match[1]), int(match[2])
        if count < 1 or index >= count:
            raise AcsegError(f"--shard {text}: expected I/N with 0 <= I < N (e.g. 0/{count or 4})")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, path: Path) -> bool:
        return shard_of(path, self.count) == self.index


def shard_key(path: Path) -> str:
    """What decides an input's shard: its file name without the extension."""
    return Path(path).stem


def shard_of(path: Path, count: int) -> int:
    """The shard (of ``count``) that ``path`` belongs to; the same on every machine."""
    key = shard_key(path).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % count


def select_shard(
    sources: Iterable[Path | InputError], shard: Shard | None
) -> Iterator[Path | InputError]:
    """The sources of ``shard`` (all of them for None), in their order; an unusable
    entry goes to the shard of its path, so exactly one shard reports it."""
    for source in sources:
        path = source.path if isinstance(source, InputError) else source
        if shard is None or shard.holds(path):
            yield source


# ---------------------------------------------------------------- merging manifests

_RANK = {"ok": 2, "skipped": 1, "error": 0}  # what a later record may replace


@dataclass
class MergeReport:
    """One record per input (``records``, sorted by input), and what is not done."""

    records: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    missing: list[str]
    shards_missing: list[str] = field(default_factory=list)
    expected: int | None = None  # how many inputs were expected (None: not known)
    note: str = ""  # why missing inputs could not be checked, if they could not

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r["status"] == status)


def input_key(path: str | Path, cwd: str | None = None) -> str:
    """An input's identity across manifests: absolute (relative to the run's working
    folder) and normalised."""
    return os.path.normpath(os.path.join(cwd or os.getcwd(), os.fspath(path)))


def merge_manifests(
    paths: Sequence[Path], expected: Iterable[Path | InputError] | None = None
) -> MergeReport:
    """Join manifests (shards, reruns): per input the best record (ok, else skipped,
    else the last error). ``expected`` (the inputs of the whole collection) defaults
    to a new listing of the inputs named in the manifests' run records."""
    best: dict[str, dict[str, Any]] = {}
    infos: list[dict[str, Any]] = []
    for path in paths:
        try:
            runs = read_runs(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, f"cannot read the manifest ({exc})") from exc
        for info, records in runs:
            if info is not None:
                infos.append(info)
            cwd = info.get("cwd") if info else None
            for record in records:
                key = input_key(record["input"], cwd)
                record = {**record, "seconds": _seconds(record.get("seconds"))}
                old = best.get(key)
                if old is None or _RANK[record["status"]] >= _RANK[old["status"]]:
                    best[key] = record
    note = ""
    if expected is None:
        expected, note = _expected_from_runs(infos)
    wanted: set[str] | None = None
    if expected is not None:
        wanted = {input_key(s.path if isinstance(s, InputError) else s) for s in expected}
    keys = sorted(best)
    records = [best[k] for k in keys]
    return MergeReport(
        records=records,
        failed=[r for r in records if r["status"] == "error"],
        missing=sorted(wanted - best.keys()) if wanted is not None else [],
        shards_missing=_shards_missing(infos),
        expected=len(wanted) if wanted is not None else None,
        note=note,
    )


def _seconds(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _expected_from_runs(
    infos: list[dict[str, Any]],
) -> tuple[list[Path | InputError] | None, str]:
    """Every input the runs were asked for, listed again (all shards: the whole set)."""
    specs = {}
    for info in infos:
        inputs = tuple(info.get("inputs") or ())
        listed = info.get("list")
        if inputs or listed:
            specs[(inputs, listed, info.get("out"))] = info
    if not specs:
        return None, "the manifests name no inputs to check against (give --list or --inputs)"
    found: list[Path | InputError] = []
    for inputs, listed, out in specs:
        try:
            found.extend(iter_sources(
                [Path(p) for p in inputs], Path(listed) if listed else None,
                Path(out) if out else None,
            ))  # fmt: skip
        except InputError as exc:
            return None, f"cannot list the inputs again ({exc}); missing inputs not checked"
    return found, ""


def _shards_missing(infos: list[dict[str, Any]]) -> list[str]:
    seen: dict[int, set[int]] = {}
    for info in infos:
        text = info.get("shard")
        if not text:
            continue
        try:
            shard = Shard.parse(str(text))
        except AcsegError:
            continue
        seen.setdefault(shard.count, set()).add(shard.index)
    return [f"{i}/{n}" for n, indices in sorted(seen.items()) for i in range(n) if i not in indices]


__all__ = [
    "MergeReport",
    "Shard",
    "input_key",
    "merge_manifests",
    "select_shard",
    "shard_key",
    "shard_of",
]

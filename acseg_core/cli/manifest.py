"""`acseg-core manifest merge M1 M2 ... --out M`: join the manifests of a prediction's
shards (or reruns) into one record per input, and report what is not done.

The inputs expected are listed again from the run records the shards wrote (their
inputs and list file), or from ``--inputs`` / ``--list``; inputs that no manifest
mentions are *missing*, those whose best record is an error *failed*, and shards
of an ``I/N`` split with no manifest among those given are named. ``--todo FILE``
writes the missing and failed inputs as a list file for ``predict --list FILE
--resume``. Exit code 0 when every expected input is done, 1 otherwise (the merged
manifest is written either way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError
from acseg_core.inference.manifest import manifest_text
from acseg_core.inference.shards import MergeReport, input_key, merge_manifests
from acseg_core.inference.sources import iter_sources
from acseg_core.io.atomic import write_text_atomic

SHOWN = 20  # missing / failed inputs named on the terminal (all of them go to --todo)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "manifest",
        help="join the manifests of a sharded prediction and report what is missing",
        description="Work with prediction manifests (acseg-core predict --manifest).",
    )
    verbs = parser.add_subparsers(dest="manifest_command", metavar="ACTION")
    merge = verbs.add_parser(
        "merge",
        help="join manifests (e.g. one per --shard) into one; report missing/failed inputs",
        description="Join manifests into one record per input (ok beats skipped beats an "
        "error) and report the inputs that failed or that no manifest mentions. The "
        "inputs expected come from the manifests' run records unless given.",
    )
    merge.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST")
    merge.add_argument(
        "--out", type=Path, required=True, metavar="PATH",
        help="merged manifest (JSON lines; CSV if PATH ends in .csv)",
    )  # fmt: skip
    merge.add_argument(
        "--inputs", nargs="+", type=Path, metavar="PATH",
        help="the inputs expected (files or folders), instead of the run records'",
    )  # fmt: skip
    merge.add_argument(
        "--list", type=Path, metavar="FILE", help="the inputs expected, one path per line"
    )
    merge.add_argument(
        "--todo", type=Path, metavar="FILE",
        help="write the missing and failed inputs here, one per line (for predict --list)",
    )  # fmt: skip
    parser.set_defaults(handler=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "manifest_command", None) != "merge":
        args.parser.print_help()
        return 2
    for path in args.manifests:
        if not path.is_file():
            raise InputError(path, "manifest not found")
    out_key = input_key(args.out)
    if any(input_key(path) == out_key for path in args.manifests):
        raise AcsegError(f"--out {args.out} is one of the manifests merged; name a new file")
    if args.list is not None and not args.list.is_file():
        raise InputError(args.list, "list file not found")
    expected = None
    if args.inputs or args.list is not None:
        expected = list(iter_sources(args.inputs or [], args.list))
    report = merge_manifests(args.manifests, expected)
    write_text_atomic(args.out, manifest_text(report.records, args.out.suffix.lower() == ".csv"))
    _print(report, args)
    if args.todo is not None:
        todo = [*report.missing, *(input_key(r["input"]) for r in report.failed)]
        write_text_atomic(args.todo, "".join(f"{path}\n" for path in todo))
    return 1 if report.missing or report.failed or report.shards_missing else 0


def _print(report: MergeReport, args: argparse.Namespace) -> None:
    expected = f" of {report.expected} expected" if report.expected is not None else ""
    print(
        f"merged {len(args.manifests)} manifest(s) into {args.out}: {len(report.records)} "
        f"input(s){expected}: {report.count('ok')} ok, {report.count('skipped')} skipped, "
        f"{len(report.failed)} failed, {len(report.missing)} missing"
    )
    err = sys.stderr
    for shard in report.shards_missing:
        print(f"acseg-core manifest: shard {shard}: no manifest among those given", file=err)
    for path in report.missing[:SHOWN]:
        print(f"acseg-core manifest: missing: {path}", file=err)
    for record in report.failed[:SHOWN]:
        print(f"acseg-core manifest: failed: {record['error'] or record['input']}", file=err)
    hidden = max(0, len(report.missing) - SHOWN) + max(0, len(report.failed) - SHOWN)
    if hidden:
        more = f" (all in {args.todo})" if args.todo is not None else " (--todo FILE lists all)"
        print(f"acseg-core manifest: ... and {hidden} more{more}", file=err)
    if report.note:
        print(f"acseg-core manifest: note: {report.note}", file=err)


__all__ = ["register"]

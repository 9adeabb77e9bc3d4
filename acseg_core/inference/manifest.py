"""The manifest of a prediction run: one record per finished file, appended as files
finish (one ``write`` of a whole line, flushed and fsynced): input, output, status
(``ok``/``skipped``/``error``), seconds, error message. JSON lines by default, CSV for
``*.csv``. A line torn by a crash is ignored by :func:`read_manifest` and terminated
before the next record is appended.

Each run of ``acseg-core predict`` first appends a *run record* (status ``run``): what
it was asked to predict (input paths, list file, output folder, working folder, shard),
so ``acseg-core manifest merge`` can list the inputs again and name the ones no
manifest mentions. In JSON lines it is ``{"status": "run", "run": {...}}``; in CSV the
``input`` column holds the same object as JSON. :func:`read_manifest` leaves run
records out; :func:`read_runs` returns each run with its records."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any, TextIO

from acseg_core.errors import InputError, os_reason
from acseg_core.io.files import require_regular_file
from acseg_core.io.raster import IMAGE_SUFFIXES

STATUSES = ("ok", "skipped", "error")
RUN = "run"  # the status of a run record


class Manifest:
    """Append-only record of finished files; JSON lines, or CSV for ``*.csv``."""

    FIELDS = ("input", "output", "status", "seconds", "error")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        _check_target(path)  # nothing is appended to an image or a binary file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO = open(path, "a+", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise InputError(path, f"cannot write the manifest ({os_reason(exc)})") from exc
        self._file.seek(0, io.SEEK_END)
        if self._file.tell() == 0:
            if self.csv:
                self._write(self._csv_line(dict(zip(self.FIELDS, self.FIELDS, strict=True))))
        else:  # a crash may have torn the last line: never glue a record onto it
            self._file.seek(self._file.tell() - 1)
            if self._file.read(1) != "\n":
                self._write("\n")

    def append(self, record: dict[str, Any]) -> None:
        self._write(self._csv_line(record) if self.csv else json.dumps(record) + "\n")

    def begin_run(self, info: dict[str, Any]) -> None:
        """Append the run record that the records after it belong to."""
        if self.csv:
            record = {"input": json.dumps(info), "output": "", "status": RUN, "seconds": 0,
                      "error": ""}  # fmt: skip
            self._write(self._csv_line(record))
        else:
            self._write(json.dumps({"status": RUN, "run": info}) + "\n")

    def close(self) -> None:
        # after a failed write (a full disk) the buffer still holds that record: it is
        # dropped, the error has been reported once already
        with contextlib.suppress(OSError):
            self._file.close()

    def _csv_line(self, record: dict[str, Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([record[f] for f in self.FIELDS])
        return buffer.getvalue()

    def _write(self, text: str) -> None:
        try:
            self._file.write(text)  # one whole line per write, then on disk
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:  # a full disk: say so, never a traceback
            raise InputError(self.path, f"cannot write the manifest ({os_reason(exc)})") from exc


def _check_target(path: Path) -> None:
    """Refuse what must not be appended to: a FIFO or device, an image (by its name),
    a file that is not UTF-8 text (an image under another name, a binary file)."""
    require_regular_file(path, "manifest")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(path, "a manifest is a text file (.jsonl or .csv), not an image")
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(path, f"cannot read the manifest ({os_reason(exc)})") from exc
    decoder = codecs.getincrementaldecoder("utf-8")()
    with handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError(
                path, "not a manifest (not UTF-8 text); refusing to append to it"
            ) from None
        except OSError as exc:
            raise InputError(path, f"cannot read the manifest ({os_reason(exc)})") from exc


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Records of a manifest (run records left out); a torn (incomplete) line is skipped."""
    return [record for _, records in read_runs(path) for record in records]


def read_runs(path: Path) -> list[tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
    """``(run info, its records)`` per run, in order; records before the first run
    record (a manifest of an older version) come with ``None``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    runs: list[tuple[dict[str, Any] | None, list[dict[str, Any]]]] = [(None, [])]
    for record in _csv_rows(text) if path.suffix.lower() == ".csv" else _json_rows(text):
        status = record.get("status")
        if status == RUN:
            info = _run_info(record, csv_row=path.suffix.lower() == ".csv")
            if info is not None:
                runs.append((info, []))
        elif status in STATUSES:
            runs[-1][1].append(record)
    return [run for run in runs if run[0] is not None or run[1]]


def manifest_text(records: list[dict[str, Any]], as_csv: bool) -> str:
    """A whole manifest of ``records`` (no run record): JSON lines, or CSV with its header."""
    if not as_csv:
        return "".join(json.dumps({f: r.get(f, "") for f in Manifest.FIELDS}) + "\n"
                       for r in records)  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(Manifest.FIELDS)
    writer.writerows([r.get(f, "") for f in Manifest.FIELDS] for r in records)
    return buffer.getvalue()


def _json_rows(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            rows.append(record)
    return rows


def _csv_rows(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


def _run_info(record: dict[str, Any], csv_row: bool) -> dict[str, Any] | None:
    if not csv_row:
        info = record.get("run")
        return info if isinstance(info, dict) else None
    try:
        info = json.loads(record.get("input") or "")
    except json.JSONDecodeError:
        return None
    return info if isinstance(info, dict) else None


__all__ = ["RUN", "STATUSES", "Manifest", "manifest_text", "read_manifest", "read_runs"]

"""The manifest of a prediction run: one record per finished file, appended as files
finish (one ``write`` of a whole line, flushed and fsynced): input, output, status
(``ok``/``skipped``/``error``), seconds, error message. JSON lines by default, CSV for
``*.csv``. A line torn by a crash is ignored by :func:`read_manifest` and terminated
before the next record is appended."""

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
    """Records of a manifest; a torn (incomplete) line is skipped."""
    text = Path(path).read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        return [r for r in rows if r.get("status") in STATUSES]
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("status") in STATUSES:
            records.append(record)
    return records


__all__ = ["STATUSES", "Manifest", "read_manifest"]

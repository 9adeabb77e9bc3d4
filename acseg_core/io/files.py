"""What a file on disk is: a regular file or not, whole or cut short.

* :func:`require_regular_file`: FIFOs, devices and sockets are refused before anything
  opens them (opening a FIFO for reading waits for a writer forever).
* :func:`png_problem`: a PNG cut short (GDAL's PNG driver hands back the rows it could
  decode and only warns) is found by walking its chunks, without decoding anything.
* :func:`written_problem` / :func:`check_written`: a file acseg has just written is
  checked before it is renamed into place. GDAL reports write errors (a full disk, a
  file-size limit) through its error handler, not always as an exception, and still
  closes the file; a TIFF whose directory or blocks lie past the end of the file, or
  a PNG without its end chunk, is such a write.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

from acseg_core.errors import InputError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LOW_SPACE = 1 << 20  # bytes: below this much free space a failed write is a full disk


def non_regular_kind(path: str | Path) -> str | None:
    """"a FIFO", "a device"... when ``path`` exists and is not a regular file (or a
    folder); None otherwise (a missing path is for the caller to report)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular_file(path: str | Path, what: str = "file") -> None:
    """Refuse a FIFO, device or socket up front (reading one can block forever)."""
    kind = non_regular_kind(path)
    if kind is not None:
        raise InputError(path, f"not a regular file ({kind}), so not usable as a {what}")


def png_problem(path: str | Path) -> str | None:
    """Why the PNG at ``path`` is not whole (cut short, no end chunk); None when it is."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if handle.read(8) != _PNG_SIGNATURE:
                return "not a PNG file"
            position = 8
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return "truncated (the file ends before the PNG's end chunk)"
                length, kind = struct.unpack(">I4s", header)
                position += 12 + length  # length, type, data, CRC
                if position > size:
                    return f"truncated (the file ends inside its {kind.decode('latin-1')} chunk)"
                if kind == b"IEND":
                    return None
                handle.seek(position)
    except OSError as exc:
        return f"cannot be read ({(exc.strerror or str(exc)).lower()})"


def tiff_problem(path: str | Path) -> str | None:
    """Why a tiled or striped TIFF at ``path`` is not whole (its directory cannot be
    read, a block lies past the end of the file or was never written); None when whole.

    Reads the directory only (block offsets and sizes), never the pixels.
    """
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    path = Path(path)
    try:
        size = path.stat().st_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                block_h, block_w = ds.block_shapes[0]
                for y in range((ds.height + block_h - 1) // block_h):
                    for x in range((ds.width + block_w - 1) // block_w):
                        offset = ds.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=1)
                        length = ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1)
                        if not offset or not length:
                            return f"incomplete (block {x},{y} was never written)"
                        if int(offset) + int(length) > size:
                            return f"truncated (block {x},{y} lies past the end of the file)"
    except (RasterioError, OSError, ValueError) as exc:
        return f"unreadable ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})"
    return None


def written_problem(path: str | Path) -> str | None:
    """Why a file just written is not whole (by its suffix: TIFF or PNG); None if whole."""
    suffix = Path(path).suffix.lower()
    if suffix in (".tif", ".tiff"):
        return tiff_problem(path)
    if suffix == ".png":
        return png_problem(path)
    return None


def write_failure(path: str | Path) -> OSError:
    """The OS error a write that left ``path`` incomplete most likely met (GDAL does not
    pass errno on): a full disk (ENOSPC), a file-size limit (EFBIG), else an I/O error."""
    path = Path(path)
    try:
        fs = os.statvfs(path.parent)
        if fs.f_bavail * fs.f_frsize < _LOW_SPACE:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    except (AttributeError, OSError):
        pass
    try:  # not the size written: GDAL may have failed to write a block far past it
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY:
            return OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    except (ImportError, OSError, ValueError):
        pass
    return OSError(errno.EIO, "input/output error: the file was not written whole", str(path))


def check_written(path: str | Path) -> None:
    """Raise :func:`write_failure`'s OSError when the file just written is not whole."""
    if written_problem(path) is not None:
        raise write_failure(path)


__all__ = [
    "check_written",
    "non_regular_kind",
    "png_problem",
    "require_regular_file",
    "tiff_problem",
    "write_failure",
    "written_problem",
]

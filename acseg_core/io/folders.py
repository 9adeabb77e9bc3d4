"""Output folders: created on demand, with one clear line when that cannot be done."""

from __future__ import annotations

import os
from pathlib import Path

from acseg_core.errors import InputError, os_reason


def make_output_folder(folder: Path, what: str = "output folder") -> None:
    """Create ``folder`` (and parents); a file in the way or no permission is one line.

    ``what`` names the folder's role in the message ("run folder", "export folder").
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise InputError(folder, "exists and is not a folder") from exc
    except OSError as exc:
        raise InputError(folder, f"cannot create the {what} ({os_reason(exc)})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(folder, f"the {what} is not writable (permission denied)")

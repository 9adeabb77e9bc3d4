"""Atomic writes: all or nothing, and the result is readable like any other file."""

from __future__ import annotations

import os
import stat

import pytest

from acseg_core.io import atomic
from acseg_core.io.atomic import atomic_path, write_text_atomic


def test_result_gets_the_umask_mode_not_mkstemps_0600(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "_UMASK", 0o022)
    target = tmp_path / "labels.png"
    write_text_atomic(target, "x")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_failed_write_leaves_old_file_and_no_temp(tmp_path) -> None:
    target = tmp_path / "project.acseg"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project.acseg"]

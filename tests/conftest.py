"""Shared fixtures. Qt runs offscreen; tests set that themselves, before Qt loads."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the app's settings (recent projects, last folders) go to a folder of the test run's
# own, here and in the app processes tests start: never into the user's settings
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="acseg-test-config-")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real labelled samples); skips where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA

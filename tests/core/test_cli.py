"""The headless CLI: verbs, version, one-line errors for bad paths."""

from __future__ import annotations

import subprocess
import sys

import pytest

from acseg_core import __version__
from acseg_core.cli.main import COMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acseg_core", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for verb in ("train", "predict", "evaluate", "export", "bench"):
        assert verb in out
    for verb in COMMANDS:  # and each verb has its own help
        with pytest.raises(SystemExit) as verb_exit:
            main([verb, "--help"])
        assert verb_exit.value.code == 0 and f"acseg-core {verb}" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"acseg-core {__version__}"


def test_no_verb_prints_help_and_fails() -> None:
    assert main([]) == 2


def test_bad_path_is_one_line_and_nonzero(tmp_path) -> None:
    missing = tmp_path / "nope.tif"
    result = run_cli("predict", str(missing))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(missing) in lines[0] and "not found" in lines[0]
    assert "Traceback" not in result.stderr

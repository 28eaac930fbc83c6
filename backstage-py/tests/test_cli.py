"""The `backstage` command the wheel installs: the same Rust CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backstage._backstage import run_cli
from conftest import INVALID


def backstage_command() -> str:
    # The console script sits beside the virtualenv's python.
    script = Path(sys.executable).parent / "backstage"
    assert script.is_file(), f"the wheel installed no `backstage` command in {script.parent}"
    return str(script)


def test_check_ok(jazzclub_manifest: Path) -> None:
    out = subprocess.run(
        [backstage_command(), "check", "-f", str(jazzclub_manifest)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{jazzclub_manifest}: ok"


def test_check_json_problems() -> None:
    manifest = next(iter(sorted(INVALID.glob("*.toml"))))
    out = subprocess.run(
        [backstage_command(), "check", "--json", "-f", str(manifest)],
        capture_output=True, text=True,
    )
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and len(doc["errors"]) == 1


def test_usage_error_exits_2() -> None:
    out = subprocess.run([backstage_command(), "no-such-verb"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "no-such-verb" in out.stderr


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "backstage", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.startswith("backstage ")


def test_run_cli_in_process(jazzclub_manifest: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # The Rust CLI writes to the process' own stdout/stderr (file descriptors 1 and 2).
    assert run_cli(["backstage", "check", "-f", str(jazzclub_manifest)]) == 0
    assert capfd.readouterr().out.strip() == f"{jazzclub_manifest}: ok"
    assert run_cli(["backstage", "check", "-f", str(sorted(INVALID.glob("*.toml"))[0])]) == 1
    assert "nothing was written" in capfd.readouterr().err
    assert run_cli(["backstage", "--no-such-flag"]) == 2
    assert "--no-such-flag" in capfd.readouterr().err

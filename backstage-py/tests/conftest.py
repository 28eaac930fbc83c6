"""Shared paths: the workspace's example Production and invalid-manifest corpus."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

WORKSPACE = Path(__file__).resolve().parents[2]
JAZZCLUB = WORKSPACE / "examples" / "jazzclub"
INVALID = WORKSPACE / "tests" / "manifests" / "invalid"


@pytest.fixture
def jazzclub_manifest() -> Path:
    return JAZZCLUB / "backstage.toml"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path: a Production's unix sockets live under it, and
    the kernel limits socket paths to 107 bytes (pytest's `tmp_path` is too deep)."""
    with tempfile.TemporaryDirectory(prefix="bs-", dir="/tmp") as name:
        yield Path(name)


@pytest.fixture
def test_venv() -> Path:
    """The virtualenv with real uWSGI and Django that `scripts/test-deps` creates."""
    venv = Path(os.environ.get("BACKSTAGE_TEST_VENV", WORKSPACE / "target" / "test-venv"))
    if not (venv / "bin" / "uwsgi").is_file() or not (venv / "bin" / "python").is_file():
        pytest.fail(f"no uWSGI in `{venv}`: run scripts/test-deps (or set BACKSTAGE_TEST_VENV)")
    return venv


@pytest.fixture
def example_copy(short_tmp: Path, test_venv: Path) -> Path:
    """A copy of the example Production under a short /tmp directory, its Stage on the test
    virtualenv and its Venues on a free port; returns the manifest's path."""
    shutil.copytree(
        JAZZCLUB,
        short_tmp,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".backstage", "__pycache__", "staticfiles", "*.sqlite3"),
    )
    manifest = short_tmp / "backstage.toml"
    text = (
        manifest.read_text(encoding="utf-8")
        .replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
        .replace('virtualenv = ".backstage/venv"', f'virtualenv = "{test_venv}"')
    )
    manifest.write_text(text, encoding="utf-8")
    return manifest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port

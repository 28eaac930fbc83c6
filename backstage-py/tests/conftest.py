"""Shared paths: the workspace's example Production and invalid-manifest corpus."""

from __future__ import annotations

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

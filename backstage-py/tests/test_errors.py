"""The exception hierarchy."""

from __future__ import annotations

import pytest

import backstage
from backstage import ApplyError, BackstageError, Problem, ProtocolError, ValidationError


def test_hierarchy() -> None:
    assert issubclass(BackstageError, Exception)
    assert issubclass(ValidationError, BackstageError)
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ProtocolError, BackstageError)
    assert issubclass(ApplyError, BackstageError)
    assert not issubclass(ProtocolError, ValueError)


def test_everything_is_exported() -> None:
    for name in backstage.__all__:
        assert hasattr(backstage, name), name
    assert BackstageError.__module__ == "backstage._errors"


def test_validation_error_carries_problems() -> None:
    problem = Problem("gigs.home.venue", 9, 9, "unknown venue `nope`")
    error = ValidationError("`x.toml` has 1 problem", [problem])
    assert error.problems == [problem]
    assert error.args == ("`x.toml` has 1 problem",)
    assert str(error) == "`x.toml` has 1 problem\n  9:9: gigs.home.venue: unknown venue `nope`"
    with pytest.raises(ValueError):
        raise error


def test_importing_backstage_does_not_import_django() -> None:
    import subprocess
    import sys

    code = "import sys, backstage; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"

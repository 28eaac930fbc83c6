"""Backstage's exception classes; `backstage._backstage` maps every Rust error onto them.

I/O failures are not wrapped: they keep Python's own `OSError` subclasses
(`FileNotFoundError`, `PermissionError`, ...) with `errno` and `filename` set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

if TYPE_CHECKING:
    from backstage._backstage import Problem

__all__ = ["BackstageError", "ValidationError", "ProtocolError", "ApplyError"]


class BackstageError(Exception):
    """Base class of every error Backstage raises (I/O errors keep their own types)."""


class ValidationError(BackstageError, ValueError):
    """The manifest is invalid; `problems` lists every problem found, in file order."""

    problems: list[Problem]

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [str(self.args[0]) if self.args else "invalid manifest"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


class ProtocolError(BackstageError):
    """A uwsgi peer spoke the protocol wrongly, or not at all (refused, timed out, closed)."""


class ApplyError(BackstageError):
    """Putting the Production in place failed; live files were rolled back to what they were.

    `sess` names the Sess that did not become healthy, and `log_tail` holds the last lines of
    its log, when the failure was that; otherwise `sess` is None and `log_tail` empty.
    """

    sess: Optional[str]
    log_tail: list[str]

    def __init__(
        self, message: str, sess: Optional[str] = None, log_tail: Iterable[str] = ()
    ) -> None:
        super().__init__(message)
        self.sess = sess
        self.log_tail = list(log_tail)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "apply failed"

"""Backstage: put Django applications live on uWSGI and nginx, and keep them live.

    >>> import backstage
    >>> production = backstage.Production.load("backstage.toml")   # doctest: +SKIP
    >>> production.check()                                          # doctest: +SKIP

Reading a manifest never raises for an invalid one: `Production.check()` raises
`ValidationError` (a `ValueError`) carrying every `Problem`, and `Production.problems()`
lists them. `plan()`, `render()`, `apply()`, `up()`, `down()` and `status()` manage it
(returning `Change`, `ApplyReport` and `Status` objects; failures raise `ApplyError`);
`deploy()`, `releases()` and `rollback()` ship code as `Release`s; and
`request()` speaks uwsgi straight to a Sess. Add `"backstage"` to Django's `INSTALLED_APPS` for `python manage.py backstage`.
Importing this package does not import Django.
"""

from backstage._backstage import (
    ApplyReport,
    Change,
    GigStatus,
    Problem,
    Production,
    Release,
    Response,
    SessStatus,
    Status,
    __version__,
    request,
)
from backstage._errors import ApplyError, BackstageError, ProtocolError, ValidationError

__all__ = [
    "ApplyError",
    "ApplyReport",
    "BackstageError",
    "Change",
    "GigStatus",
    "Problem",
    "Production",
    "ProtocolError",
    "Release",
    "Response",
    "SessStatus",
    "Status",
    "ValidationError",
    "__version__",
    "request",
]

"""Backstage: put Django applications live on uWSGI and nginx, and keep them live.

    >>> import backstage
    >>> production = backstage.Production.load("backstage.toml")   # doctest: +SKIP
    >>> production.check()                                          # doctest: +SKIP

Reading a manifest never raises for an invalid one: `Production.check()` raises
`ValidationError` (a `ValueError`) carrying every `Problem`, and `Production.problems()`
lists them. Add `"backstage"` to Django's `INSTALLED_APPS` for `python manage.py backstage`.
Importing this package does not import Django.
"""

from backstage._backstage import Problem, Production, __version__
from backstage._errors import ApplyError, BackstageError, ProtocolError, ValidationError

__all__ = [
    "ApplyError",
    "BackstageError",
    "Problem",
    "Production",
    "ProtocolError",
    "ValidationError",
    "__version__",
]

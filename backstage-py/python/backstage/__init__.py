"""Backstage: put Django applications live on uWSGI and nginx, and keep them live."""

from backstage._backstage import __version__

__all__ = ["__version__"]

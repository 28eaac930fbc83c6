"""A first `backstage.toml` derived from running Django settings (`manage.py backstage init`).

Only derives text; whether it is valid is for `Production.from_toml` (the Rust validator) to say.
Imports nothing from Django: it reads attributes of whatever settings object it is given.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["manifest_from_settings", "server_names_from_allowed_hosts"]


def manifest_from_settings(
    settings: Any,
    manifest_dir: Path,
    *,
    prefix: str = sys.prefix,
    base_prefix: str = sys.base_prefix,
    port: int | None = None,
) -> str:
    """The text of a `backstage.toml` in `manifest_dir` for the project `settings` describe:
    complete, so `backstage up` brings the site live as it is.

    Reads `BASE_DIR`, `WSGI_APPLICATION`, `SETTINGS_MODULE`, `STATIC_URL`, `STATIC_ROOT`,
    `MEDIA_URL`, `MEDIA_ROOT`, `DATABASES` and `ALLOWED_HOSTS`. The Venue listens on loopback
    at `port` (default: 8080 when free, else 8000, else a free port the kernel picks). Raises
    `ValueError` when the settings name no WSGI application.
    """
    manifest_dir = Path(manifest_dir).resolve()
    wsgi_setting = getattr(settings, "WSGI_APPLICATION", None)
    if not wsgi_setting or "." not in wsgi_setting:
        raise ValueError(
            "settings.WSGI_APPLICATION is not set (expected `project.wsgi.application`)"
        )
    module, _, attribute = str(wsgi_setting).rpartition(".")
    package = module.split(".")[0]
    name = _slug(package)[:30]
    base_dir = Path(getattr(settings, "BASE_DIR", None) or manifest_dir).resolve()
    settings_module = getattr(settings, "SETTINGS_MODULE", None)

    out = [
        "# Written by `python manage.py backstage init`"
        + (f" from `{settings_module}`" if settings_module else "")
        + ".",
        "# Edit it, then run `python manage.py backstage check`.",
        "",
        "[production]",
        f"name = {_str(name)}",
        'state_dir = ".backstage"',
        "",
        f"[acts.{name}]",
        f"root = {_str(_relative(base_dir, manifest_dir))}",
        f"wsgi = {_str(f'{module}:{attribute}')}",
    ]
    if settings_module:
        out.append(f"settings = {_str(settings_module)}")
    requirements = base_dir / "requirements.txt"
    if requirements.is_file():
        out.append(f"requirements = {_str(_relative(requirements, manifest_dir))}")
    out.extend(_static_lines(settings, base_dir, manifest_dir))
    out.extend(_media_lines(settings, base_dir))
    out.extend(_database_lines(settings, base_dir))

    out += ["", "[stages.local]"]
    if prefix != base_prefix:
        out.append(f"virtualenv = {_str(prefix)}   # the virtualenv running manage.py")
    else:
        out.append('virtualenv = ".backstage/venv"   # created on demand')

    hosts = server_names_from_allowed_hosts(getattr(settings, "ALLOWED_HOSTS", []) or [])
    out += [
        "",
        f"[sess.{name}-a]",
        f"act = {_str(name)}",
        'stage = "local"',
        "",
        f"[venues.{name}]",
        f"server_names = [{', '.join(_str(h) for h in hosts)}]",
        f"listen = [{_str(f'127.0.0.1:{port or free_loopback_port()}')}]",
        "",
        f"[gigs.{name}]",
        f"venue = {_str(name)}",
        f"sess = [{_str(name + '-a')}]",
        'path = "/"',
        "",
    ]
    return "\n".join(out)


def server_names_from_allowed_hosts(allowed_hosts: Any) -> list[str]:
    """nginx server names for Django's `ALLOWED_HOSTS`.

    `*` and IP addresses are skipped (a Venue is a DNS namespace); `.example.com` becomes
    `example.com` and `*.example.com`. With nothing left, `localhost`.
    """
    names: list[str] = []
    for raw in allowed_hosts:
        host = str(raw).strip().lower()
        if not host or host == "*" or _is_ip(host):
            continue
        if host.startswith("."):
            candidates = [host[1:], "*" + host]
        else:
            candidates = [host]
        names.extend(c for c in candidates if c and c not in names)
    return names or ["localhost"]


def free_loopback_port() -> int:
    """8080 when nothing listens there, else 8000, else a port the kernel finds free."""
    for candidate in (8080, 8000, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            found: int = s.getsockname()[1]
            return found
    raise OSError("no free port on 127.0.0.1")


def _media_lines(settings: Any, base_dir: Path) -> list[str]:
    """Uploads: `media` when MEDIA_URL is a local prefix and MEDIA_ROOT is inside the project
    (Backstage keeps the directory in the Act's shared dir, so uploads outlive releases)."""
    url = str(getattr(settings, "MEDIA_URL", None) or "")
    root = getattr(settings, "MEDIA_ROOT", None)
    if not url or not root or re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE):
        return []
    if not url.strip("/"):
        return ["# MEDIA_URL is `/`: give uploads a prefix of their own to serve them"]
    prefix = "/" + url.strip("/") + "/"
    root_path = Path(root).resolve()
    if base_dir not in root_path.parents:
        return [f"# MEDIA_ROOT {os.fspath(root_path)} is outside the project: not served here"]
    rel = root_path.relative_to(base_dir).as_posix()
    return [f"media = {{ {_str(prefix)} = {_str(rel)} }}   # uploads, kept across releases"]


def _database_lines(settings: Any, base_dir: Path) -> list[str]:
    """The release phase runs migrations when there is a database; a sqlite file inside the
    project is `shared`, so every release uses the one copy."""
    databases = getattr(settings, "DATABASES", None) or {}
    default = databases.get("default") if isinstance(databases, dict) else None
    if not isinstance(default, dict):
        return []
    engine = str(default.get("ENGINE", ""))
    if not engine or engine.endswith(".dummy"):
        return []
    out = ['release = ["python manage.py migrate --noinput"]   # before each switch']
    name = default.get("NAME")
    if engine.endswith("sqlite3") and name and str(name) != ":memory:":
        path = Path(name).resolve()
        if base_dir in path.parents:
            out.append(
                f"shared = [{_str(path.relative_to(base_dir).as_posix())}]"
                "   # outlives releases"
            )
    return out


def _static_lines(settings: Any, base_dir: Path, manifest_dir: Path) -> list[str]:
    url = str(getattr(settings, "STATIC_URL", None) or "")
    root = getattr(settings, "STATIC_ROOT", None)
    if not url or not root:
        return []
    if re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE):
        return [f"# STATIC_URL {url} is served elsewhere; nginx does not serve static files here"]
    prefix = "/" + url.strip("/") + "/" if url.strip("/") else None
    root_path = Path(root).resolve()
    if prefix is None:
        return ["# STATIC_URL is `/`: give static files a prefix of their own to serve them"]
    entry = f"static = {{ {_str(prefix)} = {_str(_relative(root_path, manifest_dir))} }}"
    if base_dir != root_path and base_dir not in root_path.parents:
        # A Sess may only expose directories inside its Act; leave the choice to the user.
        return [f"# STATIC_ROOT is outside the project: {entry}"]
    return [entry]


def _relative(path: Path, start: Path) -> str:
    """`path` relative to `start` when inside it, else absolute."""
    if path == start:
        return "."
    if start in path.parents:
        return path.relative_to(start).as_posix()
    return os.fspath(path)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = "site-" + slug if slug else "site"
    return slug


def _str(value: str) -> str:
    # A JSON string with raw non-ASCII is a valid TOML basic string (same escapes, \uXXXX).
    return json.dumps(value, ensure_ascii=False)

"""`python manage.py backstage VERB`: Backstage from Django's `manage.py`.

Verbs: `check` (validate the manifest, report every problem) and `init` (write a first
`backstage.toml` derived from the running settings). Without `-f`, the manifest is
`backstage.toml` beside `manage.py` or in its nearest parent directory.
"""

from __future__ import annotations

import json
import os
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backstage import BackstageError, Production
from backstage._derive import manifest_from_settings


class Command(BaseCommand):
    help = (
        "Backstage: put this Django project live on uWSGI and nginx. "
        "`init` writes a first backstage.toml from these settings; `check` validates it."
    )
    # Backstage reads its own manifest; Django's system checks have no say in it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
        check = verbs.add_parser(
            "check",
            help="validate backstage.toml and report every problem; writes nothing",
            description="Validate the manifest and report every problem at once. "
            "Exit 0 when the Production is valid, 1 when problems were found.",
        )
        check.add_argument(
            "-f",
            "--file",
            metavar="FILE",
            help="the manifest [default: backstage.toml beside manage.py or in a parent]",
        )
        check.add_argument(
            "--json",
            action="store_true",
            help='print one JSON document: {"ok": bool, "errors": [...]}',
        )
        init = verbs.add_parser(
            "init",
            help="write a backstage.toml derived from these settings, for you to edit",
            description="Derive a backstage.toml from the running settings (BASE_DIR, "
            "WSGI_APPLICATION, STATIC_URL/STATIC_ROOT, ALLOWED_HOSTS), validate it, and "
            "write it beside manage.py.",
        )
        init.add_argument(
            "-f",
            "--file",
            metavar="FILE",
            help="where to write it [default: backstage.toml beside manage.py]",
        )
        init.add_argument(
            "--force", action="store_true", help="replace an existing file"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verb = options["verb"]
        if verb == "check":
            self.check_manifest(options["file"], as_json=options["json"])
        elif verb == "init":
            self.init_manifest(options["file"], force=options["force"])
        else:  # argparse only lets the verbs above through
            raise CommandError(f"unknown verb `{verb}`")

    def check_manifest(self, file: str | None, *, as_json: bool) -> None:
        try:
            production = _read(file)
        except (BackstageError, OSError) as e:
            if as_json:
                error = {"path": "", "line": 0, "column": 0, "message": str(e), "hint": None}
                self.stdout.write(json.dumps({"ok": False, "errors": [error]}))
            raise CommandError(f"{e}") from e
        problems = production.problems()
        if as_json:
            errors = [
                {
                    "path": p.path,
                    "line": p.line,
                    "column": p.column,
                    "message": p.message,
                    "hint": p.hint,
                }
                for p in problems
            ]
            self.stdout.write(json.dumps({"ok": not problems, "errors": errors}))
        elif not problems:
            self.stdout.write(self.style.SUCCESS(f"{production.path}: ok"))
        else:
            for p in problems:
                self.stderr.write(f"{production.path}:{p}")
        if problems:
            raise CommandError(
                f"{len(problems)} problem{'' if len(problems) == 1 else 's'} in "
                f"`{production.path}`; nothing was written"
            )

    def init_manifest(self, file: str | None, *, force: bool) -> None:
        target = Path(file) if file else _manage_py_dir() / "backstage.toml"
        target = target.resolve()
        if target.exists() and not force:
            raise CommandError(f"`{target}` already exists; pass --force to replace it")
        try:
            text = manifest_from_settings(settings, target.parent)
        except ValueError as e:
            raise CommandError(str(e)) from e
        problems = Production.from_toml(text, base_dir=target.parent).problems()
        if problems:
            listing = "\n".join(f"  {p}" for p in problems)
            raise CommandError(
                f"the manifest derived from these settings is invalid; nothing was written:\n"
                f"{listing}"
            )
        try:
            # Write beside the target, then rename: a reader never sees half a file.
            partial = target.with_name(f".{target.name}.partial")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, target)
        except OSError as e:
            raise CommandError(f"cannot write `{target}`: {e}") from e
        self.stdout.write(
            self.style.SUCCESS(f"wrote {target}")
            + "\nedit it, then run `python manage.py backstage check`"
        )


def _read(file: str | None) -> Production:
    if file:
        return Production.load(file)
    return Production.discover(_manage_py_dir())


def _manage_py_dir() -> Path:
    """The directory of `manage.py`: the running script's, else `settings.BASE_DIR`."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "manage.py":
        return script.resolve().parent
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        return Path(base_dir)
    raise CommandError(
        "cannot tell where manage.py is (no settings.BASE_DIR); name the manifest with -f FILE"
    )

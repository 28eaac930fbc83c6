"""`python manage.py backstage VERB`: Backstage from Django's `manage.py`.

Verbs: `check` (validate the manifest, report every problem), `init` (write a first
`backstage.toml` derived from the running settings), `plan`, `apply`, `up`, `down`, `status`
and `render --out DIR` (the Production Manager), `deploy`, `releases`, `rollback` and
`run ACT -- COMMAND` (the Act Manager), as `backstage` does on the command line. Without
`-f`, the manifest is `backstage.toml` beside `manage.py` or in its nearest parent directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backstage import ApplyReport, BackstageError, Change, Production, Release, Status
from backstage._derive import manifest_from_settings


class Command(BaseCommand):
    help = (
        "Backstage: put this Django project live on uWSGI and nginx. "
        "`init` writes a first backstage.toml from these settings; `check` validates it; "
        "`plan`, `apply`, `up`, `down`, `status` and `render` manage it; `deploy`, "
        "`releases`, `rollback` and `run` ship code."
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
        _accept_django_options(check)
        _accept_django_options(init)

        for verb, help_text, description, has_json in _MANAGER_VERBS:
            sub = verbs.add_parser(verb, help=help_text, description=description)
            _accept_django_options(sub)
            sub.add_argument(
                "-f",
                "--file",
                metavar="FILE",
                help="the manifest [default: backstage.toml beside manage.py or in a parent]",
            )
            if has_json:
                sub.add_argument(
                    "--json", action="store_true", help="print one JSON document"
                )
            if verb == "deploy":
                sub.add_argument("acts", nargs="*", metavar="ACT", help="the Acts [default: all]")
                sub.add_argument(
                    "--ref", metavar="REF", help="the git ref to deploy [default: HEAD]"
                )
            if verb == "releases":
                sub.add_argument("act", nargs="?", metavar="ACT", help="only this Act's")
            if verb == "rollback":
                sub.add_argument("act", metavar="ACT", help="the Act to roll back")
                sub.add_argument(
                    "--to", metavar="ID", help="the release [default: the one before the live one]"
                )
            if verb == "run":
                sub.add_argument("act", metavar="ACT", help="the Act whose live release it runs in")
                sub.add_argument(
                    "command", nargs="+", metavar="COMMAND", help="the command, after `--`"
                )
            if verb == "render":
                sub.add_argument(
                    "--out",
                    metavar="DIR",
                    required=True,
                    help="the directory to write into (mirrors the live paths)",
                )

    def handle(self, *args: Any, **options: Any) -> None:
        verb = options["verb"]
        if verb == "check":
            self.check_manifest(options["file"], as_json=options["json"])
        elif verb == "init":
            self.init_manifest(options["file"], force=options["force"])
        elif verb in {v[0] for v in _MANAGER_VERBS}:
            try:
                self.manage(verb, _read(options["file"]), options)
            except (BackstageError, OSError) as e:
                raise CommandError(str(e)) from e
        else:  # argparse only lets the verbs above through
            raise CommandError(f"unknown verb `{verb}`")

    def manage(self, verb: str, production: Production, options: dict[str, Any]) -> None:
        production.check()
        as_json = bool(options.get("json"))
        if verb == "plan":
            changes = production.plan()
            if as_json:
                self.stdout.write(json.dumps({"changes": [_change(c) for c in changes]}))
            elif not changes:
                self.stdout.write("nothing to change")
            else:
                for c in changes:
                    self.stdout.write(f"{c.action} {c.kind} {c.name} {c.file} ({c.reason})")
        elif verb in ("apply", "up"):
            report = production.apply() if verb == "apply" else production.up()
            if as_json:
                self.stdout.write(json.dumps(_report(report)))
            else:
                for c in report.changes:
                    self.stdout.write(f"{c.action} {c.kind} {c.name} {c.file}")
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{verb}: {len(report.changes)} change(s), nginx "
                        f"{'reloaded' if report.nginx_reloaded else 'not reloaded'}"
                    )
                )
        elif verb == "down":
            production.down()
            self.stdout.write(self.style.SUCCESS(f"production `{production.name}` is down"))
        elif verb == "status":
            status = production.status()
            if as_json:
                self.stdout.write(json.dumps(_status(status)))
            else:
                for s in status.sess:
                    self.stdout.write(
                        f"sess {s.name}: {s.state}, {s.workers} worker(s), "
                        f"{s.requests} request(s)" + (f" ({s.reason})" if s.reason else "")
                    )
                for g in status.gigs:
                    answer = g.http_status if g.http_status is not None else g.error
                    self.stdout.write(f"gig {g.name}: {g.url} {answer}")
        elif verb == "render":
            for path in production.render(options["out"]):
                self.stdout.write(str(path))
        elif verb in ("deploy", "rollback"):
            if verb == "deploy":
                done = production.deploy(options["acts"] or None, ref=options["ref"])
            else:
                done = [production.rollback(options["act"], to=options["to"])]
            if as_json:
                self.stdout.write(json.dumps({"releases": [_release(r) for r in done]}))
            else:
                for r in done:
                    self.stdout.write(
                        self.style.SUCCESS(f"{verb}: Act `{r.act}` runs release {r.id}")
                    )
                if not done:
                    self.stdout.write("nothing to deploy: every Act runs its committed code")
                if verb == "rollback":
                    self.stdout.write("note: migrations are not reversed")
        elif verb == "releases":
            listed = production.releases(options["act"])
            if as_json:
                self.stdout.write(json.dumps({"releases": [_release(r) for r in listed]}))
            else:
                for r in listed:
                    mark = "*" if r.live else " "
                    self.stdout.write(
                        f"{mark} {r.act} {r.id} {r.revision[:12]} {r.created} "
                        f"release phase: {r.release_phase}"
                    )
        elif verb == "run":
            # The CLI runs it (environment, account, exit code), as `backstage run` does.
            from backstage._backstage import run_cli

            argv = ["backstage", "run", "-f", str(production.path), options["act"], "--"]
            code = run_cli([*argv, *options["command"]])
            if code:
                raise CommandError(f"the command exited with {code}", returncode=code)

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


def _accept_django_options(sub: ArgumentParser) -> None:
    """Django's own options (`--settings`, `--pythonpath`, `-v`, ...) after the verb too:
    `manage.py backstage init --settings=mysite.prod` as well as before it. Django reads
    `--settings` and `--pythonpath` from anywhere on the command line before the command
    runs; here they only need to be accepted. Unset, they leave the values given before the
    verb alone."""
    quiet = argparse.SUPPRESS
    sub.add_argument("--settings", default=quiet, help=quiet)
    sub.add_argument("--pythonpath", default=quiet, help=quiet)
    sub.add_argument("--traceback", action="store_true", default=quiet, help=quiet)
    sub.add_argument(
        "-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=quiet, help=quiet
    )
    sub.add_argument("--no-color", action="store_true", default=quiet, help=quiet)
    sub.add_argument("--force-color", action="store_true", default=quiet, help=quiet)
    sub.add_argument("--skip-checks", action="store_true", default=quiet, help=quiet)


def _release(r: Release) -> dict[str, Any]:
    return {
        "act": r.act,
        "id": r.id,
        "revision": r.revision,
        "created": r.created,
        "live": r.live,
        "release_phase": r.release_phase,
    }


_MANAGER_VERBS = [
    (
        "plan",
        "show what apply would change; writes nothing",
        "List every file apply would create, update or delete, and why.",
        True,
    ),
    (
        "apply",
        "make the live files match the manifest",
        "Write vassals and nginx files; new Sess must answer before nginx switches, and a "
        "failure rolls every change back.",
        True,
    ),
    (
        "up",
        "user mode: build the Stages, start uWSGI and nginx, apply",
        "Bring the whole Production live and wait until every Gig answers.",
        False,
    ),
    (
        "down",
        "user mode: stop nginx and the uWSGI Emperor",
        "Stop this Production's nginx and Emperor, and with it every Sess.",
        False,
    ),
    (
        "status",
        "every Sess and every Gig, as they are now",
        "Ask every Sess' stats socket and every Gig through nginx.",
        True,
    ),
    (
        "render",
        "write the files apply would write into a directory, for review",
        "Render every vassal and nginx file under --out DIR; live files are not touched.",
        False,
    ),
    (
        "deploy",
        "ship the committed code: build a release, run its release phase, switch blue/green",
        "Build a release of each Act (the committed HEAD of a git work tree, or a snapshot), "
        "run collectstatic, Django's check and the Act's release commands in it, then switch "
        "every Sess to it; any failure switches nothing.",
        True,
    ),
    (
        "releases",
        "the kept releases, the live one marked",
        "List each Act's kept releases: id, revision, time, release phase; * marks the live one.",
        True,
    ),
    (
        "rollback",
        "back to a kept release, blue/green (migrations are not reversed)",
        "Switch an Act back to a kept release (default: the one before the live one) with no "
        "rebuild and no release phase.",
        True,
    ),
    (
        "run",
        "a one-off command in an Act's live release and environment",
        "Run COMMAND in the Act's live release with its environment (system mode: as its Sess' "
        "account); its exit code is passed through.",
        False,
    ),
]


def _change(c: Change) -> dict[str, str]:
    return {
        "action": c.action,
        "kind": c.kind,
        "name": c.name,
        "file": str(c.file),
        "reason": c.reason,
    }


def _report(r: ApplyReport) -> dict[str, Any]:
    return {
        "changes": [_change(c) for c in r.changes],
        "recovered": [str(p) for p in r.recovered],
        "nginx_reloaded": r.nginx_reloaded,
        "checked_sess": r.checked_sess,
    }


def _status(s: Status) -> dict[str, Any]:
    return {
        "sess": [
            {
                "name": x.name,
                "state": x.state,
                "workers": x.workers,
                "requests": x.requests,
                "rss_bytes": x.rss_bytes,
                "reason": x.reason,
                "log_tail": x.log_tail,
            }
            for x in s.sess
        ],
        "gigs": [
            {"name": g.name, "url": g.url, "http_status": g.http_status, "error": g.error}
            for g in s.gigs
        ],
    }


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

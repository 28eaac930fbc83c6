"""`python manage.py backstage`: through `call_command`, and through a real `manage.py`."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import django
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from backstage import Production
from backstage._derive import manifest_from_settings, server_names_from_allowed_hosts
from conftest import INVALID, JAZZCLUB

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["backstage"],
        WSGI_APPLICATION="mysite.wsgi.application",
        ALLOWED_HOSTS=[],
    )
    django.setup()


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("backstage", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- check ---------------------------------------------------------------------------------


def test_check_ok(jazzclub_manifest: Path) -> None:
    out, err = run("check", "-f", str(jazzclub_manifest))
    assert out.strip() == f"{jazzclub_manifest}: ok"
    assert err == ""


def test_check_json_ok(jazzclub_manifest: Path) -> None:
    out, _ = run("check", "--json", "-f", str(jazzclub_manifest))
    assert json.loads(out) == {"ok": True, "errors": []}


def test_check_problems_is_command_error() -> None:
    manifest = INVALID / "venue-server-name-invalid.toml"
    if not manifest.exists():
        manifest = sorted(INVALID.glob("*.toml"))[0]
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"1 problem in `.*`; nothing was written"):
        call_command("backstage", "check", "-f", str(manifest), stdout=io.StringIO(), stderr=err)
    problem = Production.load(manifest).problems()[0]
    assert err.getvalue().strip() == f"{manifest}:{problem}"


def test_check_json_problems() -> None:
    manifest = sorted(INVALID.glob("*.toml"))[0]
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("backstage", "check", "--json", "-f", str(manifest), stdout=out)
    doc = json.loads(out.getvalue())
    problem = Production.load(manifest).problems()[0]
    assert doc == {
        "ok": False,
        "errors": [
            {
                "path": problem.path,
                "line": problem.line,
                "column": problem.column,
                "message": problem.message,
                "hint": problem.hint,
            }
        ],
    }


def test_check_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file or directory"):
        run("check", "-f", str(tmp_path / "missing.toml"))


def test_check_finds_the_manifest_from_base_dir(short_tmp: Path) -> None:
    project = short_tmp / "project"
    project.mkdir()
    (short_tmp / "backstage.toml").write_text('[production]\nname = "up-there"\n')
    with override_settings(BASE_DIR=project):
        out, _ = run("check")
    assert out.strip() == f"{short_tmp / 'backstage.toml'}: ok"


def test_check_without_any_manifest(short_tmp: Path) -> None:
    with override_settings(BASE_DIR=short_tmp), pytest.raises(CommandError, match="backstage.toml"):
        run("check")


# --- init ----------------------------------------------------------------------------------


def test_init_writes_a_valid_manifest(short_tmp: Path) -> None:
    (short_tmp / "requirements.txt").write_text("django\n")
    with override_settings(
        BASE_DIR=short_tmp,
        WSGI_APPLICATION="my_site.wsgi.application",
        STATIC_URL="static/",
        STATIC_ROOT=short_tmp / "staticfiles",
        MEDIA_URL="/uploads/",
        MEDIA_ROOT=short_tmp / "uploads",
        ALLOWED_HOSTS=["example.com", ".example.org", "*", "10.0.0.1", "[::1]"],
    ):
        out, _ = run("init")
    manifest = short_tmp / "backstage.toml"
    assert f"wrote {manifest}" in out
    production = Production.load(manifest)
    production.check()
    assert production.name == "my-site"
    assert production.acts == ["my-site"]
    assert production.sess == ["my-site-a"]
    assert production.gigs == ["my-site"]
    text = manifest.read_text()
    assert 'wsgi = "my_site.wsgi:application"' in text
    assert 'root = "."' in text
    assert 'requirements = "requirements.txt"' in text
    assert 'static = { "/static/" = "staticfiles" }' in text
    assert 'server_names = ["example.com", "example.org", "*.example.org"]' in text
    # Complete: a loopback port that was free, uploads kept across releases (the database:
    # see the next test).
    listen = re.search(r'^listen = \["127\.0\.0\.1:(\d+)"\]$', text, re.MULTILINE)
    assert listen, text
    assert 0 < int(listen.group(1)) < 65536
    assert 'media = { "/uploads/" = "uploads" }' in text


def test_init_migrates_in_the_release_phase_and_shares_a_sqlite_file(short_tmp: Path) -> None:
    config = SimpleNamespace(
        WSGI_APPLICATION="mysite.wsgi.application",
        BASE_DIR=short_tmp,
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": short_tmp / "db.sqlite3"}
        },
    )
    text = manifest_from_settings(config, short_tmp, port=8123)
    assert 'release = ["python manage.py migrate --noinput"]' in text
    assert 'shared = ["db.sqlite3"]' in text
    assert Production.from_toml(text, base_dir=short_tmp).problems() == []
    # The tests run in a virtualenv, so the Stage is that virtualenv.
    assert sys.prefix != sys.base_prefix
    assert f"virtualenv = {json.dumps(sys.prefix)}" in text


def test_init_leaves_media_and_databases_outside_the_project_alone(short_tmp: Path) -> None:
    config = SimpleNamespace(
        WSGI_APPLICATION="mysite.wsgi.application",
        BASE_DIR=short_tmp / "project",
        MEDIA_URL="/media/",
        MEDIA_ROOT="/var/lib/uploads",
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "club"}},
    )
    (short_tmp / "project").mkdir()
    text = manifest_from_settings(config, short_tmp / "project", port=8123)
    assert "# MEDIA_ROOT /var/lib/uploads is outside the project" in text
    assert "\nmedia = " not in text
    assert 'release = ["python manage.py migrate --noinput"]' in text
    assert "shared = " not in text, "a server database is not a file to share"
    assert 'listen = ["127.0.0.1:8123"]' in text
    assert Production.from_toml(text, base_dir=short_tmp / "project").problems() == []


def test_init_refuses_to_overwrite(short_tmp: Path) -> None:
    manifest = short_tmp / "backstage.toml"
    manifest.write_text("# mine\n")
    with override_settings(BASE_DIR=short_tmp):
        with pytest.raises(CommandError, match="already exists; pass --force"):
            run("init")
        assert manifest.read_text() == "# mine\n"
        run("init", "--force")
    assert Production.load(manifest).name == "mysite"


def test_init_to_a_named_file(short_tmp: Path) -> None:
    target = short_tmp / "elsewhere" / "prod.toml"
    target.parent.mkdir()
    with override_settings(BASE_DIR=short_tmp):
        run("init", "-f", str(target))
    assert 'root = ".."' not in target.read_text()
    assert Production.load(target).problems() == []


def test_init_refuses_an_invalid_derivation(short_tmp: Path) -> None:
    with override_settings(BASE_DIR=short_tmp, ALLOWED_HOSTS=["bad_host_name.example"]):
        with pytest.raises(CommandError, match="invalid; nothing was written") as info:
            run("init")
    assert "venues.mysite.server_names[0]" in str(info.value)
    assert not (short_tmp / "backstage.toml").exists()


def test_init_without_wsgi_application(short_tmp: Path) -> None:
    with override_settings(BASE_DIR=short_tmp, WSGI_APPLICATION=None):
        with pytest.raises(CommandError, match="WSGI_APPLICATION"):
            run("init")


# --- the derivation itself -----------------------------------------------------------------


def test_server_names_from_allowed_hosts() -> None:
    assert server_names_from_allowed_hosts([]) == ["localhost"]
    assert server_names_from_allowed_hosts(["*", "127.0.0.1", "[::1]"]) == ["localhost"]
    assert server_names_from_allowed_hosts([".localhost", "localhost", "Jazz.Example"]) == [
        "localhost",
        "*.localhost",
        "jazz.example",
    ]


def test_static_outside_the_project_is_left_commented(short_tmp: Path) -> None:
    project = short_tmp / "project"
    project.mkdir()
    config = SimpleNamespace(
        BASE_DIR=project,
        WSGI_APPLICATION="club.wsgi.application",
        STATIC_URL="/static/",
        STATIC_ROOT=short_tmp / "www",
        ALLOWED_HOSTS=["jazz.localhost"],
    )
    text = manifest_from_settings(config, project, prefix="/usr", base_prefix="/usr")
    assert "# STATIC_ROOT is outside the project" in text
    assert 'virtualenv = ".backstage/venv"' in text
    assert Production.from_toml(text, base_dir=project).problems() == []


def test_static_on_a_cdn_is_not_served(short_tmp: Path) -> None:
    config = SimpleNamespace(
        BASE_DIR=short_tmp,
        WSGI_APPLICATION="club.wsgi.application",
        STATIC_URL="https://cdn.example/static/",
        STATIC_ROOT=short_tmp / "static",
    )
    text = manifest_from_settings(config, short_tmp)
    assert "static = " not in text.replace("# STATIC_URL", "")
    assert Production.from_toml(text, base_dir=short_tmp).problems() == []


# --- a real Django project, a real manage.py -----------------------------------------------


@pytest.fixture
def jazzclub_copy(short_tmp: Path) -> Path:
    """The example Production copied, with "backstage" added to the club's INSTALLED_APPS."""
    copy = short_tmp / "jazzclub"
    shutil.copytree(
        JAZZCLUB, copy, ignore=shutil.ignore_patterns(".backstage", "staticfiles", "__pycache__")
    )
    settings_py = copy / "club" / "club" / "settings.py"
    settings_py.write_text(settings_py.read_text() + '\nINSTALLED_APPS += ["backstage"]\n')
    return copy


def manage(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project / "club",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_check(jazzclub_copy: Path) -> None:
    done = manage(jazzclub_copy, "backstage", "check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{jazzclub_copy / 'backstage.toml'}: ok"


def test_manage_py_check_failure_exits_1(jazzclub_copy: Path) -> None:
    manifest = jazzclub_copy / "backstage.toml"
    manifest.write_text(manifest.read_text().replace('name = "jazzclub"', 'name = "Jazz Club"'))
    done = manage(jazzclub_copy, "backstage", "check")
    assert done.returncode == 1
    assert f"{manifest}:6:8: production.name:" in done.stderr
    assert "CommandError: 1 problem in" in done.stderr


def test_manage_py_help_lists_the_verbs(jazzclub_copy: Path) -> None:
    done = manage(jazzclub_copy, "backstage", "--help")
    assert done.returncode == 0, done.stderr
    verbs = re.findall(r"^    (\w+) +\w", done.stdout, re.MULTILINE)
    assert verbs == [
        "check",
        "init",
        "plan",
        "apply",
        "up",
        "down",
        "status",
        "render",
        "deploy",
        "releases",
        "rollback",
        "run",
    ]


def test_manage_py_usage_error_exits_2(jazzclub_copy: Path) -> None:
    done = manage(jazzclub_copy, "backstage", "check", "--no-such-option")
    assert done.returncode == 2
    assert "--no-such-option" in done.stderr
    done = manage(jazzclub_copy, "backstage")
    assert done.returncode == 2
    assert "required: VERB" in done.stderr


def test_manage_py_init_then_check(jazzclub_copy: Path) -> None:
    # Django's global options after the verb, as a user types them.
    done = manage(jazzclub_copy, "backstage", "init", "--settings=club.settings", "-v", "2")
    assert done.returncode == 0, done.stderr
    written = jazzclub_copy / "club" / "backstage.toml"
    production = Production.load(written)
    production.check()
    assert (production.name, production.acts, production.venues) == ("club", ["club"], ["club"])
    text = written.read_text()
    assert 'settings = "club.settings"' in text
    assert 'static = { "/static/" = "staticfiles" }' in text
    assert 'server_names = ["localhost", "*.localhost"]' in text
    assert 'media = { "/media/" = "media" }' in text
    assert 'shared = ["db.sqlite3"]' in text
    assert "listen = " in text
    # Beside manage.py now, so it is the one `check` finds.
    done = manage(jazzclub_copy, "backstage", "check", "--settings", "club.settings")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{written}: ok"
    # A second init keeps the user's edits.
    done = manage(jazzclub_copy, "backstage", "init")
    assert done.returncode == 1
    assert "already exists; pass --force" in done.stderr


# --- the Production Manager verbs ------------------------------------------------------------


def test_plan_json_lists_the_changes(example_copy: Path) -> None:
    out, _ = run("plan", "-f", str(example_copy), "--json")
    changes = json.loads(out)["changes"]
    assert {c["action"] for c in changes} == {"create"}
    assert {"vassal", "site", "nginx_conf"} <= {c["kind"] for c in changes}
    assert [c["name"] for c in changes if c["kind"] == "vassal"] == [
        "club-a",
        "club-b",
        "club-late",
    ]


def test_render_writes_into_out(example_copy: Path, short_tmp: Path) -> None:
    out_dir = short_tmp / "rendered"
    out, _ = run("render", "-f", str(example_copy), "--out", str(out_dir))
    written = [Path(line) for line in out.splitlines()]
    assert written
    for path in written:
        assert path.is_relative_to(out_dir)
        assert path.read_text(encoding="utf-8").startswith("# backstage: managed by Backstage")


def test_manager_verbs_fail_with_command_error(short_tmp: Path) -> None:
    bad = short_tmp / "backstage.toml"
    bad.write_text("[production]\nname = 'Jazz Club'\n", encoding="utf-8")
    for verb in ("plan", "status", "apply"):
        with pytest.raises(CommandError, match="invalid"):
            run(verb, "-f", str(bad))


def test_manage_py_backstage_releases_and_run(jazzclub_copy: Path) -> None:
    done = manage(jazzclub_copy, "backstage", "releases", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"releases": []}
    done = manage(jazzclub_copy, "backstage", "run", "club", "--", "true")
    assert done.returncode == 1
    assert "has no live release yet" in done.stderr, done.stderr

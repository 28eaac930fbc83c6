"""The Production Manager and the uwsgi client from Python, against real uWSGI and nginx."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

import backstage
from backstage import ApplyError, ProtocolError, Production, ValidationError

MARKER = "# backstage: managed by Backstage for production `jazzclub`"


def test_plan_lists_every_file_to_create(example_copy: Path) -> None:
    production = Production.load(example_copy)
    changes = production.plan()
    assert {c.action for c in changes} == {"create"}
    kinds = {c.kind for c in changes}
    assert {"vassal", "site", "nginx_conf"} <= kinds, kinds
    vassals = sorted(c.name for c in changes if c.kind == "vassal")
    assert vassals == ["club-a", "club-b", "club-late"]
    for c in changes:
        assert isinstance(c.file, Path)
        assert c.file.is_relative_to(example_copy.parent), c.file
        assert not c.file.exists()
        assert c.reason
    # plan writes nothing
    assert production.plan() == changes


def test_render_writes_marked_files_and_leaves_live_paths_alone(
    example_copy: Path, short_tmp: Path
) -> None:
    production = Production.load(example_copy)
    out = short_tmp / "out"
    written = production.render(out)
    assert len(written) == len(production.plan())
    for path in written:
        assert isinstance(path, Path)
        assert path.is_relative_to(out), path
        assert path.read_text(encoding="utf-8").splitlines()[0].startswith(MARKER), path
    assert not production.vassal_dir.exists() or not any(production.vassal_dir.iterdir())


def test_status_of_a_production_never_started(example_copy: Path) -> None:
    status = Production.load(example_copy).status()
    assert [s.name for s in status.sess] == ["club-a", "club-b", "club-late"]
    assert {s.state for s in status.sess} == {"stopped"}
    assert [g.name for g in status.gigs] == ["jazz-home", "jazz-late"]
    for gig in status.gigs:
        assert gig.http_status is None
        assert gig.error
        assert gig.url.startswith("http://jazz.localhost:")


def test_manager_methods_refuse_an_invalid_production(short_tmp: Path) -> None:
    production = Production.from_toml("[production]\nname = 'Jazz Club'\n", base_dir=short_tmp)
    for method in (production.plan, production.status, production.apply):
        with pytest.raises(ValidationError):
            method()
    with pytest.raises(ValidationError):
        production.render(short_tmp / "out")


APP = b'''
def application(environ, start_response):
    body = environ["REQUEST_METHOD"].encode() + b" " + environ["PATH_INFO"].encode()
    body += b" " + environ.get("HTTP_X_BAND", "").encode() + b" "
    body += environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Club", "jazz")])
    return [body]
'''


@pytest.fixture
def uwsgi_socket(short_tmp: Path, test_venv: Path) -> Iterator[Path]:
    """A real uWSGI master serving a small WSGI app on a unix socket; stopped with SIGINT."""
    (short_tmp / "app.py").write_bytes(APP)
    sock = short_tmp / "s.sock"
    log = short_tmp / "uwsgi.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(test_venv / "bin" / "uwsgi"),
                "--master",
                "--socket",
                str(sock),
                "--wsgi-file",
                str(short_tmp / "app.py"),
                "--processes",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=short_tmp,
        )
    try:
        for _ in range(200):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert sock.exists(), log.read_text(errors="replace")
        yield sock
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_request_speaks_uwsgi_to_a_real_server(uwsgi_socket: Path) -> None:
    response = backstage.request(str(uwsgi_socket), "/hello")
    assert response.status == 201
    assert ("X-Club", "jazz") in response.headers
    assert response.body == b"GET /hello  "

    response = backstage.request(
        str(uwsgi_socket),
        "/echo",
        method="POST",
        headers={"X-Band": "trio"},
        body=b"\x00take five\xff",
        timeout=5.0,
    )
    assert response.status == 201
    assert response.body == b"POST /echo trio \x00take five\xff"

    response = backstage.request(str(uwsgi_socket), "/", headers=[("X-Band", "quartet")])
    assert response.body == b"GET / quartet "


def test_request_to_a_dead_socket_is_a_protocol_error(short_tmp: Path) -> None:
    with pytest.raises(ProtocolError, match="nothing.sock"):
        backstage.request(str(short_tmp / "nothing.sock"), "/", timeout=2.0)


def test_request_rejects_a_bad_target_and_timeout() -> None:
    with pytest.raises(ValueError, match="host:port"):
        backstage.request("localhost", "/")
    with pytest.raises(ValueError, match="timeout"):
        backstage.request("127.0.0.1:1", "/", timeout=-1.0)


def test_apply_rejects_a_bad_health_timeout(example_copy: Path) -> None:
    with pytest.raises(ValueError, match="health_timeout"):
        Production.load(example_copy).apply(health_timeout=0.0)


def test_apply_error_carries_sess_and_log_tail() -> None:
    error = ApplyError("Sess `club-a` did not become healthy", "club-a", ["line 1", "line 2"])
    assert (error.sess, error.log_tail, str(error)) == (
        "club-a",
        ["line 1", "line 2"],
        "Sess `club-a` did not become healthy",
    )
    assert ApplyError("nginx rejects").sess is None


def test_the_example_production_goes_up_and_down(example_copy: Path) -> None:
    production = Production.load(example_copy)
    try:
        report = production.up()
        kinds = {c.kind for c in report.changes}
        assert {"vassal", "site", "nginx_conf"} <= kinds, report
        assert sorted(report.checked_sess) == ["club-a", "club-b", "club-late"]

        status = production.status()
        assert {s.name: s.state for s in status.sess} == {
            "club-a": "running",
            "club-b": "running",
            "club-late": "running",
        }
        assert all(s.workers > 0 for s in status.sess), status.sess
        assert {g.name: g.http_status for g in status.gigs} == {
            "jazz-home": 200,
            "jazz-late": 200,
        }, [g.error for g in status.gigs]

        # a second apply changes nothing and reloads nothing
        again = production.apply()
        assert (again.changes, again.nginx_reloaded) == ([], False)
        assert production.plan() == []

        # a Sess through its own socket, found in the run_dir
        sockets = [p for p in production.run_dir.iterdir() if p.name.endswith(".club-late.sock")]
        assert len(sockets) == 1, list(production.run_dir.iterdir())
        who = backstage.request(str(sockets[0]), "/whoami", headers={"Host": "jazz.localhost"})
        assert who.status == 200, who.body
        assert b'"club-late"' in who.body

        # a broken change to a serving Sess: ApplyError names it and carries its log, and its
        # running copy, never touched, keeps answering
        text = example_copy.read_text(encoding="utf-8")
        broken = text.replace(
            '[sess.club-late]\nact = "club"',
            '[acts.broken]\nroot = "club"\nwsgi = "club.nosuchwsgi:application"\n'
            '\n[sess.club-late]\nact = "broken"',
        )
        assert broken != text
        example_copy.write_text(broken, encoding="utf-8")
        with pytest.raises(ApplyError) as failed:
            Production.load(example_copy).apply(health_timeout=20.0)
        assert failed.value.sess == "club-late"
        assert any("nosuchwsgi" in line for line in failed.value.log_tail), failed.value
        example_copy.write_text(text, encoding="utf-8")
        assert production.plan() == []
        who = backstage.request(str(sockets[0]), "/whoami", headers={"Host": "jazz.localhost"})
        assert who.status == 200, who.body

        # releases: `up` built the first; a deploy ships an edit, a rollback takes it back
        first = production.releases()
        assert [(r.act, r.live, r.release_phase) for r in first] == [("club", True, "ok")]
        assert production.deploy() == [], "nothing changed: nothing to deploy"
        home = example_copy.parent / "club" / "music" / "templates" / "music" / "home.html"
        home.write_text(home.read_text().replace("<h1>", "<h1>Encore: "), encoding="utf-8")
        (second,) = production.deploy(["club"])
        assert (second.act, second.live, second.release_phase) == ("club", True, "ok")
        assert second.id != first[0].id
        page = backstage.request(str(sockets[0]), "/", headers={"Host": "jazz.localhost"})
        assert b"Encore: " in page.body
        back = production.rollback("club")
        assert back.id == first[0].id
        assert [r.live for r in production.releases("club")] == [True, False]
        with pytest.raises(ApplyError, match="no Act `nope`"):
            production.rollback("nope")

    finally:
        production.down()
    assert {s.state for s in production.status().sess} == {"stopped"}
    assert all(g.http_status is None for g in production.status().gigs)


def test_up_refuses_system_mode(short_tmp: Path) -> None:
    text = (
        "[production]\nname = 'sys'\nmode = 'system'\n"
        f"state_dir = '{short_tmp}/state'\n"
    )
    production = Production.from_toml(text, base_dir=short_tmp)
    assert production.problems() == []
    with pytest.raises(ApplyError, match="system mode"):
        production.up()

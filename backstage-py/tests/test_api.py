"""The Python API over the example Production and the invalid-manifest corpus."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import backstage
from backstage import BackstageError, Problem, Production, ValidationError
from conftest import INVALID, JAZZCLUB


def test_the_installed_wheel_is_under_test() -> None:
    # `maturin develop` or a source checkout on sys.path would hide packaging mistakes.
    installed = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert installed in Path(backstage.__file__).resolve().parents
    assert (Path(backstage.__file__).parent / "py.typed").is_file()
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", backstage.__version__)


def test_load_the_example(jazzclub_manifest: Path) -> None:
    production = Production.load(jazzclub_manifest)
    production.check()
    assert production.problems() == []
    assert production.name == "jazzclub"
    assert production.mode == "user"
    assert production.acts == ["club"]
    assert production.stages == ["local"]
    assert production.sess == ["club-a", "club-b", "club-late"]
    assert production.venues == ["blues", "jazz"]
    assert production.gigs == ["jazz-home", "jazz-late"]
    assert production.path == jazzclub_manifest
    assert production.base_dir == JAZZCLUB.resolve()
    assert production.state_dir == JAZZCLUB.resolve() / ".backstage"
    for directory in (production.run_dir, production.log_dir, production.vassal_dir):
        assert production.state_dir in directory.parents
    assert production.source == jazzclub_manifest.read_text()
    assert repr(production) == f"<Production \"jazzclub\" from \"{jazzclub_manifest}\">"


def test_load_takes_str_and_pathlike(jazzclub_manifest: Path) -> None:
    assert Production.load(str(jazzclub_manifest)).name == "jazzclub"
    assert Production.load(jazzclub_manifest).name == "jazzclub"


def test_discover_walks_up(jazzclub_manifest: Path) -> None:
    production = Production.discover(JAZZCLUB / "club" / "music")
    assert production.path == jazzclub_manifest


def test_discover_defaults_to_the_current_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(JAZZCLUB / "club")
    assert Production.discover().name == "jazzclub"


def test_discover_finds_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        Production.discover(tmp_path)
    assert info.value.errno == errno.ENOENT
    assert "backstage.toml" in str(info.value)


def test_from_toml_resolves_against_base_dir(tmp_path: Path) -> None:
    text = '[production]\nname = "inline"\nstate_dir = "state"\n'
    production = Production.from_toml(text, base_dir=tmp_path)
    assert production.name == "inline"
    assert production.state_dir == tmp_path / "state"
    assert str(production.path) == "<string>"
    assert production.acts == [] and production.gigs == []


def test_from_toml_defaults_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    production = Production.from_toml('[production]\nname = "here"\n')
    assert production.base_dir == Path(os.getcwd())


def test_invalid_manifest_problems_and_check() -> None:
    text = '[production]\nname = "Jazz Club"\n\n[venues.jazz]\nserver_names = ["ok.localhost", "bad..name"]\n'
    production = Production.from_toml(text, base_dir="/srv/jazz")
    problems = production.problems()
    assert [(p.path, p.line, p.column) for p in problems] == [
        ("production.name", 2, 8),
        ("venues.jazz.server_names[1]", 5, 33),
    ]
    assert all(p.message[:1].islower() for p in problems)
    with pytest.raises(ValidationError) as info:
        production.check()
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, BackstageError)
    assert error.problems == problems
    assert str(error).splitlines() == [
        "`<string>` has 2 problems",
        *(f"  {p}" for p in problems),
    ]
    assert repr(production) == '<Production (invalid: 2 problems) from "<string>">'


@pytest.mark.parametrize(
    "attribute",
    ["name", "mode", "state_dir", "run_dir", "log_dir", "vassal_dir", "nginx_dir",
     "acts", "stages", "sess", "venues", "gigs"],
)
def test_descriptions_of_an_invalid_production_raise(attribute: str) -> None:
    production = Production.from_toml("[production]\nname = 3\n", base_dir="/srv")
    with pytest.raises(ValidationError) as info:
        getattr(production, attribute)
    assert [p.path for p in info.value.problems] == ["production.name"]


def test_syntax_errors_are_problems_too() -> None:
    problems = Production.from_toml("[production\nname = 'x'\n", base_dir="/srv").problems()
    assert problems and problems[0].path == "" and problems[0].line == 1
    assert problems[0].message.startswith("invalid TOML")


CORPUS = sorted(INVALID.glob("*.toml"))


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) > 20, f"no invalid manifests found in {INVALID}"


@pytest.mark.parametrize("manifest", CORPUS, ids=[p.stem for p in CORPUS])
def test_invalid_corpus(manifest: Path) -> None:
    header = re.search(r"^# expect: (.*)$", manifest.read_text(), re.MULTILINE)
    assert header, f"{manifest} has no `# expect:` line"
    expected = header.group(1).strip()
    production = Production.load(manifest)
    problems = production.problems()
    assert [p.path for p in problems] == [expected], problems
    with pytest.raises(ValidationError) as info:
        production.check()
    assert info.value.problems == problems
    assert str(manifest) in str(info.value)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(FileNotFoundError) as info:
        Production.load(missing)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(missing)


def test_unreadable_file_is_permission_error(short_tmp: Path) -> None:
    manifest = short_tmp / "backstage.toml"
    manifest.write_text('[production]\nname = "x"\n')
    manifest.chmod(0)
    short_tmp.chmod(0o755)
    # Root reads any file, so as root the load runs in a child that has given up root.
    code = (
        "import os, sys, backstage\n"
        "if os.geteuid() == 0:\n"
        "    os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    backstage.Production.load(sys.argv[1])\n"
        "except PermissionError as e:\n"
        "    print(e.errno, e.filename)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(manifest)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{errno.EACCES} {manifest}"


def test_a_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        Production.load(tmp_path)


def test_undecodable_file_is_a_backstage_error(tmp_path: Path) -> None:
    manifest = tmp_path / "backstage.toml"
    manifest.write_bytes(b"[production]\nname = \"\xff\"\n")
    # The message names the first invalid byte: offset 21, line 2, column 9.
    with pytest.raises(BackstageError, match=r"not valid UTF-8: invalid byte at offset 21 \(line 2, column 9\)"):
        Production.load(manifest)


def test_problem_value_semantics() -> None:
    problem = Problem("production.name", 3, 8, "invalid name `X`", hint="use a-z")
    same = Problem(path="production.name", line=3, column=8, message="invalid name `X`", hint="use a-z")
    assert problem == same and hash(problem) == hash(same)
    assert problem != Problem("production.name", 3, 8, "invalid name `X`")
    assert str(problem) == "3:8: production.name: invalid name `X` (use a-z)"
    assert str(Problem("", 1, 1, "invalid TOML")) == "1:1: invalid TOML"
    assert repr(problem) == (
        'Problem(path="production.name", line=3, column=8, '
        'message="invalid name `X`", hint="use a-z")'
    )
    with pytest.raises(AttributeError):
        problem.line = 4  # type: ignore[misc]


def test_production_is_immutable(jazzclub_manifest: Path) -> None:
    production = Production.load(jazzclub_manifest)
    with pytest.raises(AttributeError):
        production.name = "other"  # type: ignore[misc]

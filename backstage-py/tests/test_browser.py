"""The example in a real browser: headless Chromium (Debian's `chromium`), driven by Selenium
through Debian's `chromium-driver`, against the example Production brought up on its default
port (8080, where a browser's `Origin` carries the port: the CSRF case that failed before).

Logs into the Django admin (CSRF passes), sees it styled by its static files, uploads a file
through the example's form, fetches it back from `/media/`, deploys a new release, and finds the
upload still there. Each step's time is printed (`pytest -s` shows them; the summary line is
printed even without it).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from backstage import Production
from backstage._backstage import run_cli
from conftest import JAZZCLUB

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PORT = 8080  # the example's own `listen`
PASSWORD = "a long browser test password 8080"

T = TypeVar("T")


@pytest.fixture
def example_on_default_port(short_tmp: Path, test_venv: Path) -> Path:
    """The example as the README brings it up: its own port, only its Stage moved to the test
    virtualenv."""
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        pytest.fail("no chromium or chromedriver: run scripts/test-deps")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"127.0.0.1:{PORT} is taken: the browser test needs the example's port")
    shutil.copytree(
        JAZZCLUB,
        short_tmp,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".backstage", "__pycache__", "staticfiles", "*.sqlite3"),
    )
    manifest = short_tmp / "backstage.toml"
    text = manifest.read_text(encoding="utf-8")
    moved = text.replace('virtualenv = ".backstage/venv"', f'virtualenv = "{test_venv}"')
    assert moved != text
    manifest.write_text(moved, encoding="utf-8")
    return manifest


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Steps:
    """Times each step of the scenario."""

    def __init__(self) -> None:
        self.times: list[tuple[str, float]] = []

    def run(self, name: str, step: Callable[[], T]) -> T:
        start = time.monotonic()
        result = step()
        self.times.append((name, time.monotonic() - start))
        return result

    def summary(self) -> str:
        return "; ".join(f"{name} {secs * 1000:.0f} ms" for name, secs in self.times)


def test_admin_login_css_upload_and_deploy_in_a_real_browser(
    example_on_default_port: Path,
    browser: webdriver.Chrome,
    short_tmp: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = example_on_default_port
    production = Production.load(manifest)
    steps = Steps()
    base = f"http://jazz.localhost:{PORT}"
    wait = WebDriverWait(browser, 20)
    try:
        steps.run("backstage up", production.up)

        os.environ["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
        try:
            code = steps.run(
                "createsuperuser through `backstage run`",
                lambda: run_cli(
                    [
                        "backstage",
                        "run",
                        "-f",
                        str(manifest),
                        "club",
                        "--",
                        "python",
                        "manage.py",
                        "createsuperuser",
                        "--noinput",
                        "--username",
                        "miles",
                        "--email",
                        "miles@example.invalid",
                    ]
                ),
            )
        finally:
            del os.environ["DJANGO_SUPERUSER_PASSWORD"]
        assert code == 0

        # The login page, through nginx, with its stylesheets.
        steps.run("open the admin login page", lambda: browser.get(f"{base}/admin/login/?next=/admin/"))
        assert "Log in" in browser.title, browser.page_source[:2000]
        browser.find_element(By.ID, "id_username").send_keys("miles")
        browser.find_element(By.ID, "id_password").send_keys(PASSWORD)

        def log_in() -> None:
            browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
            wait.until(lambda d: "Site administration" in d.title or "CSRF" in d.page_source)

        steps.run("log in (CSRF checked)", log_in)
        assert "CSRF verification failed" not in browser.page_source, browser.page_source[:3000]
        assert "Site administration" in browser.title, browser.page_source[:3000]

        # Styled: every stylesheet loaded with rules, and the header has the admin's colour.
        sheets = browser.execute_script(
            "return [...document.styleSheets].map(s => {"
            "  try { return [s.href, s.cssRules.length]; } catch (e) { return [s.href, -1]; }"
            "});"
        )
        assert sheets, "the admin page links no stylesheet"
        assert all(n > 0 for _, n in sheets), sheets
        assert any("/static/admin/css/base.css" in (href or "") for href, _ in sheets), sheets
        header = browser.execute_script(
            "return getComputedStyle(document.getElementById('header')).backgroundColor;"
        )
        assert header not in ("", "rgba(0, 0, 0, 0)", "transparent"), header

        # An upload through the example's form (CSRF-protected, multipart), served from /media/.
        flyer = short_tmp / "tonight.txt"
        flyer.write_text("Kind of Blue, live at 9\n", encoding="utf-8")

        def upload() -> str:
            browser.get(f"{base}/flyers")
            browser.find_element(By.ID, "id_title").send_keys("Tonight")
            browser.find_element(By.ID, "id_image").send_keys(str(flyer))
            browser.find_element(By.ID, "upload").click()
            link = wait.until(lambda d: d.find_element(By.LINK_TEXT, "Tonight"))
            href = link.get_attribute("href")
            assert href is not None
            return href

        href = steps.run("upload a file through a form", upload)
        assert href.startswith(f"{base}/media/flyers/"), href

        def fetch_upload() -> str:
            browser.get(href)
            text: str = browser.find_element(By.TAG_NAME, "body").text
            return text

        assert steps.run("fetch it from /media/", fetch_upload).strip() == "Kind of Blue, live at 9"

        # A new release: the upload outlives it.
        home = manifest.parent / "club" / "music" / "templates" / "music" / "home.html"
        home.write_text(home.read_text().replace("<h1>", "<h1>Second set: "), encoding="utf-8")
        (release,) = steps.run("backstage deploy", lambda: production.deploy(["club"]))
        assert release.live
        browser.get(f"{base}/")
        assert "Second set: " in browser.page_source
        after = steps.run("fetch the upload after the deploy", fetch_upload)
        assert after.strip() == "Kind of Blue, live at 9"
        browser.get(f"{base}/admin/")
        assert "Site administration" in browser.title, "the session outlived the deploy"
    finally:
        production.down()
    with capsys.disabled():
        print(f"\nbrowser test steps: {steps.summary()}")

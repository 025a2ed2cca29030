"""Fixtures for the browser tests: the app under its production server, and Debian's chromium.

The server is ``demozone serve`` (gunicorn, as the README documents) in a subprocess on 127.0.0.1 and a
free port, over a copy of the prepared SQLite database (``sqlite_url``), with the clock fixed at the
tests' START (``DEMOZONE_NOW``) so that dates and the 批复 number are stable. Its log is kept in the
test's temporary folder and shown when the server does not come up.

Playwright drives ``/usr/bin/chromium``; it never downloads a browser. Without chromium or Playwright
the tests are skipped, unless ``DEMOZONE_REQUIRE_BROWSER=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.settings import PROJECT_ROOT
from tests.conftest import START

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
SERVER_START_TIMEOUT = 30.0


def browser_required() -> bool:
    return os.environ.get("DEMOZONE_REQUIRE_BROWSER", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when the browser is required (CI)."""
    if browser_required():
        pytest.fail(f"a browser is required (DEMOZONE_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demozone_command() -> list[str]:
    """The ``demozone`` console script of this virtualenv (or the module, if it is not installed)."""
    script = Path(sys.executable).with_name("demozone")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from web.cli import main; main()"]


@dataclass
class Server:
    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url("/login"), timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}")


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    """``demozone serve`` (gunicorn) on 127.0.0.1 over a fresh prepared SQLite copy."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "DEMOZONE_DATABASE_URL": sqlite_url,
        "DEMOZONE_SECRET_KEY": secrets.token_hex(32),
        "DEMOZONE_NOW": START.isoformat(),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DEMOZONE_PROCESSES_DIR", "DEMOZONE_FORMS_DIR", "DEMOZONE_SHOW_DEMO_ACCOUNTS"):
        env.pop(name, None)
    command = [*demozone_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--threads", "4"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        _wait_until_up(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium, launched by Playwright (sync API)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"Playwright is not installed ({exc}); pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Exception as exc:  # any launch failure means "no usable browser"
            unavailable(f"{CHROMIUM} does not start under Playwright: {exc}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/ (git-ignored): screenshots kept after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

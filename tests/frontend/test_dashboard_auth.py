"""The dashboard against a server that needs tokens for reads too (AUTH=on, issue 9 item 4): it says a token is
needed and where to set it, works once one is set in Settings, and its POSTs carry the page's own Origin, which the
cross-site guard (item 3) lets through. A plain uvicorn (no worker needed); Debian's chromium via Playwright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM_ARGS, ROOT, ConsoleWatch, _free_port, _tail, wait_for  # type: ignore[attr-defined]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    var = tmp_path_factory.mktemp("kdvideo-auth")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL", "ARTIFACT_ROOT", "DATA_ROOTS")}
    env.update(VAR_DIR=str(var), QUEUE=f"browser-auth-{port}", AUTH="on", HOST="127.0.0.1", PORT=str(port),
               PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p))
    token = subprocess.run([sys.executable, "-m", "api.cli.tokens", "create", "--name", "browser", "--scope", "submit"],
                           cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()
    log = (var / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{_tail(var / 'server.log')}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for(up, timeout=60, what=lambda: f"the server\n{_tail(var / 'server.log')}")
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def auth_page(browser: Any, secured_server: tuple[str, str]) -> Iterator[tuple[Any, ConsoleWatch, str]]:
    base, token = secured_server
    console = ConsoleWatch()
    console.allow(r"Failed to load resource: the server responded with a status of 4\d\d")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("console", console.on_console)
    page.on("pageerror", console.on_pageerror)
    yield page, console, token
    context.close()
    bad = console.unexpected()
    assert not bad, "console errors:\n" + "\n".join(bad)


def test_dashboard_asks_for_a_token_then_works(auth_page: tuple[Any, ConsoleWatch, str], shots: Any) -> None:
    page, console, token = auth_page
    console.allow(r"^\[object|ApiError|missing API token")  # the router logs the failed load with console.warn
    page.goto("/#/jobs")
    error = page.locator("main").get_by_text("missing API token", exact=False).first
    error.wait_for()
    assert "Settings" in page.locator("main").inner_text()
    page.locator("#health .health-text").filter(has_text="No workers").wait_for()  # public health: status only
    shots(page, "auth-01-token-needed")

    page.get_by_role("button", name="Settings").click()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Save").click()
    page.reload()
    page.get_by_role("heading", name="Jobs").wait_for()
    assert "missing API token" not in page.locator("main").inner_text()

    # a POST from the page: same-origin, so it reaches the handler (its own 403/422), not the cross-site guard
    page.goto("/#/datasets")
    form = page.locator("#register-form")
    form.get_by_label("Folder on the server").fill("/etc")
    form.get_by_role("button", name="Register folder").click()
    page.get_by_text("outside the allowed data roots", exact=False).first.wait_for()  # the handler's 403
    assert "cross-site" not in page.locator("body").inner_text()
    shots(page, "auth-02-token-set")

"""Browser fixtures: the system Chromium through Playwright, axe-core, screenshots.

The stack itself (moto, ``chalice local``, the built page) comes from the
shared fixtures in tests/conftest.py. Here: one browser per session, a fresh
context per page opened (so tests share no cookies, storage or cache), every
request and console error recorded, axe-core injected from the copy npm
installed in tests/browser/node_modules (``npm ci --prefix tests/browser``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tools import local_stack, site

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

    from tests.conftest import LiveStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = local_stack.ROOT / "test-artifacts" / "screenshots"
WIDTHS = (1280, 375)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def axe_script() -> Path:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests/browser` first")
    return AXE


@dataclass
class Tab:
    """A page in its own browser context, with what it requested and logged."""

    page: Page
    context: BrowserContext
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {
            urlsplit(url).netloc
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https")
        }


OpenTab = Callable[..., Tab]


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[OpenTab]:
    """Open a URL in a fresh context: ``open_tab(url, js=True, width=1280, csp=True)``.

    ``csp=False`` lets axe-core be injected as an inline script into pages
    whose Content-Security-Policy would otherwise (rightly) refuse it.
    """
    contexts: list[BrowserContext] = []

    def open_(
        url: str | None = None, *, js: bool = True, width: int = 1280, csp: bool = True
    ) -> Tab:
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            java_script_enabled=js,
            bypass_csp=not csp,
            locale="en-CA",
            service_workers="block",
        )
        contexts.append(context)
        page = context.new_page()
        tab = Tab(page=page, context=context)
        page.set_default_timeout(15_000)
        context.on("request", lambda request: tab.requests.append(request.url))
        page.on("console", lambda message: _log_error(tab, message))
        page.on("pageerror", lambda error: tab.console_errors.append(str(error)))
        if url is not None:
            page.goto(url)
        return tab

    yield open_
    for context in contexts:
        context.close()


def _log_error(tab: Tab, message: Any) -> None:
    if message.type == "error":
        tab.console_errors.append(message.text)


def reload_until_sent(page: Page, timeout: float = 10.0) -> None:
    """Reload the status page, as the supporter would, until it says "sent".

    The API answers the confirmation before the letter goes: the stream
    consumer claims it (``sending``), sends it and records it (``sent``) a
    moment later.
    """
    import time

    deadline = time.monotonic() + timeout
    status = page.locator("[data-status]").get_attribute("data-status")
    assert status in ("queued", "sending", "sent"), status
    while status != "sent" and time.monotonic() < deadline:
        time.sleep(0.1)
        page.reload()
        status = page.locator("[data-status]").get_attribute("data-status")
    assert status == "sent"


@pytest.fixture
def stack(live_stack: LiveStack, aws: str) -> LiveStack:
    """The live local stack, with moto reset and re-provisioned for this test."""
    return live_stack


@pytest.fixture(scope="session")
def dead_api_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The campaign page built for an API on a port where nothing listens."""
    folder = tmp_path_factory.mktemp("dead-api-site")
    site.build(api_url=f"http://127.0.0.1:{local_stack.free_port()}", out=folder)
    port = local_stack.free_port()
    log = open(folder.parent / "dead-api-site.log", "wb")  # noqa: SIM115
    process = local_stack.serve_folder(folder, port, stdout=log, stderr=log)
    with local_stack.running([process]):
        yield f"http://127.0.0.1:{port}"
    log.close()


@pytest.fixture
def check_accessibility(axe_script: Path) -> Callable[[Page], None]:
    """``check_accessibility(page)``: inject axe-core, fail on any violation."""
    return lambda page: _check_accessibility(page, axe_script)


def _check_accessibility(page: Page, axe: Path) -> None:
    page.add_script_tag(path=str(axe))
    results = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    violations = [
        {
            "rule": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in results["violations"]
    ]
    assert not violations, f"axe-core on {page.url}:\n" + json.dumps(violations, indent=2)


@pytest.fixture
def screenshot() -> Callable[[Page, str], list[Path]]:
    """``screenshot(page, name)``: full-page shots at 1280 and 375 px wide."""
    return _screenshot


def _screenshot(page: Page, name: str) -> list[Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size or {"width": 1280, "height": 900}
    paths = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        path = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size(viewport)
    return paths

"""The console in a real headless Chromium (Debian's package, driven by Playwright) against a real HTTP server
subprocess with tokens: sign in, search with highlights, edit, delete with confirmation, a transcript with folded
tool calls, a stored XSS payload shown as text, a read-only token without write controls, and a keyboard-only flow.

Skipped only when no Chromium is installed and CI is not set; on CI (CI=true) a missing browser fails.
Set CONSOLE_SCREENSHOTS=docs to (re)write the README's screenshots of each page.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.http_server import HttpServer, Identity, http_server
from tests.mcp_helpers import call

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ON_CI = os.environ.get("CI", "").lower() == "true"
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
ADA = Identity("ada@example.com", "coder")


def _need_browser() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        if ON_CI:
            pytest.fail("playwright is not installed (CI=true: browser tests must run): pip install -e '.[test]'")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if ON_CI:
            pytest.fail("no Chromium at /usr/bin/chromium (CI=true: browser tests must run): apt-get install chromium")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    return async_playwright


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> AsyncIterator[HttpServer]:
    folder = tmp_path_factory.mktemp("console")
    shutil.copyfile(sqlite_template, folder / "memory.db")
    url = f"sqlite+aiosqlite:///{folder / 'memory.db'}"
    async with http_server(
        url,
        folder / "server.log",
        static={"ada": ADA},
        managed={"ada-ro": Identity(ADA.user, ADA.agent, read_only=True)},
        env={"AGENT_MEMORY_HTTP_RATE_LIMIT": "0"},
    ) as server:
        async with server.client("ada") as ada:
            for name, content in (
                ("drink", "Ada prefers green tea in the morning"),
                ("dentist", "Ada's dentist is Dr. Lima on Rua Augusta"),
                ("payload", XSS),
                ("instrument", "Ada plays the violin on Sundays"),
                ("city", "Ada lives in Lisbon, near the river"),
            ):
                await call(ada, "store_memory", content=content, name=name, metadata={"source": "test"})
            chat = await call(ada, "create_session", name="Lisbon trip", platform="cli")
            messages = [
                {"role": "user", "text_content": "Which tram goes to the castle?"},
                {
                    "role": "assistant",
                    "text_content": "Let me check the map.",
                    "tool_calls": [{"name": "map_lookup", "arguments": {"q": "castle tram"}}],
                },
                {"role": "tool", "tool_outputs": {"route": "Tram 28"}},
                {"role": "assistant", "text_content": "Tram 28 goes up to the castle."},
            ]
            await call(ada, "add_messages", session_id=chat["id"], messages=messages)
        yield server


@pytest.fixture(scope="module")
async def browser(site: HttpServer) -> AsyncIterator[Any]:
    async_playwright = _need_browser()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Any, site: HttpServer) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1100, "height": 900}, reduced_motion="reduce")
    tab = await context.new_page()
    tab.dialogs = []  # any alert() a stored string managed to run

    async def on_dialog(dialog: Any) -> None:
        tab.dialogs.append(dialog.message)
        await dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.console_url = site.url.removesuffix("/mcp") + "/console/"
    try:
        yield tab
    finally:
        await context.close()


async def sign_in(page: Any, token: str) -> None:
    from playwright.async_api import expect

    await page.goto(page.console_url)
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#memory-list li").first).to_be_visible()


def card(page: Any, text: str) -> Any:
    return page.locator("#memory-list > li").filter(has_text=text)


async def test_sign_in_search_and_highlight(page: Any, site: HttpServer) -> None:
    from playwright.async_api import expect

    await page.goto(page.console_url)
    await page.get_by_label("Token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("did not accept")
    await page.get_by_label("Token").fill(site.tokens["ada"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_have_text("ada@example.com with coder")
    await expect(page.locator("#memory-summary")).to_contain_text("newest first")
    assert "token" not in page.url
    await page.get_by_role("searchbox", name="Search memories").fill("teas")
    first = page.locator("#memory-list > li").first
    await expect(first).to_contain_text("Ada prefers green tea in the morning")
    await expect(first.locator("mark")).to_have_text("tea")
    await expect(page.locator("#memory-summary")).to_contain_text("best first")
    assert await page.evaluate("() => sessionStorage.length") == 1
    assert await page.evaluate("() => document.cookie") == ""


async def test_edit_then_delete_with_confirmation(page: Any, site: HttpServer) -> None:
    from playwright.async_api import expect

    await sign_in(page, site.tokens["ada"])
    city = card(page, "Ada lives in Lisbon")
    await city.get_by_role("button", name="Edit").click()
    await page.get_by_label("Content").fill("Ada lives in Porto now")
    await page.get_by_label("Name").fill("home")
    await page.get_by_role("button", name="Save").click()
    edited = card(page, "Ada lives in Porto now")
    await expect(edited.get_by_role("heading")).to_have_text("home")
    await page.reload()
    await expect(card(page, "Ada lives in Porto now")).to_be_visible()  # saved, not only shown

    dentist = card(page, "Dr. Lima")
    await dentist.get_by_role("button", name="Edit").click()
    await page.get_by_label("Content").fill("something else")
    await page.get_by_role("button", name="Cancel").click()
    await expect(card(page, "Dr. Lima")).to_be_visible()

    await card(page, "Dr. Lima").get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Dr. Lima")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(card(page, "Dr. Lima")).to_be_visible()
    await card(page, "Dr. Lima").get_by_role("button", name="Delete").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(card(page, "Dr. Lima")).to_have_count(0)
    await expect(page.get_by_role("status")).to_have_text("Memory deleted.")
    await page.reload()
    await expect(page.locator("#memory-list li").first).to_be_visible()
    await expect(card(page, "Dr. Lima")).to_have_count(0)


async def test_a_stored_script_is_shown_as_text_and_runs_nothing(page: Any, site: HttpServer) -> None:
    from playwright.async_api import expect

    await sign_in(page, site.tokens["ada"])
    payload = card(page, "onerror")
    await expect(payload.locator(".content")).to_have_text(XSS)
    await page.get_by_role("searchbox", name="Search memories").fill("img onerror alert")
    await expect(page.locator("#memory-list > li").first.locator(".content")).to_have_text(XSS)
    assert await page.locator("main img, main script").count() == 0
    await page.wait_for_timeout(200)
    assert page.dialogs == []


async def test_a_transcript_with_folded_tool_calls_and_history_search(page: Any, site: HttpServer) -> None:
    from playwright.async_api import expect

    await sign_in(page, site.tokens["ada"])
    await page.get_by_role("link", name="Sessions").click()
    await expect(page.get_by_role("link", name="Sessions")).to_have_attribute("aria-current", "page")
    await page.get_by_role("link", name="Lisbon trip").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Lisbon trip")
    messages = page.locator(".transcript > li")
    await expect(messages).to_have_count(4)
    await expect(messages.first).to_contain_text("Which tram goes to the castle?")
    calls = messages.nth(1).locator("details")
    await expect(calls).not_to_have_attribute("open", re.compile(".*"))
    await expect(calls.locator("pre")).to_be_hidden()
    await calls.get_by_text("Tool calls").click()
    await expect(calls.locator("pre")).to_contain_text("map_lookup")

    await page.get_by_role("link", name="Sessions").click()
    await page.get_by_role("searchbox", name="Search history").fill("castle")
    result = page.locator(".cards > li").first
    await expect(result.locator("mark").first).to_have_text("castle")
    await result.get_by_role("link", name="Open its session").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Lisbon trip")


async def test_a_read_only_token_sees_no_write_controls(page: Any, site: HttpServer) -> None:
    from playwright.async_api import expect

    await sign_in(page, site.tokens["ada-ro"])
    await expect(page.locator("#who")).to_contain_text("(read-only)")
    await expect(page.get_by_text("This token is read-only")).to_be_visible()
    assert await page.get_by_role("button", name="Edit").count() == 0
    assert await page.get_by_role("button", name="Delete").count() == 0
    assert await page.get_by_role("button", name="New memory").count() == 0


async def focus_by_tab(page: Any, name: str, limit: int = 60) -> None:
    """Press Tab until the focused element's text is `name` (keyboard only: no clicks)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("() => (document.activeElement.innerText || document.activeElement.value || '')")
        if focused.strip() == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


async def test_keyboard_only(page: Any, site: HttpServer) -> None:
    from playwright.async_api import expect

    await page.goto(page.console_url)
    await expect(page.get_by_label("Token")).to_be_focused()
    await page.keyboard.type(site.tokens["ada"])
    await page.keyboard.press("Enter")
    await expect(page.locator("#memory-list li").first).to_be_visible()
    await focus_by_tab(page, "New memory")
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Content")).to_be_focused()
    await page.keyboard.type("Ada's cat is called Miso")
    await focus_by_tab(page, "Save")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("Memory saved.")
    miso = card(page, "Miso")
    await expect(miso).to_be_visible()
    await expect(page.get_by_role("button", name="New memory")).to_be_focused()
    await focus_by_tab(page, "Edit")  # the newest memory's, the first card
    await expect(miso.get_by_role("button", name="Edit")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Content")).to_be_focused()
    await page.keyboard.press("End")
    await page.keyboard.type(" and sleeps all day")
    await page.keyboard.press("Escape")  # cancels
    await expect(miso.locator(".content")).to_have_text("Ada's cat is called Miso")
    await expect(miso.get_by_role("button", name="Edit")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(miso.get_by_role("button", name="Delete")).to_be_focused()
    outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # focus is visible
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog")).to_be_visible()
    await expect(page.get_by_role("dialog").get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(card(page, "Miso")).to_have_count(0)
    await page.keyboard.press("Shift+Tab")  # focus moved somewhere sensible, still in the page
    assert await page.evaluate("() => document.activeElement !== document.body")


async def test_every_page_renders(page: Any, site: HttpServer) -> None:
    """Memories, sessions, a transcript and the overview; with CONSOLE_SCREENSHOTS=docs each is saved as the
    README's docs/console-<page>.png."""
    from playwright.async_api import expect

    folder = os.environ.get("CONSOLE_SCREENSHOTS")

    async def shot(name: str) -> None:
        if folder:
            await page.screenshot(path=str(ROOT / folder / f"console-{name}.png"), full_page=True)

    await sign_in(page, site.tokens["ada"])
    await page.get_by_role("searchbox", name="Search memories").fill("Ada")
    await expect(page.locator("#memory-list mark").first).to_be_visible()
    await shot("memories")
    await page.get_by_role("link", name="Sessions").click()
    await expect(page.get_by_role("link", name="Lisbon trip")).to_be_visible()
    await shot("sessions")
    await page.get_by_role("link", name="Lisbon trip").click()
    await expect(page.locator(".transcript > li")).to_have_count(4)
    await page.locator(".transcript details summary").first.click()
    await shot("transcript")
    await page.get_by_role("link", name="Overview").click()
    await expect(page.locator(".overview")).to_contain_text("Schema revision")
    await expect(page.locator(".overview")).to_contain_text("sqlite")
    await shot("overview")

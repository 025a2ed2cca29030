"""The inbox, a task page and its form on a 390 × 844 phone screen, in chromium: nothing scrolls sideways.

市科协 (shenyang_sa) signs in on a phone, finds the case's 填报推荐表 as a card in 待办, opens it, types the
whole 推荐表 (tables included) and submits it. On every page the document is no wider than the screen,
and the action buttons (办理, 提交) are visible without scrolling sideways. Screenshots of the inbox and the
task page go to test-artifacts/phone-inbox.png and phone-task.png.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from engine import Settings, build_engine
from engine.access import load_actor
from engine.clock import FixedClock
from engine.db import write_session
from tests.browser.conftest import Server
from tests.browser.test_walkthrough import COUNTY, COUNTY_CODE, TIMEOUT_MS, User, expect, schema
from tests.conftest import START
from tests.support.zone import fill

PHONE = {"width": 390, "height": 844}


def start_case(database_url: str) -> uuid.UUID:
    """The case the phone user works on: 市科协 started it for 新民市 (the first step is theirs)."""
    engine = build_engine(Settings(database_url=database_url), FixedClock(START))
    try:
        with write_session(engine.sessions) as session:
            actor = load_actor(session, "shenyang_sa")
            return engine.start_instance(session, actor, "zone_creation", {"county_code": COUNTY_CODE}).id
    finally:
        engine.db.dispose()


def page_width(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def assert_fits(page: Any, where: str) -> None:
    assert page_width(page) <= PHONE["width"], f"{where}: {page_width(page)} px wide on a {PHONE['width']} px screen"


def assert_in_view_horizontally(locator: Any, where: str) -> None:
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (where, box)


def test_a_task_is_done_on_a_phone(chromium: Any, server: Server, sqlite_url: str, artifacts: Path) -> None:
    case_id = start_case(sqlite_url)
    context = chromium.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        user = User(page, server)
        page.goto(server.url("/login"))
        assert_fits(page, "login")
        user.sign_in("shenyang_sa")
        assert_fits(page, "inbox")
        row = user.inbox_rows("recommend")
        expect(row).to_have_count(1)
        handle = row.get_by_role("link", name="办理", exact=True)
        expect(handle).to_be_visible()
        assert_in_view_horizontally(handle, "办理 in the inbox card")
        step_cell = row.locator('td[data-label="环节"]')  # a card names each cell instead of a header row
        assert "环节" in step_cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert not page.locator("table.inbox thead").is_visible()
        page.screenshot(path=str(artifacts / "phone-inbox.png"), full_page=True)

        user.open_task("recommend")
        assert_fits(page, "task page")
        page.screenshot(path=str(artifacts / "phone-task.png"), full_page=True)
        user.fill_form(schema("recommend"), fill("recommend"))
        assert_fits(page, "filled form")
        submit = page.get_by_role("button", name="提交", exact=True)
        submit.scroll_into_view_if_needed()
        assert_in_view_horizontally(submit, "提交")
        user.submit()
        assert_fits(page, "inbox after submitting")
        expect(user.inbox_rows("recommend")).to_have_count(0)

        page.goto(server.url(f"/cases/{case_id}"))
        expect(page.get_by_role("heading", level=1)).to_contain_text(COUNTY)
        assert_fits(page, "case page")
        page.goto(server.url("/notifications/"))
        assert_fits(page, "notification centre")
    finally:
        context.close()

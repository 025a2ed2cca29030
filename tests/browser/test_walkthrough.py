"""One zone-creation case for 新民市 (沈阳市), from 发起 to 批复, entirely through the pages in chromium.

Every role signs in in turn, finds its step in its own 待办 (and the step is absent from other inboxes),
opens it, types its form and submits. On the way: the first 推荐表 is submitted with errors (each error
shown beside its field, the typed input kept), and 人才办 returns the case once (退回) so that 市科协
resubmits it. At the end the case page shows the timeline, the 批复 number and the diagram with the
path highlighted. Screenshots of an inbox, a form with errors and the case page go to test-artifacts/.

Selectors are what a user sees: labels, roles and accessible names; the form's own input names
(``f.<field>``, ``f.<field>.<row>.<column>``, the contract ``web.form_render`` parses) are used only for
table cells, radio buttons and checkboxes, whose visible text is an option rather than the field.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from engine.settings import PROJECT_ROOT
from tests.browser.conftest import Server
from tests.support.zone import GOOD, NO_VETO, fill

try:
    from playwright.sync_api import expect
except ImportError:  # the ``chromium`` fixture skips (or, when the browser is required, fails) the test
    expect = None

PASSWORD = "demo123"
COUNTY, COUNTY_CODE, CITY = "新民市", "210181", "沈阳市"
APPROVAL_NO = "辽科协发〔2026〕1号"
RETURN_REASON = "推荐理由不够具体，请补充主导产业的科技需求。"
FORMS = PROJECT_ROOT / "forms"
BPMN = PROJECT_ROOT / "processes" / "zone_creation.bpmn"
BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
TIMEOUT_MS = 10_000


def step_names() -> dict[str, str]:
    """The name users see for each user task of zone_creation (from the BPMN)."""
    root = ET.parse(BPMN).getroot()
    return {task.get("id", ""): task.get("name", "") for task in root.iter(f"{BPMN_NS}userTask")}


STEPS = step_names()


def schema(form: str) -> dict[str, Any]:
    return json.loads((FORMS / f"{form}.json").read_text(encoding="utf-8"))


def label(title: str) -> re.Pattern[str]:
    """A field's label: its title, then a required marker (*) when it has one."""
    return re.compile(rf"^\s*{re.escape(title)}\s*\*?\s*$")


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def console_error(message: Any) -> bool:
    """A browser console error, except the 400 of the form deliberately submitted with errors."""
    return message.type == "error" and not message.text.startswith(
        "Failed to load resource: the server responded with a status of 400"
    )


class User:
    """One person in the browser (a page in their own browser context), and what they do on the pages."""

    def __init__(self, page: Any, server: Server) -> None:
        self.page = page
        self.server = server

    # -- signing in and out ------------------------------------------------------------------------

    def sign_in(self, username: str, via_demo_list: bool = False) -> None:
        page = self.page
        page.goto(self.server.url("/login"))
        if via_demo_list:  # the login page lists the demo accounts; clicking one fills the username
            expect(page.get_by_role("heading", name="演示账号")).to_be_visible()
            page.get_by_role("button", name=username, exact=True).click()
            expect(page.get_by_label("用户名", exact=True)).to_have_value(username)
        else:
            page.get_by_label("用户名", exact=True).fill(username)
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page).to_have_url(re.compile(r"/inbox"))
        expect(page.get_by_role("heading", name="我的事项")).to_be_visible()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="退出", exact=True).click()
        expect(self.page.get_by_label("用户名", exact=True)).to_be_visible()

    # -- the inbox -----------------------------------------------------------------------------------

    def inbox_rows(self, step: str) -> Any:
        """The 待办 rows of this case's ``step`` (a link named after the step, in a row naming the county)."""
        page = self.page
        return page.get_by_role("row").filter(has_text=COUNTY).filter(
            has=page.get_by_role("link", name=STEPS[step], exact=True)
        )

    def go_to_inbox(self) -> None:
        self.page.goto(self.server.url("/inbox"))
        expect(self.page.get_by_role("heading", name="我的事项")).to_be_visible()

    def expect_not_in_inbox(self, step: str) -> None:
        self.go_to_inbox()
        expect(self.inbox_rows(step)).to_have_count(0)

    def open_task(self, step: str) -> None:
        """From 待办: the step's row, then 办理; the task page names the step."""
        self.go_to_inbox()
        row = self.inbox_rows(step)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(CITY)
        row.get_by_role("link", name="办理", exact=True).click()
        expect(self.page.get_by_role("heading", name=STEPS[step], level=2, exact=True).first).to_be_visible()
        expect(self.page.get_by_role("heading", level=1)).to_contain_text(COUNTY)

    # -- forms -----------------------------------------------------------------------------------------

    def fill_form(self, form: dict[str, Any], data: dict[str, Any]) -> None:
        """Type ``data`` into the task form rendered from the JSON Schema ``form``, field by field."""
        controls = self._controls()
        for key, value in data.items():
            title = str(form["properties"][key].get("title") or key)
            name = f"f.{key}"
            if isinstance(value, list) and value and isinstance(value[0], dict):
                for index, row in enumerate(value):
                    controls = self._ensure_row(controls, name, index)
                    for column, cell in row.items():
                        self._set(controls, f"{name}.{index}.{column}", cell)
            elif isinstance(value, list) and controls.get(name) == "input:checkbox":
                wanted = {text(v) for v in value}
                for box in self.page.locator(f'input[type="checkbox"][name="{name}"]').all():
                    box.set_checked(box.get_attribute("value") in wanted)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    controls = self._ensure_row(controls, name, index)
                    self._set(controls, f"{name}.{index}", item)
            elif isinstance(value, bool) and controls.get(name) == "input:checkbox":
                self.page.get_by_role("checkbox", name=title, exact=True).set_checked(value)
            elif controls.get(name) == "input:radio":
                self._set(controls, name, value)
            else:  # text, textarea, number, date, select: by its label
                control = self.page.get_by_label(label(title))
                expect(control).to_have_attribute("name", name)  # the label belongs to this field's input
                self._fill(control, controls.get(name, ""), value)

    def _controls(self) -> dict[str, str]:
        """The named controls of the task form (the one with 提交): name -> "tag:type", in one round trip."""
        task_form = self.page.locator("form").filter(has=self.page.get_by_role("button", name="提交", exact=True))
        pairs = task_form.locator("[name]").evaluate_all(
            "els => els.map(e => [e.name, e.tagName.toLowerCase() + ':' + (e.type || '')])"
        )
        return dict(pairs)

    def _set(self, controls: dict[str, str], name: str, value: Any) -> None:
        """A control without a label of its own (a table cell, a radio group) by its input name."""
        kind = controls.get(name, "")
        if kind == "input:radio":
            self.page.locator(f'input[type="radio"][name="{name}"][value="{text(value)}"]').check()
        else:
            self._fill(self.page.locator(f'[name="{name}"]'), kind, value)

    @staticmethod
    def _fill(control: Any, kind: str, value: Any) -> None:
        if kind.startswith("select"):
            control.select_option(text(value))
        elif kind == "input:checkbox":
            control.set_checked(bool(value))
        else:
            control.fill(text(value))

    def _ensure_row(self, controls: dict[str, str], name: str, index: int) -> dict[str, str]:
        """Add rows (添加一行) to a repeatable field until row ``index`` exists; the controls then."""
        def has_row(found: dict[str, str]) -> bool:
            return any(n == f"{name}.{index}" or n.startswith(f"{name}.{index}.") for n in found)

        while not has_row(controls):
            box = self.page.locator(".rows-field").filter(has=self.page.locator(f'[name^="{name}."]'))
            box.get_by_role("button", name=re.compile("添加一行")).click()
            controls = self._controls()
        return controls

    def submit(self) -> None:
        """提交; back in 待办 with the confirmation naming the step."""
        step = self.page.get_by_role("heading", level=2).first.inner_text()
        self.page.get_by_role("button", name="提交", exact=True).click()
        expect(self.page.get_by_role("heading", name="我的事项")).to_be_visible()
        expect(self.page.get_by_role("status").filter(has_text="已提交")).to_contain_text(step)

    def complete(self, step: str, form: str, data: dict[str, Any]) -> None:
        self.open_task(step)
        self.fill_form(schema(form), data)
        self.submit()
        expect(self.inbox_rows(step)).to_have_count(0)


class People:
    """Everyone taking part, each signed in once, in a browser context of their own (as on their own PC)."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.browser = browser
        self.server = server
        self.users: dict[str, User] = {}
        self.contexts: list[Any] = []
        self.console_errors: list[str] = []

    def __getitem__(self, username: str) -> User:
        if username not in self.users:
            context = self.browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            self.contexts.append(context)
            page = context.new_page()
            errors = self.console_errors
            page.on("console", lambda message: errors.append(message.text) if console_error(message) else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            user = User(page, self.server)
            user.sign_in(username, via_demo_list=not self.users)
            self.users[username] = user
        return self.users[username]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def test_a_case_walks_from_start_to_approval_through_the_pages(
    chromium: Any, server: Server, artifacts: Path
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    for stale in artifacts.glob("walkthrough-failure-*.png"):
        stale.unlink()
    people = People(chromium, server)
    try:
        walk(people, artifacts)
    except Exception:
        for name, user in people.users.items():
            user.page.screenshot(path=str(artifacts / f"walkthrough-failure-{name}.png"), full_page=True)
        print(f"server log (tail):\n{server.log_tail()}")
        raise
    finally:
        people.close()
    assert not people.console_errors, people.console_errors


def walk(people: People, artifacts: Path) -> None:
    # 市科协 starts the case (发起) for 新民市 and lands on its 推荐表.
    sa = people["shenyang_sa"]  # the first one signs in by clicking their name in the demo account list
    page = sa.page
    page.get_by_role("link", name="发起", exact=True).click()
    page.get_by_label(label("候选区（县）或园区")).select_option(COUNTY_CODE)
    page.get_by_role("button", name="发起", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="已发起")).to_be_visible()
    expect(page.get_by_role("heading", name=STEPS["recommend"], level=2, exact=True)).to_be_visible()

    # The 推荐表, submitted first with a wrong phone number and no 推荐理由.
    recommend = fill("recommend")
    wrong = {k: v for k, v in recommend.items() if k != "recommend_reason"}
    wrong["recommend_contact_phone"] = "12345678"
    sa.fill_form(schema("recommend"), wrong)
    page.get_by_role("button", name="提交", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("有 2 处需要修改")
    phone = page.get_by_label(label("联系电话"))
    expect(phone).to_have_value("12345678")  # the input as typed
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_accessible_description(re.compile("格式不正确"))  # the error beside the field
    reason = page.get_by_label(label("推荐理由"))
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_have_accessible_description(re.compile("此项为必填项"))
    expect(page.get_by_label(label("基本情况"))).to_have_value(recommend["recommend_overview"])
    expect(page.get_by_label(label("联系人"))).to_have_value(recommend["recommend_contact_person"])
    expect(page.locator('[name="f.recommend_key_enterprises.0.name"]')).to_have_value(
        recommend["recommend_key_enterprises"][0]["name"]
    )
    expect(page.get_by_role("checkbox", name=recommend["recommend_cooperation_directions"][0])).to_be_checked()
    pledge = schema("recommend")["properties"]["recommend_pledge"]["title"]
    expect(page.get_by_role("checkbox", name=pledge, exact=True)).to_be_checked()
    page.screenshot(path=str(artifacts / "task-form-with-errors.png"), full_page=True)
    phone.fill(recommend["recommend_contact_phone"])
    reason.fill(recommend["recommend_reason"])
    sa.submit()
    expect(page.get_by_role("status")).to_contain_text(STEPS["talent_cosign"])  # 下一环节
    expect(sa.inbox_rows("talent_cosign")).to_have_count(0)  # 市科协 does not hold 人才办's step

    # 人才办 finds the case in its 待办 and returns it (退回) with a reason.
    talent = people["shenyang_talent"]
    expect(talent.inbox_rows("talent_cosign")).to_have_count(1)
    talent.page.screenshot(path=str(artifacts / "inbox.png"), full_page=True)
    talent.open_task("talent_cosign")
    returning = talent.page.locator("section").filter(has=talent.page.get_by_role("heading", name="退回修改"))
    returning.get_by_label("理由").fill(RETURN_REASON)
    returning.get_by_role("button", name="退回", exact=True).click()
    expect(talent.page.get_by_role("status").filter(has_text="已退回修改")).to_be_visible()
    expect(talent.inbox_rows("talent_cosign")).to_have_count(0)

    # 市科协 sees the return reason on its 推荐表 again, and resubmits.
    sa.open_task("recommend")
    expect(page.get_by_text(RETURN_REASON)).to_be_visible()
    sa.fill_form(schema("recommend"), recommend)
    sa.submit()

    # Each role in turn, each step only in its own 待办.
    sequence = [
        ("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意")),
        ("xinmin_party", "research_report", fill("research_report")),
        ("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意")),
        ("shenyang_sa", "joint_request", fill("joint_request")),
        ("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意")),
        ("province_office", "assign_societies", fill("assign_societies", assigned_societies=["S001", "S002"])),
        ("s001", "society_evaluation", fill("society_evaluation", **NO_VETO, **GOOD)),
        ("s002", "society_evaluation", fill("society_evaluation", **NO_VETO, **GOOD)),
        ("province_office", "province_decision", fill("province_decision", province_decision="批准")),
    ]
    not_theirs = {  # someone who must not see the step while it is open
        "talent_cosign": "xinmin_party",
        "research_report": "xinmin_gov",
        "joint_cosign": "xinmin_party",
        "society_evaluation": "s003",
        "province_decision": "shenyang_sa",
    }
    for username, step, data in sequence:
        if step in not_theirs:
            people[not_theirs[step]].expect_not_in_inbox(step)
        people[username].complete(step, step, data)
    office = people["province_office"].page
    expect(office.get_by_role("status")).to_contain_text("案件已办结")
    expect(office.get_by_role("status")).to_contain_text("已批复")
    # Signing out ends the session: the inbox asks for a sign-in again.
    people["province_office"].sign_out()
    office.goto(people.server.url("/inbox"))
    expect(office.get_by_label("用户名", exact=True)).to_be_visible()

    # 市科协 opens the concluded case from 办结: timeline, diagram with the path highlighted, 批复 number.
    sa.go_to_inbox()
    page.get_by_role("link", name="办结", exact=True).first.click()
    concluded = page.get_by_role("row").filter(has_text=COUNTY)
    expect(concluded).to_have_count(1)
    expect(concluded).to_contain_text("已批复")
    concluded.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(COUNTY)
    expect(page.get_by_text("已批复").first).to_be_visible()
    progress = page.locator("section").filter(has=page.get_by_role("heading", name="办理过程"))
    for step in ("recommend", "talent_cosign", "research_report", "org_consent", "joint_request", "joint_cosign",
                 "assign_societies", "society_evaluation", "province_decision"):
        expect(progress.get_by_text(STEPS[step]).first).to_be_visible()
    expect(progress.get_by_text(RETURN_REASON)).to_be_visible()
    expect(page.get_by_text("没有待办环节")).to_be_visible()
    diagram = page.locator("section").filter(has=page.get_by_role("heading", name="流程图"))
    for element in ("recommend", "talent_cosign", "province_decision"):
        expect(diagram.locator(f'[data-element-id="{element}"].dz-completed')).to_have_count(1)
    expect(diagram.locator(".dz-active")).to_have_count(0)
    page.screenshot(path=str(artifacts / "case-page.png"), full_page=True)
    approval = page.get_by_text(APPROVAL_NO).first
    expect(approval, f"the 批复 number {APPROVAL_NO} should be on the case page").to_be_visible()

"""What keeps the busiest pages cheap: statements per request, translations and dates formatted without
Babel's per-call lookups (with the same output), and the accessible names the inbox and forms carry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from babel.dates import format_datetime as babel_format_datetime
from flask import Flask, render_template_string
from flask_babel import force_locale
from flask_babel import gettext as babel_gettext
from flask_babel import ngettext as babel_ngettext
from sqlalchemy import event

from tests.web.conftest import World, signed_in
from web.form_render import build_fields
from web.i18n import BEIJING, NUMERIC_PATTERNS, format_time

# Before the cuts the inbox page ran 15 statements and the task page read the case row four times (bench/README.md).
INBOX_STATEMENTS = 8
TASK_PAGE_STATEMENTS = 12  # case A's, with a comment and an attachment


@contextmanager
def counted(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's database engine runs inside the block."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:  # noqa: ANN001
        statements.append(statement)

    db = app.extensions["demozone.engine"].db
    event.listen(db, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db, "before_cursor_execute", record)


def test_the_inbox_page_runs_a_fixed_number_of_statements(world: World) -> None:
    user = signed_in(world.app, "shenyang_sa")  # a starter: the 发起 button's candidates are queried too
    user.get("/inbox")  # the first request also reads each process version's spec once
    with counted(world.app) as statements:
        response = user.get("/inbox")
    assert response.status_code == 200 and "新民市" not in response.get_data(as_text=True).split("<tbody>")[0]
    assert len(statements) <= INBOX_STATEMENTS + 1, statements  # + the candidates of the one startable process


def test_the_inbox_of_a_user_who_starts_nothing_and_the_task_page(world: World) -> None:
    user = signed_in(world.app, "xinmin_party")
    user.get("/inbox")
    user.get(f"/tasks/{world.research_task}")
    with counted(world.app) as inbox_statements:
        assert user.get("/inbox").status_code == 200
    with counted(world.app) as task_statements:
        assert user.get(f"/tasks/{world.research_task}").status_code == 200
    assert len(inbox_statements) <= INBOX_STATEMENTS, inbox_statements
    assert len(task_statements) <= TASK_PAGE_STATEMENTS, task_statements
    case_row_reads = [s for s in task_statements if "instance.state" in s]
    assert len(case_row_reads) == 1, case_row_reads  # the engine's and the case file's lookups share it


def test_a_signed_in_request_loads_its_user_and_roles_in_one_statement(world: World) -> None:
    user = signed_in(world.app, "xinmin_party")
    with counted(world.app) as statements:
        assert user.get("/notifications/").status_code == 200
    user_reads = [s for s in statements if "FROM app_user" in s and "password_hash" in s]
    assert len(user_reads) == 1 and "role_assignment" in user_reads[0]


def test_the_api_reads_token_user_and_roles_in_one_statement(world: World) -> None:
    client = world.app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['xinmin_party']}"}
    with counted(world.app) as statements:
        assert client.get(f"/api/v1/tasks/{world.research_task}", headers=headers).status_code == 200
    token_reads = [s for s in statements if "api_token" in s]
    assert len(token_reads) == 1 and "role_assignment" in token_reads[0]
    assert client.get("/api/v1/tasks", headers={"Authorization": "Bearer dz_wrong"}).status_code == 401


def test_the_tab_counts_come_from_one_statement_and_match_the_list(world: World) -> None:
    world.engine().clock.advance(timedelta(days=31))  # case A's 县委组织调研 (30 days) is overdue by then
    user = signed_in(world.app, "xinmin_party")
    with counted(world.app) as statements:
        page = user.get("/inbox/done").get_data(as_text=True)
    task_counts = [s for s in statements if "count(" in s.lower() and "open_task" in s]
    assert len(task_counts) == 1 and "sum(" in task_counts[0].lower()  # all tasks and the overdue ones at once
    shown = int(re.search(r'<span class="count">(\d+)</span>', page).group(1))
    listed = user.get("/inbox").get_data(as_text=True).count('name="task_ids"')
    assert shown == listed == 1 and "逾期 1 件" in page


def test_every_inbox_column_header_has_a_scope_and_every_cell_a_label(world: World) -> None:
    page = signed_in(world.app, "xinmin_party").get("/inbox").get_data(as_text=True)
    head = page.split("<thead>")[1].split("</thead>")[0]
    headers = re.findall(r"<th\b[^>]*>", head)
    assert len(headers) == 9 and all('scope="col"' in th for th in headers)
    assert "<th scope=\"col\">操作</th>" in head  # the action column is named too
    row = page.split("<tbody>")[1].split("</tr>")[0]
    labels = re.findall(r'data-label="([^"]+)"', row)
    assert labels == ["案件", "流程", "环节", "收到时间", "办理期限", "紧急程度", "签收"]


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_template_translations_read_as_flask_babels(world: World, locale: str) -> None:
    template = (
        '{{ _("Select") }}|{{ _("%(n)s overdue", n=3) }}|{{ _("offered to %(n)s people", n="<b>") }}|'
        '{{ ngettext("%(num)d task in all", "%(num)d tasks in all", 2) }}|{{ _("Sign out") }}'
    )
    with world.app.test_request_context("/inbox"), force_locale(locale):
        ours = render_template_string(template)
        theirs = "|".join(
            str(value)
            for value in (
                babel_gettext("Select"),
                babel_gettext("%(n)s overdue", n=3),
                babel_gettext("offered to %(n)s people", n="&lt;b&gt;"),
                babel_ngettext("%(num)d task in all", "%(num)d tasks in all", 2),
                babel_gettext("Sign out"),
            )
        )
    assert ours == theirs and "<b>" not in ours
    assert ("逾期 3 件" in ours) == (locale == "zh")


@pytest.mark.parametrize("pattern", sorted(NUMERIC_PATTERNS))
def test_numeric_dates_read_as_babels_in_beijing_time(world: World, pattern: str) -> None:
    late_evening_utc = datetime(2026, 3, 1, 17, 5, 9, tzinfo=UTC)  # the next day in Beijing
    naive_utc = datetime(2026, 12, 31, 23, 59, 59)  # stored rows come back naive on SQLite
    with world.app.test_request_context("/inbox"):
        for value in (late_evening_utc, naive_utc):
            expected = babel_format_datetime(value.replace(tzinfo=UTC), pattern, tzinfo=BEIJING, locale="zh")
            assert format_time(value, pattern) == expected
        assert format_time(late_evening_utc, "yyyy-MM-dd").endswith("03-02")
        assert format_time(None) == ""


def test_radio_and_checkbox_groups_and_table_cells_have_accessible_names(world: World) -> None:
    schema = {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "title": "审核意见", "enum": ["同意", "不同意"]},
            "areas": {"type": "array", "title": "领域", "items": {"enum": ["农业", "工业"]}, "uniqueItems": True},
            "members": {
                "type": "array",
                "title": "成员",
                "items": {"type": "object", "properties": {"name": {"type": "string", "title": "姓名"}}},
            },
        },
    }
    fields = build_fields(schema, {"members": [{"name": "张三"}]}, {})
    template = '{% from "macros/fields.html" import field %}{% for f in fields %}{{ field(f, {}) }}{% endfor %}'
    with world.app.test_request_context("/"):
        html = render_template_string(template, fields=fields)
    for name, role in (("f-decision", "radiogroup"), ("f-areas", "group")):
        group = re.search(rf'<span[^>]*role="{role}"[^>]*id="{name}"[^>]*>', html)
        assert group and f'aria-labelledby="{name}-label"' in group.group(0)
        assert f'<label class="field-title" for="{name}" id="{name}-label">' in html
    cell = re.search(r'<td><input[^>]*name="f\.members\.0\.name"[^>]*>', html)
    assert cell and 'aria-label="姓名"' in cell.group(0)

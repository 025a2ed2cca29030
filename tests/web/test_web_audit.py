"""The auditor's pages: case search, history with diffs, step-through, chain check, exports, report;
and proof that auditors change nothing and that nobody else opens these pages.

Case A (新民市) was started, recommended, co-signed, commented on and given an attachment; case B
(瓦房店市) was only started. Reading tests share one database; the tampering and refusal tests get
their own copy.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import uuid

import pytest
from sqlalchemy import select

from engine.db import write_session
from engine.models import HistoryEvent
from tests.web.conftest import World, signed_in

NON_AUDITORS = ("shenyang_sa", "xinmin_party", "province_office", "province_org", "s001", "designer", "admin")


@pytest.fixture(scope="module")
def auditor(shared: World):
    return signed_in(shared.app, "auditor")


def _cases(page: str) -> set[str]:
    return set(re.findall(r'href="/audit/cases/([0-9a-f-]{36})"', page))


def _state(page: str) -> dict:
    return json.loads(re.search(r'id="steps-state">(.*?)</script>', page, re.S).group(1))


def test_search_by_county_process_status_dates_and_participant(shared: World, auditor) -> None:
    a, b = str(shared.case_a), str(shared.case_b)
    page = auditor.get("/audit/").get_data(as_text=True)
    assert {a, b} <= _cases(page) and "审计" in page and "只读" in page
    assert _cases(auditor.get("/audit/?county=210181").get_data(as_text=True)) == {a}
    assert _cases(auditor.get("/audit/?county=210200").get_data(as_text=True)) == {b}  # a city: its counties
    assert {a, b} <= _cases(auditor.get("/audit/?process=zone_creation&status=running").get_data(as_text=True))
    assert not _cases(auditor.get("/audit/?process=zone_creation&status=completed").get_data(as_text=True))
    assert {a, b} <= _cases(auditor.get("/audit/?from=2026-03-02&to=2026-03-02").get_data(as_text=True))
    assert not _cases(auditor.get("/audit/?from=2026-03-03").get_data(as_text=True))
    assert not _cases(auditor.get("/audit/?to=2026-03-01").get_data(as_text=True))
    assert _cases(auditor.get("/audit/?participant=xinmin_party").get_data(as_text=True)) == {a}
    assert _cases(auditor.get("/audit/?participant=大连").get_data(as_text=True)) == {b}  # by display name
    assert not _cases(auditor.get("/audit/?participant=%25").get_data(as_text=True))  # LIKE wildcards escaped
    bad = auditor.get("/audit/?from=2026-13-40&page=abc")
    assert bad.status_code == 200 and "日期无效" in bad.get_data(as_text=True)


def test_the_history_shows_actors_roles_submitted_data_diffs_and_an_intact_chain(shared: World, auditor) -> None:
    page = auditor.get(f"/audit/cases/{shared.case_a}").get_data(as_text=True)
    assert "历史链完整" in page and "5 个事件" in page
    for text in ("发起", "填报推荐表", "人才办会签", "沈阳市 市科协", "shenyang_talent", "提交的数据", "推荐理由"):
        assert text in page, text
    assert "项变更" in page and "<ins>" in page  # a diff of the case data against the previous state
    assert "同意" in page  # the co-sign decision, new in that step's diff
    for link in ("/steps", "/report", "/history.csv", "/history.json"):
        assert f"/audit/cases/{shared.case_a}{link}" in page
    assert 'method="post"' not in page.split("<main>")[1]  # nothing on the page changes anything


def test_step_through_shows_completed_and_active_steps_and_the_data_at_each_event(shared: World, auditor) -> None:
    url = f"/audit/cases/{shared.case_a}/steps"
    last = auditor.get(url).get_data(as_text=True)
    state = _state(last)
    steps = state["steps"]
    assert state["current"] == len(steps) == 5 and [s["seq"] for s in steps] == [1, 2, 3, 4, 5]
    assert {"recommend", "talent_cosign"} <= set(steps[-1]["completed"])
    assert steps[-1]["active"] == ["research_report"]
    assert "recommend" not in steps[0]["completed"]
    assert set(steps[1]["completed"]) < set(steps[2]["completed"])  # the co-sign adds to what is done
    first = auditor.get(url + "?step=1").get_data(as_text=True)
    assert _state(first)["current"] == 1
    assert 'id="step-prev"' in first and re.search(r'id="step-prev"[^>]*hidden', first)
    assert f'href="{url}?step=2"' in first and 'type="range"' in first and "此时的案件数据" in first
    assert _state(auditor.get(url + "?step=99").get_data(as_text=True))["current"] == 5
    assert _state(auditor.get(url + "?step=x").get_data(as_text=True))["current"] == 5
    assert f'data-xml-url="/cases/{shared.case_a}/diagram.bpmn"' in first


def test_exports_are_the_events_with_their_hashes(shared: World, auditor) -> None:
    response = auditor.get(f"/audit/cases/{shared.case_a}/history.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    events = response.get_json()
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert all(e["prev_hash"] == p["hash"] for p, e in zip(events, events[1:], strict=False))
    text = auditor.get(f"/audit/cases/{shared.case_a}/history.csv").get_data(as_text=True)
    assert text.startswith("\ufeffseq,at,actor,role")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["hash"] for r in rows] == [e["hash"] for e in events]
    assert json.loads(rows[1]["payload"])["data"]  # the recommendation's submitted data
    assert auditor.get(f"/audit/cases/{shared.case_a}/history.xml").status_code == 404


def test_the_printable_report(shared: World, auditor) -> None:
    page = auditor.get(f"/audit/cases/{shared.case_a}/report").get_data(as_text=True)
    assert "审计报告" in page and "历史链完整" in page and "审计员" in page and "data-print" in page
    assert 'id="diagram-state"' in page and "research_report" in page
    assert page.count('<code class="hash">') == 5
    assert "audit.css" in page and "diagram.js" in page


def test_the_english_pages(shared: World) -> None:
    user = signed_in(shared.app, "auditor")
    user.post("/language", {"lang": "en"})
    page = user.get(f"/audit/cases/{shared.case_a}").get_data(as_text=True)
    assert "History chain intact" in page and "Data submitted" in page and "Step through" in page
    assert "Audit: find a case" in user.get("/audit/").get_data(as_text=True)


def test_a_tampered_event_is_reported_on_the_case(world: World) -> None:
    engine = world.engine()
    with write_session(engine.sessions) as session:
        event = session.scalar(
            select(HistoryEvent).where(HistoryEvent.instance_id == world.case_a, HistoryEvent.seq == 2)
        )
        event.payload = {**event.payload, "data": {**event.payload["data"], "recommend_reason": "改过的理由"}}
    user = signed_in(world.app, "auditor")
    page = user.get(f"/audit/cases/{world.case_a}").get_data(as_text=True)
    assert "历史链断裂" in page and "第 2 号事件" in page and "altered" in page
    assert "历史链断裂" in user.get(f"/audit/cases/{world.case_a}/report").get_data(as_text=True)
    assert "历史链完整" in user.get(f"/audit/cases/{world.case_b}").get_data(as_text=True)


@pytest.mark.parametrize("username", NON_AUDITORS)
def test_other_roles_cannot_open_auditor_pages(shared: World, username: str) -> None:
    user = signed_in(shared.app, username)
    a = shared.case_a
    for url in (
        "/audit/",
        "/audit/?county=210181",
        f"/audit/cases/{a}",
        f"/audit/cases/{a}/steps",
        f"/audit/cases/{a}/report",
        f"/audit/cases/{a}/history.csv",
        f"/audit/cases/{a}/history.json",
    ):
        response = user.get(url)
        assert response.status_code == 403, (url, response.status_code)
        assert "Traceback" not in response.get_data(as_text=True)
    assert 'href="/audit/"' not in user.get("/inbox").get_data(as_text=True)


def test_auditor_pages_of_an_unknown_case_are_not_found(shared: World, auditor) -> None:
    for suffix in ("", "/steps", "/report", "/history.csv"):
        assert auditor.get(f"/audit/cases/{uuid.uuid4()}{suffix}").status_code == 404


# -- the auditor changes nothing ------------------------------------------------------------------

# The user's own session and settings, not case or programme data: signing out, the language, and
# their own notification settings.
PERSONAL = {"auth.login", "auth.logout", "auth.set_language", "notifications.read", "notifications.read_all",
            "notifications.settings"}
FORM = {
    "action": "submit",
    "reason": "理由",
    "body": "意见",
    "to": "xinmin_party",
    "process": "zone_creation",
    "county_code": "210124",
    "f.research_lead": "某某",
    "year": "2027",
    "quota": "12",
    "deadline": "2026-12-31",
    "source": "<bpmn:definitions/>",
    "schema": "{}",
}
VARIANTS = {  # routes whose form picks between actions: try each
    "tasks.submit": [{"action": "submit"}, {"action": "draft"}],
    "inbox.bulk": [{"action": "claim"}, {"action": "acknowledge"}],
}


def _dump(world: World) -> str:
    connection = sqlite3.connect(world.url.removeprefix("sqlite:///"))
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def _url_for(rule, world: World) -> str:  # noqa: ANN001
    values = {
        "instance_id": world.case_a,
        "task_id": world.research_task,
        "attachment_id": world.attachment,
        "process_id": "zone_creation",
        "name": "recommend",
        "notification_id": 1,
    }
    args = {}
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__
        args[name] = values.get(name, uuid.uuid4() if converter == "UUIDConverter" else "x")
    with world.app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **args)


def test_every_state_changing_route_refuses_the_auditor(world: World) -> None:
    routes = [
        rule
        for rule in world.app.url_map.iter_rules()
        if rule.methods & {"POST", "PUT", "PATCH", "DELETE"} and rule.endpoint not in PERSONAL
    ]
    assert len(routes) >= 15
    before = _dump(world)
    user = signed_in(world.app, "auditor")
    api = world.app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['auditor']}"}
    tried = []
    for rule in routes:
        url = _url_for(rule, world)
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            if url.startswith("/api/"):
                body = {"process": "zone_creation", "data": {"county_code": "210124"}, "reason": "理由"}
                if rule.endpoint != "api.start_instance":
                    body["data"] = {"research_lead": "某某"}
                responses = [api.open(url, method=method, json=body, headers=headers)]
            else:
                responses = [
                    user.client.open(url, method=method, content_type="multipart/form-data", data={
                        **FORM, **variant, "task_ids": str(world.research_task), "csrf_token": user.csrf(),
                        "file": (io.BytesIO(b"%PDF-1.4"), "a.pdf"),
                    })
                    for variant in VARIANTS.get(rule.endpoint, [{}])
                ]
            for response in responses:
                text = response.get_data(as_text=True)
                assert response.status_code in (403, 404), (method, url, response.status_code)
                assert "页面已过期" not in text and "Traceback" not in text, (method, url)
            tried.append(url)
    assert _dump(world) == before, "an auditor's request changed the database"
    assert any(u.startswith("/tasks/") for u in tried) and "/overview/batches" in tried

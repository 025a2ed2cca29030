"""Every role against every page and API route, on one shared database.

Case A (新民市 of 沈阳市) waits at 新民市委's research report; case B (瓦房店市 of 大连市) at 大连市科协's
recommendation. Only refusals and reads are tried here, so the shared database never changes.
"""

from __future__ import annotations

import pytest

from engine import inbox
from tests.web.conftest import World, act, signed_in

# who may read case A: its city, its county, the province roles and the auditor
READERS_A = {
    "shenyang_sa",
    "shenyang_talent",
    "shenyang_org",
    "xinmin_party",
    "xinmin_gov",
    "xinmin_office",
    "province_office",
    "province_org",
    "auditor",
}
HOLDER_A = "xinmin_party"  # holds the open research_report of case A
USERS = sorted(READERS_A | {"faku_party", "dalian_sa", "s001", "designer", "admin"})
REFUSED = (403, 404)


@pytest.fixture(scope="module")
def browsers(shared: World):
    return {}


@pytest.fixture(scope="module")
def starters(shared: World) -> set[str]:
    """Who may start some process (发起), by the engine's own rule."""
    engine = shared.engine()
    return {name for name in USERS if act(engine, name, lambda s, a: inbox.startable(engine, s, a))}


@pytest.fixture(scope="module")
def faku_starters(shared: World) -> set[str]:
    """Who may start zone_creation for 法库县 (210124)."""
    engine = shared.engine()

    def may(name: str) -> bool:
        options = act(engine, name, lambda s, a: inbox.startable(engine, s, a))
        return any(o.process_id == "zone_creation" and "210124" in dict(o.candidates) for o in options)

    return {name for name in USERS if may(name)}


def browser_for(shared: World, browsers: dict, username: str):
    if username not in browsers:
        browsers[username] = signed_in(shared.app, username)
    return browsers[username]


@pytest.mark.parametrize("username", USERS)
def test_pages(shared: World, browsers: dict, starters: set[str], username: str) -> None:
    user = browser_for(shared, browsers, username)
    a, task, attachment = shared.case_a, shared.research_task, shared.attachment
    for url in ("/inbox", "/inbox/done", "/inbox/finished", "/inbox?overdue=1&sort=urgency&q=新民"):
        assert user.get(url).status_code == 200, url
    assert user.get("/cases/new").status_code == (200 if username in starters else 403)
    reads = username in READERS_A
    for url in (f"/cases/{a}", f"/cases/{a}/diagram.bpmn", f"/attachments/{attachment}"):
        assert user.get(url).status_code == (200 if reads else 404), url
    task_page = user.get(f"/tasks/{task}")
    assert task_page.status_code == (200 if username in (HOLDER_A, "auditor") else 404)
    if username == "auditor":
        page = task_page.get_data(as_text=True)
        assert "您可以查看此事项，但无权办理" in page and 'name="action" value="submit"' not in page
    other_b = user.get(f"/cases/{shared.case_b}")
    assert other_b.status_code == (
        200 if username in ("province_office", "province_org", "auditor", "dalian_sa") else 404
    )


@pytest.mark.parametrize("username", sorted(set(USERS) - {HOLDER_A}))
def test_state_changing_routes_are_refused_to_everyone_but_the_holder(
    shared: World, browsers: dict, faku_starters: set[str], username: str
) -> None:
    user = browser_for(shared, browsers, username)
    a, task = shared.case_a, shared.research_task
    posts = [
        (f"/tasks/{task}", {"action": "submit", "f.research_lead": "某某"}),
        (f"/tasks/{task}", {"action": "draft", "f.research_lead": "某某"}),
        (f"/tasks/{task}/return", {"reason": "理由"}),
        (f"/tasks/{task}/transfer", {"to": "xinmin_party", "reason": "理由"}),
        (f"/tasks/{task}/claim", {}),
        (f"/tasks/{task}/unclaim", {}),
        ("/inbox/bulk", [("action", "claim"), ("task_ids", str(task))]),
        ("/inbox/bulk", [("action", "acknowledge"), ("task_ids", str(task))]),
    ]
    for url, data in posts:
        response = user.post(url, data)
        assert response.status_code in REFUSED, (url, data, response.status_code)
        assert "页面已过期" not in response.get_data(as_text=True)  # refused by permission, not by CSRF
    # a case reader who handles no open step may read the file but not add to it
    upload = user.post(
        f"/cases/{a}/attachments",
        {"file": (__import__("io").BytesIO(b"%PDF-1.4"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert upload.status_code in REFUSED
    if username not in READERS_A or username == "auditor":
        assert user.post(f"/cases/{a}/comments", {"body": "意见"}).status_code in REFUSED
    if username not in faku_starters:
        response = user.post("/cases/new", {"process": "zone_creation", "county_code": "210124"})
        assert response.status_code in REFUSED


@pytest.mark.parametrize("username", ["faku_party", "dalian_sa", "s001", "auditor", "shenyang_sa", "province_office"])
def test_api_routes(shared: World, username: str) -> None:
    client = shared.app.test_client()
    token = shared.tokens[username]
    headers = {"Authorization": f"Bearer {token}"}
    a, task = shared.case_a, shared.research_task
    reads = username in READERS_A
    assert client.get("/api/v1/tasks", headers=headers).status_code == 200
    assert client.get(f"/api/v1/tasks/{task}", headers=headers).status_code == (200 if username == "auditor" else 404)
    assert client.get(f"/api/v1/instances/{a}", headers=headers).status_code == (200 if reads else 404)
    assert client.get(f"/api/v1/instances/{a}/history", headers=headers).status_code == (200 if reads else 404)
    for path, body in (
        (f"/tasks/{task}/complete", {"data": {}}),
        (f"/tasks/{task}/return", {"reason": "x"}),
        (f"/tasks/{task}/claim", None),
        (f"/tasks/{task}/unclaim", None),
    ):
        response = client.post("/api/v1" + path, json=body, headers=headers)
        assert response.status_code in REFUSED, (path, response.status_code)
        assert response.is_json


def test_signed_out_users_are_sent_to_sign_in(shared: World) -> None:
    client = shared.app.test_client()
    for url in (
        "/inbox",
        "/inbox/done",
        "/inbox/finished",
        "/cases/new",
        f"/cases/{shared.case_a}",
        f"/tasks/{shared.research_task}",
        f"/attachments/{shared.attachment}",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url

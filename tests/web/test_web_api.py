"""The JSON API: bearer tokens, the same permissions as the pages, and its status codes."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import event, func, select

from engine.db import write_session
from engine.models import ApiToken, HistoryEvent
from tests.web.conftest import World, fill, open_task
from web.security import hash_token, revoke_tokens


def api(world: World, username: str | None):
    client = world.app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens[username]}"} if username else {}

    class Api:
        def get(self, path, **kw):
            return client.get("/api/v1" + path, headers=headers, **kw)

        def post(self, path, body=None, **kw):
            return client.post("/api/v1" + path, json=body, headers=headers, **kw)

    return Api()


def test_list_get_and_complete_a_task(world: World) -> None:
    dalian = api(world, "dalian_sa")
    listing = dalian.get("/tasks").get_json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == str(world.recommend_b)
    detail = dalian.get(f"/tasks/{world.recommend_b}").get_json()
    assert detail["schema"]["title"] == "创新驱动助力示范区（县）创建推荐表"
    assert detail["task"]["step"] == "recommend" and detail["data"]["county_name"] == "瓦房店市"
    done = dalian.post(f"/tasks/{world.recommend_b}/complete", {"data": fill("recommend")})
    assert done.status_code == 200
    assert [t["step"] for t in done.get_json()["open_tasks"]] == ["talent_cosign"]
    history = dalian.get(f"/instances/{world.case_b}/history").get_json()["items"]
    assert [e["command"] for e in history] == ["start", "complete"] and history[1]["step"] == "recommend"


def test_invalid_data_is_400_with_per_field_details(world: World) -> None:
    data = {**fill("recommend"), "recommend_contact_phone": "12345678", "recommend_gdp": -1}
    response = api(world, "dalian_sa").post(f"/tasks/{world.recommend_b}/complete", {"data": data})
    body = response.get_json()
    assert response.status_code == 400 and body["error"]["code"] == "invalid_input"
    assert set(body["error"]["details"]) == {"recommend_contact_phone", "recommend_gdp"}
    phone = body["error"]["details"]["recommend_contact_phone"]
    assert phone == "联系电话：格式不正确，例如：13812345678 / 024-23456789"  # the field's JSON Schema examples
    bad_json = world.app.test_client().post(
        f"/api/v1/tasks/{world.recommend_b}/complete",
        data="{not json",
        headers={"Authorization": f"Bearer {world.tokens['dalian_sa']}", "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400 and bad_json.is_json


def test_text_that_is_not_valid_unicode_is_400_naming_its_field(world: World) -> None:
    """A JSON escape can carry a lone surrogate, which no database can store as UTF-8."""
    headers = {"Authorization": f"Bearer {world.tokens['dalian_sa']}", "Content-Type": "application/json"}
    client = world.app.test_client()
    for command, body, field in (
        ("complete", '{"data": {"recommend_contact": "\\ud800"}}', "data/recommend_contact"),
        ("return", '{"reason": "\\udfff"}', "reason"),
    ):
        response = client.post(f"/api/v1/tasks/{world.recommend_b}/{command}", data=body, headers=headers)
        assert response.status_code == 400, response.get_data()
        assert response.get_json()["error"]["details"] == {field: "含有无效字符（孤立的代理码位）"}
    assert open_task(world.engine(), world.case_b, "recommend") == world.recommend_b


def test_without_a_valid_token_it_is_401(world: World) -> None:
    client = world.app.test_client()
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer " + "x" * 500},
    ):
        response = client.get("/api/v1/tasks", headers=headers)
        assert response.status_code == 401 and response.is_json
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    with write_session(world.engine().sessions) as session:
        revoke_tokens(session, "dalian_sa")
    assert api(world, "dalian_sa").get("/tasks").status_code == 401


def _transactions_of(world: World, request) -> tuple[object, int]:  # noqa: ANN001
    """``request()``'s response and how many transactions it began."""
    began = []
    listener = lambda _connection: began.append(1)  # noqa: E731
    event.listen(world.engine().db, "begin", listener)
    try:
        return request(), len(began)
    finally:
        event.remove(world.engine().db, "begin", listener)


def test_a_command_checks_its_token_inside_its_write_transaction(world: World) -> None:
    # A case not live in this process: the token is checked first, then the case is warmed, then written.
    assert not world.engine().store.is_live_task(world.recommend_b)
    done, transactions = _transactions_of(
        world, lambda: api(world, "dalian_sa").post(f"/tasks/{world.recommend_b}/complete", {"data": fill("recommend")})
    )
    assert done.status_code == 200 and transactions == 2
    # A new case, then its first task, live here: one transaction each, the token checked inside it.
    shenyang = api(world, "shenyang_sa")
    started, transactions = _transactions_of(
        world, lambda: shenyang.post("/instances", {"process": "zone_creation", "data": {"county_code": "210124"}})
    )
    assert started.status_code == 201 and transactions == 1
    recommend = uuid.UUID(started.get_json()["open_tasks"][0]["id"])
    assert world.engine().store.is_live_task(recommend)
    done, transactions = _transactions_of(
        world, lambda: shenyang.post(f"/tasks/{recommend}/complete", {"data": fill("recommend")})
    )
    assert done.status_code == 200 and transactions == 1
    # On that path a revoked token is refused as well, and nothing is written.
    cosign = uuid.UUID(done.get_json()["open_tasks"][0]["id"])
    assert world.engine().store.is_live_task(cosign)
    with write_session(world.engine().sessions) as session:
        revoke_tokens(session, "shenyang_talent")
    refused = api(world, "shenyang_talent").post(f"/tasks/{cosign}/return", {"reason": "请补充材料"})
    assert refused.status_code == 401 and refused.is_json
    case = uuid.UUID(started.get_json()["id"])
    assert [e["command"] for e in shenyang.get(f"/instances/{case}/history").get_json()["items"]] == [
        "start",
        "complete",
    ]
    assert open_task(world.engine(), case, "talent_cosign") == cosign


def test_every_command_without_a_valid_token_is_401_and_writes_nothing(world: World) -> None:
    client = world.app.test_client()
    commands = [
        (f"/tasks/{world.recommend_b}/complete", {"data": fill("recommend")}),
        (f"/tasks/{world.recommend_b}/return", {"reason": "x"}),
        (f"/tasks/{world.recommend_b}/claim", None),
        (f"/tasks/{world.recommend_b}/unclaim", None),
        ("/instances", {"process": "zone_creation", "data": {"county_code": "210124"}}),
        (f"/instances/{world.case_b}/terminate", {"reason": "x"}),
    ]
    with world.engine().sessions() as session:
        events_before = session.scalar(select(func.count()).select_from(HistoryEvent))
    # Read once, so the case is live here: its commands then check the token inside their write.
    assert api(world, "dalian_sa").get(f"/tasks/{world.recommend_b}").status_code == 200
    assert world.engine().store.is_live_task(world.recommend_b)
    for headers in ({}, {"Authorization": "Bearer dz_nope"}, {"Authorization": "Basic abc"}):
        for path, body in commands:
            response = client.post("/api/v1" + path, json=body, headers=headers)
            assert response.status_code == 401 and response.is_json, (path, headers, response.status_code)
    with world.engine().sessions() as session:
        assert session.scalar(select(func.count()).select_from(HistoryEvent)) == events_before


def test_only_the_hash_of_a_token_is_stored(world: World) -> None:
    with world.engine().sessions() as session:
        hashes = set(session.scalars(select(ApiToken.token_hash)))
    assert hash_token(world.tokens["auditor"]) in hashes
    assert not hashes & set(world.tokens.values())


def test_outside_the_scope_is_403_or_404(world: World) -> None:
    shenyang = api(world, "shenyang_sa")
    assert shenyang.get(f"/tasks/{world.recommend_b}").status_code == 404
    assert shenyang.get(f"/instances/{world.case_b}").status_code == 404
    assert shenyang.get(f"/instances/{world.case_b}/history").status_code == 404
    assert shenyang.post(f"/tasks/{world.recommend_b}/complete", {"data": fill("recommend")}).status_code == 403
    assert shenyang.post(f"/tasks/{world.recommend_b}/claim").status_code == 403
    assert api(world, "faku_party").post(f"/tasks/{world.research_task}/return", {"reason": "x"}).status_code == 403
    started = shenyang.post("/instances", {"process": "zone_creation", "data": {"county_code": "210281"}})
    assert started.status_code == 403  # 瓦房店 is a county of 大连, not of 沈阳
    auditor = api(world, "auditor")
    assert auditor.get(f"/instances/{world.case_b}").status_code == 200  # reads everything
    assert auditor.post(f"/tasks/{world.recommend_b}/complete", {"data": fill("recommend")}).status_code == 403
    assert auditor.post(f"/tasks/{world.recommend_b}/claim").status_code == 403
    assert (
        auditor.post("/instances", {"process": "zone_creation", "data": {"county_code": "210124"}}).status_code == 403
    )


def test_start_return_and_claim(world: World) -> None:
    shenyang = api(world, "shenyang_sa")
    started = shenyang.post("/instances", {"process": "zone_creation", "data": {"county_code": "210124"}})
    assert started.status_code == 201
    case = started.get_json()
    assert case["county_code"] == "210124" and case["open_tasks"][0]["step"] == "recommend"
    again = shenyang.post("/instances", {"process": "zone_creation", "data": {"county_code": "210124"}})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert shenyang.post("/instances", {"process": "nope", "data": {}}).status_code == 404
    assert shenyang.post("/instances", {"data": {}}).status_code == 400
    task = case["open_tasks"][0]["id"]
    claimed = shenyang.post(f"/tasks/{task}/claim")
    assert claimed.status_code == 200 and claimed.get_json()["claimed_by"] == "shenyang_sa"
    xinmin = api(world, "xinmin_party")
    assert xinmin.post(f"/tasks/{world.research_task}/return", {"reason": "x"}).status_code == 409  # not returnable
    talent = api(world, "shenyang_talent")
    shenyang.post(f"/tasks/{task}/complete", {"data": fill("recommend")})
    cosign = open_task(world.engine(), uuid.UUID(case["id"]), "talent_cosign")
    assert talent.post(f"/tasks/{cosign}/return", {"reason": ""}).status_code == 400
    returned = talent.post(f"/tasks/{cosign}/return", {"reason": "推荐理由不充分"})
    assert returned.status_code == 200 and returned.get_json()["open_tasks"][0]["step"] == "recommend"


def test_a_lost_race_is_409_and_nothing_is_written_twice(world: World) -> None:
    dalian = api(world, "dalian_sa")
    body = {"data": fill("recommend")}
    results: list[int] = []
    barrier = threading.Barrier(2)

    def complete() -> None:
        barrier.wait()
        results.append(dalian.post(f"/tasks/{world.recommend_b}/complete", body).status_code)

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 409]
    history = dalian.get(f"/instances/{world.case_b}/history").get_json()["items"]
    assert [e["command"] for e in history] == ["start", "complete"]


def test_errors_are_json_never_html(world: World) -> None:
    client = world.app.test_client()
    for response in (
        client.get("/api/v1/nothing-here"),
        client.get("/api/v1/tasks/not-a-uuid", headers={"Authorization": f"Bearer {world.tokens['auditor']}"}),
        client.delete("/api/v1/tasks"),
        api(world, "auditor").get("/tasks?page=0"),
        api(world, "auditor").get("/tasks?per_page=1000"),
        api(world, "auditor").get("/tasks?overdue=maybe"),
        api(world, "auditor").get("/tasks?sort=sideways"),
    ):
        assert response.status_code in (400, 404, 405), response.status_code
        assert response.is_json and set(response.get_json()["error"]) == {"code", "message", "details"}
        assert b"<html" not in response.data


def test_the_api_needs_no_csrf_token_but_pages_do(world: World) -> None:
    assert api(world, "dalian_sa").post(f"/tasks/{world.recommend_b}/claim").status_code == 200


def test_openapi_document(world: World) -> None:
    doc = world.app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    paths = set(doc["paths"])
    for path in (
        "/api/v1/tasks",
        "/api/v1/tasks/{task_id}",
        "/api/v1/tasks/{task_id}/complete",
        "/api/v1/tasks/{task_id}/return",
        "/api/v1/tasks/{task_id}/claim",
        "/api/v1/instances",
        "/api/v1/instances/{instance_id}",
        "/api/v1/instances/{instance_id}/history",
    ):
        assert path in paths
    rules = {
        r.rule.replace("<uuid:task_id>", "{task_id}")
        .replace("<uuid:instance_id>", "{instance_id}")
        .replace("<uuid:document_id>", "{document_id}")
        for r in world.app.url_map.iter_rules()
        if r.rule.startswith("/api/")
    }
    assert rules == paths  # every route documented, nothing documented that does not exist

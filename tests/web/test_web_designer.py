"""Designer pages: process list, modeler validate/deploy, form editor, version diff and case migration.

Tests that deploy get their own copy of ``processes/`` and ``forms/`` (``studio``), so the real folders
are never written. Case A (新民市) has completed ``recommend`` and ``talent_cosign``; case B (瓦房店市)
waits at ``recommend``: changing ``recommend`` makes A unsafe to migrate and leaves B safe.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.db import write_session
from engine.errors import SpecInvalid
from engine.models import HistoryEvent, Instance, ProcessVersion
from engine.settings import PROJECT_ROOT
from tests.web.conftest import World, engine_for, signed_in
from web import create_app

ZONE = "zone_creation"
ZONE_XML = (PROJECT_ROOT / "processes" / f"{ZONE}.bpmn").read_text(encoding="utf-8")
BROKEN = ZONE_XML.replace('value="recommend.json"', 'value="no_such_form.json"')  # recommend: unknown form
OTHERS = ("shenyang_sa", "xinmin_party", "dalian_sa", "province_office", "auditor", "s001", "admin")
GET_ROUTES = (
    "/designer/",
    f"/designer/processes/{ZONE}",
    f"/designer/processes/{ZONE}/edit",
    "/designer/processes/new?process_id=x_new",
    f"/designer/processes/{ZONE}/diff",
    "/designer/forms/",
    "/designer/forms/recommend.json",
    "/designer/forms/new?name=x_new",
    f"/designer/migrate/{ZONE}",
)
POST_ROUTES = (
    "/designer/processes/upload",
    f"/designer/processes/{ZONE}/validate",
    f"/designer/processes/{ZONE}/deploy",
    "/designer/forms/recommend.json/preview",
    "/designer/forms/recommend.json/deploy",
    f"/designer/migrate/{ZONE}/plan",
    f"/designer/migrate/{ZONE}/run",
)


@pytest.fixture
def studio(web_template: tuple[Path, World], tmp_path: Path) -> Iterator[World]:
    """A fresh database and an app whose engine reads and writes copies of processes/ and forms/."""
    source, prepared = web_template
    processes, forms = tmp_path / "processes", tmp_path / "forms"
    shutil.copytree(PROJECT_ROOT / "processes", processes)
    shutil.copytree(PROJECT_ROOT / "forms", forms)
    shutil.copyfile(source, tmp_path / "web.db")
    url = f"sqlite:///{tmp_path / 'web.db'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "ENGINE": engine_for(url, processes, forms)})
    built = World(**{**prepared.__dict__, "url": url, "app": app})
    yield built
    built.engine().db.dispose()


def modeler_config(page: str) -> dict:
    return json.loads(re.search(r'id="modeler-config">(.*?)</script>', page, re.S).group(1))


def post_json(user, url: str, body: dict):  # noqa: ANN001, ANN201
    return user.client.post(url, json=body, headers={"X-CSRFToken": user.csrf()})


def versions(world: World, process_id: str = ZONE) -> list[tuple[int, int, str]]:
    with write_session(world.engine().sessions) as session:
        return session.execute(
            select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.deployed_by)
            .where(ProcessVersion.process_id == process_id)
            .order_by(ProcessVersion.version)
        ).all()


def version_of_case(world: World, instance_id: uuid.UUID) -> int:
    with write_session(world.engine().sessions) as session:
        return session.scalar(
            select(ProcessVersion.version)
            .join(Instance, Instance.process_version_id == ProcessVersion.id)
            .where(Instance.id == instance_id)
        )


def renamed(step: str, name: str) -> str:
    """zone_creation with the user task ``step`` renamed (a change SpiffWorkflow sees)."""
    changed, count = re.subn(rf'(<bpmn:userTask id="{step}" name=")[^"]*"', rf'\g<1>{name}"', ZONE_XML)
    assert count == 1
    return changed


# -- access ------------------------------------------------------------------------------------


def test_every_designer_route_is_listed_here(shared: World) -> None:
    rules = {r.rule for r in shared.app.url_map.iter_rules() if r.endpoint.startswith("designer")}
    listed = {re.sub(r"\?.*", "", url) for url in GET_ROUTES + POST_ROUTES}
    patterns = [re.sub(r"<[^>]+>", "[^/]+", rule) + "$" for rule in rules]
    assert all(any(re.match(p, url) for url in listed) for p in patterns), sorted(rules)


@pytest.mark.parametrize("username", OTHERS)
def test_other_roles_are_refused_everywhere(shared: World, username: str) -> None:
    user = signed_in(shared.app, username)
    for url in GET_ROUTES:
        assert user.get(url).status_code in (403, 404), (username, url)
    for url in POST_ROUTES:
        assert user.post(url, {"case": str(shared.case_b), "target": "1"}).status_code in (403, 404), url
        assert post_json(user, url, {"xml": ZONE_XML, "text": "{}"}).status_code in (403, 404), url
    assert "/designer/" not in user.get("/inbox").get_data(as_text=True)


def test_anonymous_is_sent_to_sign_in(shared: World) -> None:
    client = shared.app.test_client()
    for url in GET_ROUTES:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_designer_sees_processes_versions_and_running_cases(shared: World) -> None:
    designer = signed_in(shared.app, "designer")
    assert 'href="/designer/"' in designer.get("/inbox").get_data(as_text=True)
    for url in GET_ROUTES:
        if "diff" in url:
            continue
        assert designer.get(url, follow_redirects=True).status_code == 200, url
    page = designer.get("/designer/").get_data(as_text=True)
    assert ZONE in page and "v1: 2" in page  # two running zone_creation cases on version 1
    assert "文件在部署后已修改" not in page  # the files are what was deployed
    form = designer.get("/designer/forms/recommend.json").get_data(as_text=True)
    assert 'name="f.recommend_overview"' in form  # the preview, rendered as HTML
    detail = designer.get(f"/designer/processes/{ZONE}").get_data(as_text=True)
    assert "system" in detail and "示范区创建" in detail
    # the modeler page carries the XML of the file
    edit = designer.get(f"/designer/processes/{ZONE}/edit").get_data(as_text=True)
    config = modeler_config(edit)
    assert config["xml"] == ZONE_XML and config["file"] == f"{ZONE}.bpmn"
    # designers see no case data: no business keys or form data on the list pages
    assert "210181" not in page and "210181" not in detail


# -- validate and deploy -------------------------------------------------------------------------


def test_validate_returns_findings_on_the_broken_elements(shared: World) -> None:
    designer = signed_in(shared.app, "designer")
    response = post_json(designer, f"/designer/processes/{ZONE}/validate", {"xml": BROKEN})
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is False and body["file"] == f"{ZONE}.bpmn"
    finding = next(f for f in body["findings"] if f["element_id"] == "recommend")
    assert finding["severity"] == "error" and finding["rule"] == "user-task-form" and finding["line"]
    assert post_json(designer, f"/designer/processes/{ZONE}/validate", {"xml": ZONE_XML}).get_json()["ok"] is True
    unreadable = post_json(designer, f"/designer/processes/{ZONE}/validate", {"xml": "<bpmn:definitions"})
    assert unreadable.get_json()["ok"] is False and unreadable.get_json()["findings"]


def test_validate_needs_the_csrf_token(shared: World) -> None:
    designer = signed_in(shared.app, "designer")
    response = designer.client.post(f"/designer/processes/{ZONE}/validate", json={"xml": ZONE_XML})
    assert response.status_code == 400


def test_deploy_is_refused_with_findings_and_nothing_is_stored(studio: World) -> None:
    designer = signed_in(studio.app, "designer")
    before = versions(studio)
    response = post_json(designer, f"/designer/processes/{ZONE}/deploy", {"xml": BROKEN})
    assert response.status_code == 422
    body = response.get_json()
    assert body["ok"] is False and "recommend" in {f["element_id"] for f in body["findings"]}
    assert all(f["severity"] == "error" for f in body["findings"])
    assert versions(studio) == before
    assert (studio.engine().settings.processes_dir / f"{ZONE}.bpmn").read_text(encoding="utf-8") == ZONE_XML


def test_deploy_creates_a_new_version_and_running_cases_stay_on_theirs(studio: World) -> None:
    designer = signed_in(studio.app, "designer")
    xml = renamed("joint_request", "起草联合请示（修订）")
    response = post_json(designer, f"/designer/processes/{ZONE}/deploy", {"xml": xml})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["ok"] and body["redirect"] == f"/designer/processes/{ZONE}"
    mine = next(r for r in body["results"] if r["process_id"] == ZONE)
    assert mine["created"] and mine["version"] == 2
    assert [(v, by) for _id, v, by in versions(studio)] == [(1, "system"), (2, "designer")]
    assert (studio.engine().settings.processes_dir / f"{ZONE}.bpmn").read_text(encoding="utf-8") == xml
    assert version_of_case(studio, studio.case_a) == 1 and version_of_case(studio, studio.case_b) == 1
    page = designer.get(body["redirect"]).get_data(as_text=True)
    assert "v2" in page and "designer" in page and "与最新版本部署时的文件不同" not in page
    # deploying the same thing again creates nothing
    again = post_json(designer, f"/designer/processes/{ZONE}/deploy", {"xml": xml}).get_json()
    assert again["ok"] and not next(r for r in again["results"] if r["process_id"] == ZONE)["created"]
    assert len(versions(studio)) == 2


def test_a_failing_deploy_puts_the_files_back(studio: World, monkeypatch: pytest.MonkeyPatch) -> None:
    designer = signed_in(studio.app, "designer")
    engine = studio.engine()

    def refuse(session, deployed_by):  # noqa: ANN001, ANN202
        raise SpecInvalid("changed under us", [])

    monkeypatch.setattr(engine, "deploy", refuse)
    response = post_json(designer, f"/designer/processes/{ZONE}/deploy", {"xml": renamed("recommend", "改")})
    assert response.status_code == 422
    assert (engine.settings.processes_dir / f"{ZONE}.bpmn").read_text(encoding="utf-8") == ZONE_XML
    assert len(versions(studio)) == 1


def test_a_new_process_is_written_and_deployed(studio: World) -> None:
    designer = signed_in(studio.app, "designer")
    processes_dir = studio.engine().settings.processes_dir
    assert designer.get("/designer/processes/new?process_id=../etc").status_code == 302
    assert designer.get("/designer/processes/..%2Fetc/edit").status_code in (400, 404)
    page = designer.get("/designer/processes/x_new/edit").get_data(as_text=True)
    skeleton = modeler_config(page)["xml"]
    assert 'id="x_new"' in skeleton
    mismatched = skeleton.replace('bpmn:process id="x_new"', 'bpmn:process id="x_other"')
    refused = post_json(designer, "/designer/processes/x_new/deploy", {"xml": mismatched})
    assert refused.status_code == 422 and refused.get_json()["findings"]
    assert not (processes_dir / "x_new.bpmn").exists()
    response = post_json(designer, "/designer/processes/x_new/deploy", {"xml": skeleton})
    assert response.status_code == 200, response.get_json()
    assert (processes_dir / "x_new.bpmn").read_text(encoding="utf-8") == skeleton
    assert [(v, by) for _id, v, by in versions(studio, "x_new")] == [(1, "designer")]


def test_upload_opens_the_file_in_the_modeler(shared: World) -> None:
    designer = signed_in(shared.app, "designer")
    response = designer.post(
        "/designer/processes/upload",
        {"file": (BytesIO(ZONE_XML.encode()), f"{ZONE}.bpmn")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert modeler_config(response.get_data(as_text=True))["xml"] == ZONE_XML
    wrong = designer.post(
        "/designer/processes/upload", {"file": (BytesIO(b"x"), "x.txt")}, content_type="multipart/form-data"
    )
    assert wrong.status_code == 302


# -- forms ---------------------------------------------------------------------------------------


def test_form_preview_shows_syntax_and_schema_errors(shared: World) -> None:
    designer = signed_in(shared.app, "designer")
    url = "/designer/forms/recommend.json/preview"
    syntax = post_json(designer, url, {"text": '{\n  "type": "object",\n  "properties": {,}\n}'}).get_json()
    assert syntax["ok"] is False and syntax["html"] == ""
    assert syntax["problems"][0]["kind"] == "syntax"
    assert (syntax["problems"][0]["line"], syntax["problems"][0]["column"]) == (3, 18)
    schema = {"type": "object", "properties": {"a": {"type": "strnig", "title": "甲"}}, "required": "a"}
    invalid = post_json(designer, url, {"text": json.dumps(schema)}).get_json()
    assert invalid["ok"] is False
    assert {p["path"] for p in invalid["problems"]} >= {"/properties/a/type", "/required"}
    not_a_form = post_json(designer, url, {"text": '{"type": "string"}'}).get_json()
    assert not_a_form["ok"] is False and not_a_form["problems"][0]["kind"] == "form"
    good = {"type": "object", "properties": {"a": {"type": "integer", "title": "项目数量", "minimum": 1}}}
    preview = post_json(designer, url, {"text": json.dumps(good)}).get_json()
    assert preview["ok"] and "项目数量" in preview["html"] and 'name="f.a"' in preview["html"]
    checked = post_json(designer, url, {"text": json.dumps(good), "values": [["f.a", "0"]]}).get_json()
    assert "field-error" in checked["html"]
    real = (PROJECT_ROOT / "forms" / "recommend.json").read_text(encoding="utf-8")
    assert post_json(designer, url, {"text": real}).get_json()["ok"]
    phone = {"type": "string", "title": "联系电话", "pattern": "^1[0-9]{10}$", "examples": ["024-1234"]}
    wrong = {"type": "object", "properties": {"phone": phone}}
    example = post_json(designer, url, {"text": json.dumps(wrong, ensure_ascii=False)}).get_json()
    assert example["ok"] is False and 'name="f.phone"' in example["html"]  # still previewed
    assert example["problems"][0]["path"] == "phone"
    assert example["problems"][0]["message"].startswith("示例 \"024-1234\"（phone）不符合该字段本身的要求")


def test_form_deploy_checks_then_creates_versions_of_the_processes_using_it(studio: World) -> None:
    designer = signed_in(studio.app, "designer")
    url = "/designer/forms/talent_cosign.json/deploy"
    forms_dir = studio.engine().settings.forms_dir
    original = (forms_dir / "talent_cosign.json").read_text(encoding="utf-8")
    refused = post_json(designer, url, {"text": '{"type": "object", "properties": {"a": {"type": 5}}}'})
    assert refused.status_code == 422 and refused.get_json()["problems"]
    assert (forms_dir / "talent_cosign.json").read_text(encoding="utf-8") == original
    schema = json.loads(original)
    schema["description"] = "修订说明"
    text = json.dumps(schema, ensure_ascii=False, indent=2)
    response = post_json(designer, url, {"text": text})
    assert response.status_code == 200, response.get_json()
    assert (forms_dir / "talent_cosign.json").read_text(encoding="utf-8") == text
    assert [v for _id, v, _by in versions(studio)] == [1, 2]
    assert version_of_case(studio, studio.case_b) == 1


# -- diff and migration --------------------------------------------------------------------------


def test_diff_and_migration_of_the_safe_cases(studio: World) -> None:
    designer = signed_in(studio.app, "designer")
    response = post_json(
        designer, f"/designer/processes/{ZONE}/deploy", {"xml": renamed("recommend", "填报推荐表（新）")}
    )
    assert response.status_code == 200, response.get_json()
    (_v1, _one, _), (v2, _two, _) = versions(studio)

    diff = designer.get(f"/designer/processes/{ZONE}/diff")
    assert diff.status_code == 200
    page = diff.get_data(as_text=True)
    changed = page.split('id="diff-changed"')[1].split("</div>")[0]
    assert "recommend" in changed and "填报推荐表（新）" in changed
    state = json.loads(re.search(r'id="diff-state">(.*?)</script>', page, re.S).group(1))
    assert "recommend" in state["newer"]["markers"]["changed"]

    choose = designer.get(f"/designer/migrate/{ZONE}").get_data(as_text=True)
    assert str(studio.case_a) in choose and str(studio.case_b) in choose
    plan = designer.post(
        f"/designer/migrate/{ZONE}/plan",
        [("target", str(v2)), ("case", str(studio.case_a)), ("case", str(studio.case_b))],
    )
    assert plan.status_code == 200
    text = plan.get_data(as_text=True)
    assert "环节 recommend 已被修改或删除，但在本案件中已完成。" in text  # the engine's reason, translated
    safe = re.findall(r'<input type="hidden" name="case" value="([^"]+)">', text)
    assert safe == [str(studio.case_b)]  # A already completed the changed step
    assert version_of_case(studio, studio.case_b) == 1  # planning writes nothing

    refused = designer.post(
        f"/designer/migrate/{ZONE}/run", [("target", str(v2)), ("case", str(studio.case_a)), ("confirm", "yes")]
    )
    assert refused.status_code == 302 and version_of_case(studio, studio.case_a) == 1
    moved = designer.post(
        f"/designer/migrate/{ZONE}/run", [("target", str(v2)), ("case", str(studio.case_b)), ("confirm", "yes")]
    )
    assert moved.status_code == 302 and moved.headers["Location"] == f"/designer/processes/{ZONE}"
    assert version_of_case(studio, studio.case_b) == 2 and version_of_case(studio, studio.case_a) == 1
    with write_session(studio.engine().sessions) as session:
        event = session.scalars(
            select(HistoryEvent).where(HistoryEvent.instance_id == studio.case_b, HistoryEvent.command == "migrate")
        ).one()
        assert event.actor == "designer" and event.payload["to_version"] == 2
        assert (
            session.scalar(select(func.count()).select_from(HistoryEvent).where(HistoryEvent.command == "migrate")) == 1
        )

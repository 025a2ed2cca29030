"""Engine commands on a small process: permissions, validation, claims, returns, timers, races and
rollback. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import AppEngine, Settings, build_engine
from engine.access import load_actor
from engine.case_rows import select_case_of_task, write_case_row
from engine.db import read_session, write_session
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TaskNotReady, WorkflowFailed
from engine.history import event_content, event_hash
from engine.models import DocumentCounter, HistoryEvent, Instance, OpenTask, RoleAssignment, User
from engine.programme import SERVICES
from tests.support.scenario import Scenario

DEFINITIONS = Path(__file__).parent.parent / "definitions"
START_DATA = {"county_code": "210181"}  # 新民市, 沈阳市


@pytest.fixture
def mini(database_url: str, clock) -> Iterator[AppEngine]:
    """The engine with the small test process deployed beside the programme's."""
    app_engine = build_engine(
        Settings(database_url=database_url, processes_dir=DEFINITIONS, forms_dir=DEFINITIONS / "forms"), clock
    )
    with write_session(app_engine.sessions) as session:
        app_engine.deploy(session)
    yield app_engine
    app_engine.db.dispose()


@pytest.fixture
def case(mini: AppEngine) -> Scenario:
    scenario = Scenario(mini)
    scenario.start("shenyang_sa", "mini", START_DATA)
    return scenario


def snapshot(engine: AppEngine) -> tuple:
    """Everything a failed command must leave untouched."""
    with read_session(engine.sessions) as session:
        instances = session.execute(select(Instance.id, Instance.revision, Instance.state, Instance.status)).all()
        tasks = session.execute(select(OpenTask.id, OpenTask.claimed_by).order_by(OpenTask.id)).all()
        events = session.scalar(select(func.count()).select_from(HistoryEvent))
        counters = session.execute(select(DocumentCounter.prefix, DocumentCounter.last_number)).all()
    return sorted(map(tuple, instances)), list(map(tuple, tasks)), events, sorted(map(tuple, counters))


def add_user(engine: AppEngine, username: str, role: str, org_code: str) -> None:
    with write_session(engine.sessions) as session:
        user = User(username=username, display_name=username, password_hash="x", created_at=engine.now())
        user.roles.append(RoleAssignment(role=role, org_code=org_code))
        session.add(user)


def test_only_the_right_role_in_the_right_city_may_start(mini: AppEngine) -> None:
    before = snapshot(mini)
    for username in ("xinmin_party", "dalian_sa"):
        with pytest.raises(PermissionDenied), write_session(mini.sessions) as session:
            mini.start_instance(session, load_actor(session, username), "mini", START_DATA)
    with pytest.raises(InvalidInput) as raised, write_session(mini.sessions) as session:
        mini.start_instance(session, load_actor(session, "shenyang_sa"), "mini", {"county_code": "999999"})
    assert set(raised.value.details) == {"county_code"}
    assert snapshot(mini) == before


def test_a_second_running_zone_creation_for_the_same_county_is_refused(mini: AppEngine) -> None:
    Scenario(mini).start("shenyang_sa", "zone_creation", START_DATA)
    with pytest.raises(Conflict):
        Scenario(mini).start("shenyang_sa", "zone_creation", START_DATA)
    Scenario(mini).start("shenyang_sa", "mini", START_DATA)
    Scenario(mini).start("shenyang_sa", "mini", START_DATA)


def test_tasks_are_offered_to_role_and_scope_only(case: Scenario) -> None:
    assert [t.step for t in case.tasks("shenyang_sa")] == ["a"]
    assert case.tasks("dalian_sa") == []
    assert case.tasks("xinmin_party") == []
    task = case.task("shenyang_sa", "a")
    before = snapshot(case.engine)
    for username in ("dalian_sa", "xinmin_party", "auditor"):
        with pytest.raises(PermissionDenied):
            case.complete_id(username, task.id, {"x": 1})
    assert snapshot(case.engine) == before


def test_cases_outside_ones_scope_do_not_exist(case: Scenario) -> None:
    with read_session(case.engine.sessions) as session:
        with pytest.raises(NotFound):
            case.engine.get_instance(session, load_actor(session, "dalian_sa"), case.instance_id)
        assert (
            case.engine.get_instance(session, load_actor(session, "xinmin_gov"), case.instance_id).status == "running"
        )


def test_invalid_data_is_refused_per_field_and_changes_nothing(case: Scenario) -> None:
    task = case.task("shenyang_sa", "a")
    before = snapshot(case.engine)
    with pytest.raises(InvalidInput) as raised:
        case.complete_id("shenyang_sa", task.id, {"x": "many", "province_decision": "批准"})
    assert raised.value.details == {
        "x": "数量：类型不正确，应为整数",
        "province_decision": "不允许的字段：province_decision",
    }
    with pytest.raises(InvalidInput) as raised:
        case.complete_id("shenyang_sa", task.id, {})
    assert raised.value.details == {"x": "数量：此项为必填项"}
    with pytest.raises(InvalidInput):
        case.complete_id("shenyang_sa", task.id, {"x": 1, "typename": "BpmnWorkflow"})
    # A lone surrogate (JSON can carry one as "\ud800") cannot be stored as UTF-8: refused, field named.
    for data, field in (({"x": 1, "note": ["ok", "a\ud800"]}, "note/1"), ({"x": 1, "\udc00": "v"}, "\udc00")):
        with pytest.raises(InvalidInput) as raised:
            case.complete_id("shenyang_sa", task.id, data)
        assert raised.value.details[field] == "含有无效字符（孤立的代理码位）"
    assert snapshot(case.engine) == before


def test_a_claimed_task_belongs_to_its_claimer_until_given_back(case: Scenario) -> None:
    add_user(case.engine, "shenyang_sa2", "city_sa", "210100")
    task = case.task("shenyang_sa", "a")
    with write_session(case.engine.sessions) as session:
        claimed = case.engine.claim_task(session, load_actor(session, "shenyang_sa2"), task.id)
    assert claimed.claimed_by == "shenyang_sa2"
    assert case.tasks("shenyang_sa") == []
    with pytest.raises(PermissionDenied):
        case.complete_id("shenyang_sa", task.id, {"x": 1})
    with pytest.raises(PermissionDenied), write_session(case.engine.sessions) as session:
        case.engine.unclaim_task(session, load_actor(session, "shenyang_sa"), task.id)
    with write_session(case.engine.sessions) as session:
        case.engine.unclaim_task(session, load_actor(session, "shenyang_sa2"), task.id)
    case.complete("shenyang_sa", "a", {"x": 1})
    assert [e.command for e in case.history()] == ["start", "claim", "unclaim", "complete"]


def test_return_sends_the_case_back_with_a_reason(case: Scenario) -> None:
    with pytest.raises(TaskNotReady):
        case.return_task("shenyang_sa", "a", "no")
    case.complete("shenyang_sa", "a", {"x": 1})
    with pytest.raises(InvalidInput):
        case.return_task("xinmin_party", "b", "  ")
    before = snapshot(case.engine)
    with pytest.raises(InvalidInput) as raised:  # as the CLI passes an argument with undecodable bytes
        case.return_task("xinmin_party", "b", "材料\udcff不全")
    assert raised.value.details == {"reason": "含有无效字符（孤立的代理码位）"}
    assert snapshot(case.engine) == before
    case.return_task("xinmin_party", "b", "材料不全，请补充")
    assert case.open_steps() == ["a"]
    case.complete("shenyang_sa", "a", {"x": 2})
    view = case.complete("xinmin_party", "b", {"b_decision": "同意"})
    assert view.data["return_reason"] == "材料不全，请补充"
    assert view.data["approval"]["approval_no"] == "辽科协发〔2026〕1号"
    assert case.path()[:4] == ["start", "merge", "a", "b"]
    assert [e.command for e in case.history()].count("return") == 1


def test_due_dates_and_boundary_timers_follow_the_clock(case: Scenario) -> None:
    case.complete("shenyang_sa", "a", {"x": 1})
    task = case.task("xinmin_party", "b")
    assert task.due_at.date().isoformat() == "2026-03-12"
    assert case.view().next_timer_at.date().isoformat() == "2026-03-12"
    assert case.advance(days=9) == []
    assert case.advance(days=2) == [case.instance_id]
    assert case.open_steps() == ["b", "late"]
    assert case.advance(days=30) == [], "a fired timer never fires again"
    case.complete("shenyang_sa", "late", {"note": "已督促"})
    view = case.complete("xinmin_party", "b", {"b_decision": "同意"})
    assert (view.status, view.outcome) == ("completed", "已批复")


def test_two_users_completing_one_task_at_once_exactly_one_wins(case: Scenario) -> None:
    add_user(case.engine, "shenyang_sa2", "city_sa", "210100")
    for round_number in range(3):
        task = case.task("shenyang_sa", "a")
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def complete(username: str, task_id=task.id, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                case.complete_id(username, task_id, {"x": 1})
                outcomes.append("ok")
            except Conflict as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=complete, args=(u,)) for u in ("shenyang_sa", "shenyang_sa2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert outcomes.count("ok") == 1, (round_number, outcomes)
        assert sum(isinstance(o, Conflict) for o in outcomes) == 1
        case.return_task("xinmin_party", "b", f"round {round_number}")
    completions = [e for e in case.history() if e.command == "complete"]
    assert len(completions) == 3


def test_a_stale_revision_is_a_conflict(case: Scenario) -> None:
    task = case.task("shenyang_sa", "a")
    with case.engine.sessions() as session:
        session.get(Instance, case.instance_id)  # read at the current revision ...
        case.complete_id("shenyang_sa", task.id, {"x": 1})  # ... then changed by someone else
        with pytest.raises(Conflict):
            case.engine.claim_task(session, load_actor(session, "shenyang_sa"), task.id)
        session.rollback()
    assert [e.command for e in case.history()] == ["start", "complete"]


def test_a_task_command_writing_its_case_row_at_a_stale_revision_is_a_conflict(case: Scenario) -> None:
    task = case.task("shenyang_sa", "a")
    with case.engine.sessions() as session:
        row, _open_rows = select_case_of_task(session, task.id)  # read at the current revision ...
        session.commit()
        case.complete_id("shenyang_sa", task.id, {"x": 1})  # ... then changed by someone else
        row.updated_at = case.engine.now()
        with pytest.raises(Conflict):
            write_case_row(session, row)
        session.rollback()
    assert [e.command for e in case.history()] == ["start", "complete"]
    with read_session(case.engine.sessions) as session:
        assert session.get(Instance, case.instance_id).revision == row.revision + 1


def test_a_case_row_the_session_loaded_before_a_completion_is_read_again_after_it(case: Scenario) -> None:
    with write_session(case.engine.sessions) as session:
        actor = load_actor(session, "shenyang_sa")
        loaded = session.get(Instance, case.instance_id)
        revision = loaded.revision
        view = case.engine.complete_task(session, actor, case.task("shenyang_sa", "a").id, {"x": 1})
        assert loaded.revision == revision + 1
        # An ORM command on the same case in the same transaction then writes at the right revision.
        case.engine.claim_task(session, load_actor(session, "xinmin_party"), view.open_tasks[0].id)
    assert [e.command for e in case.history()] == ["start", "complete", "claim"]
    assert case.task("xinmin_party", "b").claimed_by == "xinmin_party"


def test_a_failure_anywhere_in_a_command_rolls_everything_back(case: Scenario, monkeypatch) -> None:
    case.complete("shenyang_sa", "a", {"x": 1})
    task = case.task("xinmin_party", "b")
    before = snapshot(case.engine)

    def broken_service(*_args, **_kwargs):
        raise RuntimeError("document service down")

    monkeypatch.setitem(SERVICES, "issue_approval", broken_service)
    with pytest.raises(WorkflowFailed):
        case.complete_id("xinmin_party", task.id, {"b_decision": "同意"})
    assert snapshot(case.engine) == before
    monkeypatch.undo()

    import engine.runtime as runtime

    def broken_history(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runtime, "append_event", broken_history)
    with pytest.raises(RuntimeError):
        case.complete_id("xinmin_party", task.id, {"b_decision": "同意"})
    assert snapshot(case.engine) == before
    monkeypatch.undo()
    assert case.complete_id("xinmin_party", task.id, {"b_decision": "同意"}).status == "completed"


def test_history_is_hash_chained(case: Scenario) -> None:
    case.complete("shenyang_sa", "a", {"x": 7})
    events = case.history()
    previous = None
    for event in events:
        assert event.prev_hash == previous
        assert event.hash == event_hash(previous, event_content(event))
        previous = event.hash
    assert events[-1].payload["data"] == {"x": 7}
    assert events[-1].actor == "shenyang_sa" and events[-1].role == "city_sa" and events[-1].org_code == "210100"


def test_a_rolled_back_command_leaves_no_trace_in_the_live_workflow_cache(case: Scenario) -> None:
    task = case.task("shenyang_sa", "a")
    with pytest.raises(RuntimeError), write_session(case.engine.sessions) as session:
        case.engine.complete_task(session, load_actor(session, "shenyang_sa"), task.id, {"x": 1})
        raise RuntimeError("the caller fails after the command succeeded")
    assert case.open_steps() == ["a"]
    view = case.complete("shenyang_sa", "a", {"x": 2})
    assert [t.step for t in view.open_tasks] == ["b"]
    case.return_task("xinmin_party", "b", "again")
    assert case.complete("shenyang_sa", "a", {"x": 3}).data["x"] == 3
    assert [e.payload.get("data") for e in case.history() if e.command == "complete"] == [{"x": 2}, {"x": 3}]

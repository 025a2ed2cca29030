"""Moving running cases to a new process version: only when safe, logged, and replayable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import AppEngine, Settings, build_engine
from engine.access import load_actor
from engine.db import read_session, write_session
from engine.errors import Conflict, PermissionDenied
from engine.migration import diff_versions, migrate_instances, plan_migration
from engine.models import Instance, ProcessVersion
from engine.replay import replay_instance, replay_steps
from tests.support.scenario import Scenario

DEFINITIONS = Path(__file__).parent.parent / "definitions"
NEW_STEP = """<bpmn:userTask id="a2" name="补充材料">
      <bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename"
        value="late.json"/></spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="fa2" sourceRef="a2" targetRef="b"/>
"""


def engine_for(url: str, folder: Path, clock) -> AppEngine:
    return build_engine(Settings(database_url=url, processes_dir=folder, forms_dir=folder / "forms"), clock)


@pytest.fixture
def versions(database_url: str, clock, tmp_path: Path):
    """mini v1 deployed with two cases (one at a, one past a); then v2 with a new step after a."""
    folder = tmp_path / "defs"
    shutil.copytree(DEFINITIONS, folder)
    v1 = engine_for(database_url, folder, clock)
    with write_session(v1.sessions) as session:
        v1.deploy(session)
    early, late = Scenario(v1), Scenario(v1)
    early.start("shenyang_sa", "mini", {"county_code": "210181"})
    late.start("shenyang_sa", "mini", {"county_code": "210124"})
    late.complete("shenyang_sa", "a", {"x": 1})
    v1.db.dispose()
    bpmn = folder / "mini.bpmn"
    text = bpmn.read_text(encoding="utf-8").replace(
        "<bpmn:flowNodeRef>b</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>b</bpmn:flowNodeRef><bpmn:flowNodeRef>a2</bpmn:flowNodeRef>",
    )
    text = text.replace(
        '<bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="b"/>',
        '<bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="a2"/>\n    ' + NEW_STEP,
    )
    bpmn.write_text(text, encoding="utf-8")
    v2 = engine_for(database_url, folder, clock)
    with write_session(v2.sessions) as session:
        v2.deploy(session)
        versions = dict(
            session.execute(
                select(ProcessVersion.version, ProcessVersion.id).where(ProcessVersion.process_id == "mini")
            )
            .tuples()
            .all()
        )
    early.engine = late.engine = v2
    yield v2, early, late, versions
    v2.db.dispose()


def test_running_cases_stay_on_their_version_until_migrated(versions) -> None:
    engine, early, late, ids = versions
    assert early.view().version == 1 and late.view().version == 1
    with read_session(engine.sessions) as session:
        diff = diff_versions(engine, session, ids[1], ids[2])
        assert diff.added == ["a2"] and "a" in diff.changed
        designer = load_actor(session, "designer")
        assert plan_migration(engine, session, designer, early.instance_id, ids[2]).safe
        unsafe = plan_migration(engine, session, designer, late.instance_id, ids[2])
        assert not unsafe.safe and any("step a" in reason for reason in unsafe.reasons)
        with pytest.raises(PermissionDenied):
            plan_migration(engine, session, load_actor(session, "shenyang_sa"), early.instance_id, ids[2])

    with pytest.raises(Conflict), write_session(engine.sessions) as session:
        migrate_instances(
            engine, session, load_actor(session, "designer"), [early.instance_id, late.instance_id], ids[2]
        )
    assert early.view().version == 1, "all or nothing"

    with write_session(engine.sessions) as session:
        migrate_instances(engine, session, load_actor(session, "designer"), [early.instance_id], ids[2])
    assert early.view().version == 2
    early.complete("shenyang_sa", "a", {"x": 5})
    assert early.open_steps() == ["a2"], "the migrated case passes through the new step"
    late_view = late.complete("faku_party", "b", {"b_decision": "同意"})
    assert late_view.version == 1 and late_view.status == "completed"

    with read_session(engine.sessions) as session:
        assert [e.command for e in early.history()] == ["start", "migrate", "complete"]
        assert replay_instance(engine.store, session, early.instance_id).matches
        steps = replay_steps(engine.store, session, early.instance_id)
        assert [s.active for s in steps] == [["a"], ["a"], ["a2"]]
        assert session.get(Instance, late.instance_id).process_version_id == ids[1]

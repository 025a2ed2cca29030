"""The request's session: reads in a plain transaction, writes only inside ``write()``, which alone holds
SQLite's writer lock; the case of a task is deserialized before the lock is taken."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from engine.access import load_actor
from engine.models import Instance, OrgUnit
from tests.web.conftest import World
from web.db import get_engine, get_session, write


def _writer_lock_is_free(world: World) -> bool:
    probe = sqlite3.connect(world.url.removeprefix("sqlite:///"), timeout=0.05, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        probe.close()


def test_a_post_request_holds_the_writers_lock_only_inside_write(world: World) -> None:
    assert world.app is not None
    with world.app.test_request_context("/tasks/x", method="POST"):
        get_session().execute(select(OrgUnit.code).limit(1)).all()  # the request's reads
        assert _writer_lock_is_free(world)
        with write() as session:
            session.get(OrgUnit, "210181").name = "新民市（改）"
            assert not _writer_lock_is_free(world)
        assert _writer_lock_is_free(world)
        get_session().execute(select(OrgUnit.code).limit(1)).all()  # reads after the write: no lock again
        assert _writer_lock_is_free(world)
    with world.app.test_request_context("/"):
        assert get_session().get(OrgUnit, "210181").name == "新民市（改）"


def test_write_sees_the_database_as_it_is_when_the_lock_is_taken(world: World) -> None:
    assert world.app is not None
    with world.app.test_request_context("/tasks/x", method="POST"):
        before = get_session().get(Instance, world.case_a)
        revision = before.revision
        with sqlite3.connect(world.url.removeprefix("sqlite:///")) as other:  # another writer, in between
            other.execute("UPDATE instance SET revision = revision + 1 WHERE id = ?", (world.case_a.hex,))
        with write() as session:
            assert session.get(Instance, world.case_a).revision == revision + 1


def test_a_change_made_outside_write_is_refused_not_written_unlocked(world: World) -> None:
    assert world.app is not None
    with world.app.test_request_context("/tasks/x", method="POST"):
        get_session().get(OrgUnit, "210181").name = "改名"
        with pytest.raises(RuntimeError, match="outside write"), write():
            pass


def test_warming_a_case_puts_its_workflow_in_the_live_cache(world: World) -> None:
    assert world.app is not None
    with world.app.test_request_context("/tasks/x", method="POST"):
        engine, session = get_engine(), get_session()
        assert not engine.store.is_live_task(world.research_task)
        engine.warm_case_of_task(session, load_actor(session, "xinmin_party"), world.research_task)
        assert engine.store.is_live_task(world.research_task)


def test_a_case_is_not_warmed_for_someone_who_may_not_act_on_the_task(world: World) -> None:
    assert world.app is not None
    with world.app.test_request_context("/tasks/x", method="POST"):
        engine, session = get_engine(), get_session()
        engine.warm_case_of_task(session, load_actor(session, "dalian_sa"), world.research_task)
        assert not engine.store.is_live_task(world.research_task)

"""Documents are rendered inline by the issuing command, after it commits by a background thread, or by
the sweep and the first reader; every path stores the same bytes, and a rolled-back issue renders nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import event, func, select

from engine import AppEngine, Settings, build_engine
from engine.access import load_actor
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.document_rendering import DocumentRenderer, render_pending
from engine.documents import get_document, issue_document_pdf, render_document
from engine.models import Document, Instance
from engine.scheduler import build_scheduler, render_left_documents
from tests.documents.helpers import START, drive_to_approval
from tests.support.scenario import Scenario

KINDS = ("联合请示", "考察评估意见表", "批复")


@pytest.fixture
def engine_for(database_url: str) -> Iterator:
    """Engines on one fresh database, each rendering documents the way it is asked to."""
    built: list[AppEngine] = []

    def build(mode: str) -> AppEngine:
        built.append(build_engine(Settings(database_url=database_url, document_rendering=mode), FixedClock(START)))
        return built[-1]

    yield build
    for engine in built:
        engine.db.dispose()


def stored(engine: AppEngine, instance_id) -> dict[str, Document]:  # noqa: ANN001
    with read_session(engine.sessions) as session:
        rows = session.scalars(select(Document).where(Document.instance_id == instance_id))
        return {d.kind: d for d in rows}


def expected_pdf(document: Document) -> bytes:
    source = document.source
    return render_document(document.kind, source["data"], date.fromisoformat(source["issued_on"]), document.document_no)


def test_deferred_documents_wait_for_the_sweep_and_a_reader_gets_the_same_bytes(engine_for) -> None:  # noqa: ANN001
    engine = engine_for("deferred")
    view = drive_to_approval(Scenario(engine))
    pending = stored(engine, view.id)
    assert sorted(pending) == sorted(KINDS)
    assert all(d.content is None and d.sha256 is None for d in pending.values())
    assert "sha256" not in view.data["approval_document"]  # the case data names the document, not its hash

    with read_session(engine.sessions) as session:  # a reader before the sweep: rendered for it, not stored
        served = get_document(session, load_actor(session, "shenyang_sa"), pending["批复"].id)
        assert served.content == expected_pdf(pending["批复"])
        assert served.sha256 == hashlib.sha256(served.content).hexdigest()
    assert stored(engine, view.id)["批复"].content is None

    render_left_documents(engine)  # the scheduler's sweep
    done = stored(engine, view.id)
    for kind in KINDS:
        assert done[kind].content == expected_pdf(done[kind])
        assert done[kind].sha256 == hashlib.sha256(done[kind].content).hexdigest()
    assert done["批复"].content == served.content
    assert render_pending(engine.sessions) == 0  # nothing left, nothing stored twice


@pytest.mark.parametrize("mode", ["inline", "background"])
def test_the_pdf_is_stored_once_the_issuing_command_commits(engine_for, mode: str) -> None:  # noqa: ANN001
    engine = engine_for(mode)
    view = drive_to_approval(Scenario(engine))
    engine.documents.drain()  # background: wait for the renderer thread; inline: nothing to wait for
    documents = stored(engine, view.id)
    assert sorted(documents) == sorted(KINDS)
    for document in documents.values():
        assert document.content == expected_pdf(document)
        assert document.sha256 == hashlib.sha256(document.content).hexdigest()


def test_inline_rendering_stores_the_pdf_in_the_issuing_transaction(engine_for) -> None:  # noqa: ANN001
    engine = engine_for("inline")
    stores = []

    @event.listens_for(engine.db, "before_cursor_execute")
    def _note_stores(_conn, _cursor, statement, *_rest) -> None:  # noqa: ANN001
        if statement.startswith("UPDATE document"):
            stores.append(statement)

    view = drive_to_approval(Scenario(engine))
    documents = stored(engine, view.id)
    assert sorted(documents) == sorted(KINDS)
    assert all(d.content == expected_pdf(d) for d in documents.values())
    assert stores == []  # stored with the row: no second write


def test_a_document_the_command_cannot_typeset_is_typeset_after_the_commit(engine_for, monkeypatch, caplog) -> None:  # noqa: ANN001
    def broken_typesetter(_gongwen):  # noqa: ANN001, ANN202
        raise RuntimeError("glyph missing")

    monkeypatch.setattr("engine.documents.render_pdf", broken_typesetter)  # the command's typesetting only
    engine = engine_for("inline")
    view = drive_to_approval(Scenario(engine))
    assert view.status == "completed"  # the case was not held back
    monkeypatch.undo()
    documents = stored(engine, view.id)
    assert all(d.content == expected_pdf(d) and d.sha256 for d in documents.values())
    assert "not typeset in its issuing transaction" in caplog.text


def test_a_rolled_back_issue_leaves_no_document_and_renders_nothing(engine_for) -> None:  # noqa: ANN001
    engine = engine_for("inline")
    view = drive_to_approval(Scenario(engine))
    approval = stored(engine, view.id)["批复"]
    with pytest.raises(RuntimeError), write_session(engine.sessions) as session:
        session.delete(session.get(Document, approval.id))
        session.flush()
        instance = session.get(Instance, view.id)
        again = issue_document_pdf(session, instance, "批复", engine.now(), data=view.data, render=False)
        assert again.id != approval.id and again.content is None
        raise RuntimeError("the command fails after issuing")
    with read_session(engine.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Document).where(Document.sha256.is_(None))) == 0
        kept = session.scalars(select(Document).where(Document.kind == "批复")).all()
    assert [d.id for d in kept] == [approval.id] and kept[0].content == approval.content


def test_an_unknown_rendering_mode_is_refused(engine_for) -> None:  # noqa: ANN001
    engine = engine_for("inline")
    with pytest.raises(ValueError, match="inline, background, deferred"):
        DocumentRenderer(engine.sessions, "later")


def test_a_started_scheduler_renders_what_a_dead_process_left_pending(engine_for) -> None:  # noqa: ANN001
    issuer = engine_for("deferred")  # stands for a process that died between its commit and the rendering
    view = drive_to_approval(Scenario(issuer))
    worker = engine_for("inline")
    scheduler = build_scheduler(worker, interval_seconds=3600)
    try:
        scheduler.start()  # the sweep runs at once on start, then every interval
        waited = threading.Event()
        for _ in range(100):
            if all(d.sha256 for d in stored(worker, view.id).values()):
                break
            waited.wait(0.1)
    finally:
        scheduler.shutdown(wait=True)
    documents = stored(worker, view.id)
    assert sorted(documents) == sorted(KINDS)
    assert all(d.content == expected_pdf(d) for d in documents.values())

"""Rendering issued documents after the issuing command commits (an asynchronous continuation).

Typesetting a 公文 takes 20–40 ms. In the server, the command whose service task issues it only numbers
it, composes it and records the data it is made from; the composed document is typeset once that
transaction has committed, so neither the case's write transaction nor (on SQLite) the database's
single writer lock waits for reportlab. Who renders depends on ``Settings.document_rendering``:

- ``inline`` (the default: CLI and tests): the issuing command itself, inside its transaction, storing
  the PDF with the document's row (one write instead of two; a CLI command has nobody to keep waiting).
  A document whose typesetting failed there is left pending and tried again right after the commit;
- ``background`` (the server and the worker): one renderer thread of the process, so the user's
  request returns without waiting for the PDF;
- ``deferred``: nobody at once (benchmarks measure the rendering separately).

Nothing is lost if a process dies first: the scheduler's sweep renders any document still pending, and
reading a pending document renders it on the spot. Rendering is deterministic, so every path stores
and serves the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import uuid

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, sessionmaker

from engine.db import read_session, write_session
from engine.gongwen import GongWen, render_pdf
from engine.models import Document

log = logging.getLogger(__name__)
PENDING_KEY = "demozone.pending_documents"
MODES = ("inline", "background", "deferred")

_STORE_RENDERED = (
    Document.__table__.update()
    .where(Document.__table__.c.id == bindparam("document_id"), Document.__table__.c.sha256.is_(None))
    .values(content=bindparam("pdf"), sha256=bindparam("digest"))
)


def note_pending(session: Session, document_id: uuid.UUID, composed: GongWen) -> None:
    """Remember a document issued without its PDF, to typeset ``composed`` when ``session`` commits."""
    session.info.setdefault(PENDING_KEY, []).append((document_id, composed))


def fill_in(document: Document) -> Document:
    """``document`` with its PDF and SHA-256, rendered now if it is still pending.

    A write transaction that holds the row stores them; a read one only serves them (the renderer
    stores the same bytes).
    """
    if document.content is None:
        from engine.documents import rerender  # documents imports this module to note pending PDFs

        content = rerender(document)
        document.content, document.sha256 = content, hashlib.sha256(content).hexdigest()
    return document


def render_pending(sessions: sessionmaker, limit: int | None = None) -> int:
    """Render pending documents, oldest first, from their stored data; return how many were stored."""
    with read_session(sessions) as session:
        query = select(Document).where(Document.sha256.is_(None)).order_by(Document.created_at).limit(limit)
        pending = list(session.scalars(query))
    rendered = []
    for document in pending:
        try:
            fill_in(document)
        except Exception:  # one document that cannot be rendered must not hold back the others
            log.exception("document %s (%s %s) could not be rendered", document.id, document.kind, document.document_no)
            continue
        rendered.append((document.id, document.content))
    return _store(sessions, rendered)


def render_issued(sessions: sessionmaker, issued: list[tuple[uuid.UUID, GongWen]]) -> int:
    """Typeset the documents a committed transaction composed; return how many were stored."""
    return _store(sessions, [(document_id, render_pdf(composed)) for document_id, composed in issued])


def _store(sessions: sessionmaker, rendered: list[tuple[uuid.UUID, bytes]]) -> int:
    """Store PDFs in one short write, each only if its document is still pending: two renderers of one
    document both succeed and store the same bytes."""
    rows = [{"document_id": i, "pdf": pdf, "digest": hashlib.sha256(pdf).hexdigest()} for i, pdf in rendered]
    if rows:
        with write_session(sessions) as session:
            session.connection().execute(_STORE_RENDERED, rows)
    return len(rows)


class DocumentRenderer:
    """Renders the documents a committed transaction issued, the way ``mode`` says (see the module)."""

    def __init__(self, sessions: sessionmaker, mode: str = "inline") -> None:
        if mode not in MODES:
            raise ValueError(f"document rendering mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.sessions = sessions
        self.mode = mode
        self._queue: queue.Queue[list[tuple[uuid.UUID, GongWen]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        event.listen(sessions, "after_commit", self._committed)
        event.listen(sessions, "after_rollback", self._rolled_back)

    def drain(self) -> None:
        """Wait until the background thread has rendered everything handed to it."""
        self._queue.join()

    def _committed(self, session: Session) -> None:
        issued = session.info.pop(PENDING_KEY, None)
        if not issued or self.mode == "deferred":
            return
        if self.mode == "inline":
            self._render(issued)
            return
        self._queue.put(issued)
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="demozone-documents", daemon=True)
                self._thread.start()

    @staticmethod
    def _rolled_back(session: Session) -> None:
        session.info.pop(PENDING_KEY, None)

    def _work(self) -> None:
        while True:
            issued = self._queue.get()
            try:
                self._render(issued)
            finally:
                self._queue.task_done()

    def _render(self, issued: list[tuple[uuid.UUID, GongWen]]) -> None:
        # The issuing command has committed: a failure here must not reach its caller as if it had not.
        try:
            render_issued(self.sessions, issued)
        except Exception:
            ids = [str(document_id) for document_id, _composed in issued]
            log.exception("documents %s not rendered now; the sweep or the first reader renders them", ids)

"""One database session per request, on ``g``; writes run in ``write()`` (commit or roll back).

A state-changing request (anything but GET/HEAD/OPTIONS) opens its session as a write transaction
up front (SQLite: ``BEGIN IMMEDIATE``), so two concurrent writers queue on the busy timeout instead of
one failing when it upgrades a read snapshot. The session is closed when the request ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import Session

from engine import AppEngine
from engine.db import WRITE_OPTION

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def reads_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a POST view that never writes (sign-in): its session stays a plain read transaction."""
    view.demozone_reads_only = True  # type: ignore[attr-defined]
    return view


def _writes() -> bool:
    if not has_request_context() or request.method in _SAFE_METHODS:
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return not getattr(view, "demozone_reads_only", False)


def get_engine() -> AppEngine:
    return current_app.extensions["demozone.engine"]


def get_session() -> Session:
    """The request's session, opened on first use."""
    session = g.get("_db_session")
    if session is None:
        session = get_engine().sessions()
        if _writes():
            session.connection(execution_options={WRITE_OPTION: True})
        g._db_session = session
    return session


@contextmanager
def write() -> Iterator[Session]:
    """A write transaction on the request's session: commits on success, rolls back on any error."""
    session = get_session()
    if not session.in_transaction():
        session.connection(execution_options={WRITE_OPTION: True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("_db_session", None)
    if session is not None:
        session.close()  # rolls back whatever was not committed


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)

"""demozone's workflow engine: SpiffWorkflow with persisted state, permissions and history.

This package never imports Flask or ``web``.
"""

from __future__ import annotations

from engine.clock import Clock
from engine.db import make_db_engine, make_session_factory
from engine.document_rendering import DocumentRenderer
from engine.runtime import Engine
from engine.settings import Settings


class AppEngine(Engine):
    """The engine bound to its database: what the CLI, the web app and tests use."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        super().__init__(settings, clock)
        self.db = make_db_engine(settings.database_url)
        self.sessions = make_session_factory(self.db)
        self.documents = DocumentRenderer(self.sessions, settings.document_rendering)


def build_engine(settings: Settings | None = None, clock: Clock | None = None) -> AppEngine:
    return AppEngine(settings or Settings.from_env(), clock)


__all__ = ["AppEngine", "Engine", "Settings", "build_engine"]

"""A small driver for scenario tests of a process: act as users, move the clock, look at the case.

Each call runs in its own committed transaction, exactly as a CLI command or web request would.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from engine import AppEngine
from engine.access import load_actor
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.runtime import InstanceView, TaskView


class Scenario:
    def __init__(self, engine: AppEngine) -> None:
        self.engine = engine
        self.instance_id: uuid.UUID | None = None

    @property
    def clock(self) -> FixedClock:
        assert isinstance(self.engine.clock, FixedClock), "scenarios need a FixedClock"
        return self.engine.clock

    def start(self, username: str, process: str, data: dict[str, Any]) -> InstanceView:
        with write_session(self.engine.sessions) as session:
            view = self.engine.start_instance(session, load_actor(session, username), process, data)
        self.instance_id = view.id
        return view

    def tasks(self, username: str) -> list[TaskView]:
        """The user's open tasks in this scenario's case."""
        with read_session(self.engine.sessions) as session:
            listing = self.engine.list_tasks(session, load_actor(session, username))
        return [t for t in listing if t.instance_id == self.instance_id]

    def task(self, username: str, step: str) -> TaskView:
        matches = [t for t in self.tasks(username) if t.step == step]
        assert matches, f"{username} has no open {step!r}; open: {[t.step for t in self.open_tasks()]}"
        return matches[0]

    def complete(self, username: str, step: str, data: dict[str, Any]) -> InstanceView:
        task = self.task(username, step)
        return self.complete_id(username, task.id, data)

    def complete_id(self, username: str, task_id: uuid.UUID, data: dict[str, Any]) -> InstanceView:
        with write_session(self.engine.sessions) as session:
            return self.engine.complete_task(session, load_actor(session, username), task_id, data)

    def return_task(self, username: str, step: str, reason: str) -> InstanceView:
        task = self.task(username, step)
        with write_session(self.engine.sessions) as session:
            return self.engine.return_task(session, load_actor(session, username), task.id, reason)

    def advance(self, **delta: float) -> list[uuid.UUID]:
        """Move the clock forward and fire whatever timers fell due."""
        self.clock.advance(timedelta(**delta))
        with write_session(self.engine.sessions) as session:
            return self.engine.fire_due_timers(session)

    def view(self) -> InstanceView:
        with read_session(self.engine.sessions) as session:
            return self.engine.get_instance(session, load_actor(session, "auditor"), self.instance_id)

    def open_tasks(self) -> list[TaskView]:
        return self.view().open_tasks

    def open_steps(self) -> list[str]:
        return sorted(t.step for t in self.open_tasks())

    def history(self) -> list[Any]:
        with read_session(self.engine.sessions) as session:
            return self.engine.history(session, load_actor(session, "auditor"), self.instance_id)

    def path(self) -> list[str]:
        """Every step completed so far, in order (from the history)."""
        return [step for event in self.history() for step in event.payload.get("completed", [])]

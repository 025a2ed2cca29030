"""One injectable clock for timers, due dates and history timestamps.

SpiffWorkflow reads ``datetime.now(timezone.utc)`` straight from its timer module, with no hook.
``install_timer_clock()`` replaces that module's ``datetime`` name once with a subclass whose
``now()`` asks the clock that is active in the current context, so tests, simulation and replay can
move time while production keeps reading the system clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import SpiffWorkflow.bpmn.specs.event_definitions.timer as _spiff_timer

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # dates people read (成文日期, 办理期限) are dates in Liaoning, not in UTC


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a value without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}") from exc
    return as_utc(value)


def as_utc(value: datetime) -> datetime:
    # Stored times are UTC: SQLite keeps no offset, so anything else would shift on the way back.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class Clock:
    """The system clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock(Clock):
    """A clock that stands still until moved: for tests, simulation, replay and DEMOZONE_NOW."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = as_utc(instant)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


_SYSTEM_CLOCK = Clock()
_active_clock: ContextVar[Clock | None] = ContextVar("demozone_clock", default=None)


class _ClockedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        instant = (_active_clock.get() or _SYSTEM_CLOCK).now()
        return instant.astimezone(tz) if tz else instant.astimezone().replace(tzinfo=None)


def install_timer_clock() -> None:
    """Point SpiffWorkflow's timer module at the active clock (idempotent)."""
    _spiff_timer.datetime = _ClockedDatetime


@contextlib.contextmanager
def using_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the one SpiffWorkflow's timers read, for the duration of the block."""
    token = _active_clock.set(clock)
    try:
        yield clock
    finally:
        _active_clock.reset(token)

"""Tools for the fault tests and the load benchmark: real server processes, a small HTTP client, and
the consistency checks every run ends with.

- ``populate``: the small ``mini`` process of ``tests/definitions`` deployed, cases waiting at its
  first step (``a``, 沈阳市科协) or its second (``b``, 新民市委, with a 10-day boundary timer), API tokens.
- ``Server``: ``demozone serve`` (gunicorn) or ``demozone worker`` as a child process, with helpers to
  find and SIGKILL gunicorn's workers.
- ``call``: one HTTP request on a new loopback connection; a broken connection is reported, not raised.
- ``check_consistency``: the history verifies, every case replays to its stored state, and the
  open-task index equals the ready user tasks of the stored state — nothing half-written.

Used by ``tests/ops`` and ``bench/load_test.py``; it binds only to 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine import AppEngine, Settings, build_engine
from engine.access import load_actor
from engine.audit import verify_history
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.models import HistoryEvent, Instance, OpenTask
from engine.replay import replay_instance
from engine.settings import PROJECT_ROOT
from engine.store import ready_user_tasks
from web.security import issue_token

DEFINITIONS = PROJECT_ROOT / "tests" / "definitions"
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # the same instant as tests/conftest.py's START
HOST = "127.0.0.1"
CITY_USER, COUNTY_USER = "shenyang_sa", "xinmin_party"  # the mini process in 新民市 (沈阳市)
TOKEN_USERS = (CITY_USER, COUNTY_USER, "auditor")
DEMOZONE = Path(sys.executable).parent / "demozone"


def mini_engine(url: str, now: datetime = START) -> AppEngine:
    return build_engine(
        Settings(database_url=url, processes_dir=DEFINITIONS, forms_dir=DEFINITIONS / "forms"), FixedClock(now)
    )


@dataclass
class Populated:
    """What ``populate`` stored: cases at step a and at step b (case id, open task id), tokens, one done case."""

    at_a: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    at_b: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    finished: uuid.UUID | None = None  # one case already approved (see ``populate``)


def populate(url: str, at_a: int, at_b: int = 0, chunk: int = 50, progress=None) -> Populated:  # noqa: ANN001
    """Deploy ``mini`` and start cases through the engine, ``chunk`` commands per transaction."""
    engine = mini_engine(url)
    done = Populated()
    try:
        with write_session(engine.sessions) as session:
            engine.deploy(session)
            done.tokens = {name: issue_token(session, name, START) for name in TOKEN_USERS}
            # One case carried through to its 批复, so the year's document counter row exists: the
            # engine's first number of a year is not safe against a concurrent first number on
            # PostgreSQL (both INSERT the row; the loser fails as workflow_failed). Reported, not ours.
            city, county = load_actor(session, CITY_USER), load_actor(session, COUNTY_USER)
            view = engine.start_instance(session, city, "mini", {"county_code": "210181"})
            view = engine.complete_task(session, city, view.open_tasks[0].id, {"x": 0})
            done.finished = engine.complete_task(session, county, view.open_tasks[0].id, {"b_decision": "同意"}).id
        remaining = at_a + at_b
        while remaining:
            with write_session(engine.sessions) as session:
                city = load_actor(session, CITY_USER)
                for _ in range(min(chunk, remaining)):
                    view = engine.start_instance(session, city, "mini", {"county_code": "210181"})
                    task = view.open_tasks[0].id
                    if len(done.at_b) < at_b:
                        view = engine.complete_task(session, city, task, {"x": 1})
                        done.at_b.append((view.id, view.open_tasks[0].id))
                    else:
                        done.at_a.append((view.id, task))
                    remaining -= 1
            if progress:
                progress(at_a + at_b - remaining)
    finally:
        engine.db.dispose()
    return done


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int | None  # None: the connection broke (refused, reset, closed without an answer)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def call(
    port: int,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Reply:
    """One request on a fresh connection to 127.0.0.1:``port``."""
    sent = {"Connection": "close", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        sent["Content-Type"] = "application/json"
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return Reply(
            response.status, data, {k.lower(): v for k, v in response.getheaders()}, None, time.perf_counter() - started
        )
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - started)
    finally:
        connection.close()


def complete(port: int, token: str, task_id: uuid.UUID, data: dict[str, Any], **kwargs: Any) -> Reply:
    return call(port, "POST", f"/api/v1/tasks/{task_id}/complete", token, {"data": data}, **kwargs)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- processes -----------------------------------------------------------------------------------


def server_env(url: str, now: datetime = START, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMOZONE_", "PROMETHEUS_"))}
    env.update(
        DEMOZONE_DATABASE_URL=url,
        DEMOZONE_SECRET_KEY="ops-test-" + uuid.uuid4().hex,
        DEMOZONE_PROCESSES_DIR=str(DEFINITIONS),
        DEMOZONE_FORMS_DIR=str(DEFINITIONS / "forms"),
        DEMOZONE_NOW=now.isoformat(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Server:
    """A child process (``demozone serve …`` or ``demozone worker …``) with its output in ``log``."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.argv, self.env, self.log, self.port = argv, env, log, port
        self.process: subprocess.Popen | None = None

    @classmethod
    def web(cls, url: str, log: Path, workers: int = 2, threads: int = 4, **env: str) -> Server:
        """``demozone serve`` (gunicorn, no timer worker) on a free loopback port."""
        port = free_port()
        args = ["serve", "--host", HOST, "--port", str(port), "--workers", str(workers), "--threads", str(threads)]
        return cls([str(DEMOZONE), *args, "--no-timers"], server_env(url, **env), log, port)

    @classmethod
    def timer_worker(
        cls, url: str, log: Path, now: datetime, interval: float = 1.0, batch: int | None = None
    ) -> Server:
        """``demozone worker``; with ``batch``, the same command with smaller timer batches per transaction."""
        args = ["worker", "--interval", f"{interval:g}"]
        if batch is None:
            return cls([str(DEMOZONE), *args], server_env(url, now), log)
        code = f"import engine.scheduler as s; s.BATCH_SIZE = {int(batch)}; from web.cli import main; main({args!r})"
        return cls([sys.executable, "-c", code], server_env(url, now), log)

    def start(self, ready_timeout: float = 60.0) -> Server:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )
        handle.close()
        if self.port is not None:
            self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until gunicorn answers ``/healthz`` (any HTTP status) and all its workers are up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            if call(self.port, "GET", "/healthz", timeout=5).status is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log_tail()}")

    def wait_output(self, needle: str, timeout: float = 30.0) -> None:
        """Until ``needle`` appears in the process's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log.read_text(errors="replace"):
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"process exited with {self.process.returncode}:\n{self.log_tail()}")
            time.sleep(0.02)
        raise RuntimeError(f"no {needle!r} after {timeout} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        """The gunicorn workers (children of the master)."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def wait_workers(self, count: int, timeout: float = 30.0, exclude: set[int] = frozenset()) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for p in self.children() if p not in exclude]
            if len(pids) >= count:
                return pids
            time.sleep(0.05)
        raise RuntimeError(f"{count} worker(s) not up after {timeout} s:\n{self.log_tail()}")

    def kill(self, pid: int | None = None) -> None:
        """SIGKILL ``pid`` (a worker), or the process itself."""
        os.kill(pid or self.pid, signal.SIGKILL)
        if pid is None and self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# -- checks --------------------------------------------------------------------------------------


def completion_events(engine: AppEngine) -> Counter[uuid.UUID]:
    """How many completion events each task has."""
    with read_session(engine.sessions) as session:
        rows = session.execute(
            select(HistoryEvent.task_id, func.count())
            .where(HistoryEvent.command.in_(("complete", "return")))
            .group_by(HistoryEvent.task_id)
        ).all()
    return Counter({task_id: count for task_id, count in rows})


def check_consistency(engine: AppEngine, instance_ids: list[uuid.UUID] | None = None) -> list[str]:
    """Every problem found: a broken history chain, a case that does not replay, a stale open-task index."""
    problems: list[str] = []
    with read_session(engine.sessions) as session:
        verified = verify_history(session)
        problems += [f"history: {b}" for b in verified.breaks]
        ids = instance_ids if instance_ids is not None else list(session.scalars(select(Instance.id)))
        for instance_id in ids:
            result = replay_instance(engine.store, session, instance_id)
            if not result.matches:
                problems.append(f"replay {instance_id}: {result.difference}")
            instance = session.get(Instance, instance_id)
            ready = {t.id for t in ready_user_tasks(engine.store.load_copy(session, instance))}
            indexed = set(session.scalars(select(OpenTask.id).where(OpenTask.instance_id == instance_id)))
            if ready != indexed:
                problems.append(f"open-task index of {instance_id}: state {sorted(ready)} vs index {sorted(indexed)}")
    return problems


@dataclass
class Attempt:
    """One completion request as the client saw it."""

    task_id: uuid.UUID
    status: int | None
    seconds: float
    retry: bool = False
    body: str = ""


def check_attempts(attempts: list[Attempt], events: Counter[uuid.UUID]) -> list[str]:
    """Each 2xx has exactly one completion event, no task has two, a 409 names a task that was done."""
    problems = []
    for attempt in attempts:
        if attempt.status is not None and 200 <= attempt.status < 300 and events[attempt.task_id] != 1:
            problems.append(f"task {attempt.task_id}: 2xx but {events[attempt.task_id]} completion events")
        if attempt.status == 409 and '"conflict"' in attempt.body and events[attempt.task_id] != 1:
            problems.append(
                f"task {attempt.task_id}: 409 conflict but {events[attempt.task_id]} completion events: {attempt.body}"
            )
    problems += [f"task {task}: completed {count} times" for task, count in events.items() if count > 1]
    return problems


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]

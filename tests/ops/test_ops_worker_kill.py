"""A gunicorn worker SIGKILLed while clients complete tasks: nothing half-written, nothing done twice.

``demozone serve`` runs 2 workers, sync (its default, one thread each) or gthread (4 threads each); 8
client threads each take their own cases and complete step a (沈阳市科协) then step b (新民市委) over the
JSON API. Two workers are killed with SIGKILL
while requests are in flight. A client whose connection breaks retries the same task once, as a
user would: it gets 200 if the first request never happened, 409 if it did. Afterwards every 2xx has
exactly one completion event, no task has two, every case replays to its stored state, the history
verifies and the open-task index matches the stored workflows. The per-worker metrics files
(``PROMETHEUS_MULTIPROC_DIR``) add up across workers, the killed ones included.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import OpsDatabase
from tests.ops.opskit import (
    Attempt,
    Reply,
    Server,
    call,
    check_attempts,
    check_consistency,
    complete,
    completion_events,
    mini_engine,
)

CLIENTS = 8


class Load:
    """Client threads completing a then b of their own cases; everything they saw is kept."""

    def __init__(self, port: int, tokens: dict[str, str], cases: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        self.port, self.tokens = port, tokens
        self.attempts: list[Attempt] = []
        self.replies: list[Reply] = []
        self.final: list[int | None] = []  # the status each completion ended with, after retries
        self.shares = [cases[i::CLIENTS] for i in range(CLIENTS)]
        self.threads = [threading.Thread(target=self._run, args=(share,), daemon=True) for share in self.shares]

    def successes(self) -> int:
        return sum(1 for a in self.attempts if a.status == 200)

    def _attempt(self, task: uuid.UUID, user: str, data: dict) -> Reply:
        reply = complete(self.port, self.tokens[user], task, data)
        self.replies.append(reply)
        self.attempts.append(Attempt(task, reply.status, reply.seconds, False, reply.text))
        for _ in range(3):  # the connection broke: try again, as a user would
            if reply.status is not None:
                break
            time.sleep(0.1)
            reply = complete(self.port, self.tokens[user], task, data)
            self.replies.append(reply)
            self.attempts.append(Attempt(task, reply.status, reply.seconds, True, reply.text))
        self.final.append(reply.status)
        return reply

    def _next_task(self, case: uuid.UUID, reply: Reply) -> uuid.UUID | None:
        if reply.status == 200:
            tasks = reply.json()["open_tasks"]
        else:
            view = call(self.port, "GET", f"/api/v1/instances/{case}", self.tokens["auditor"])
            self.replies.append(view)
            tasks = view.json()["open_tasks"] if view.status == 200 else []
        return uuid.UUID(tasks[0]["id"]) if tasks else None

    def _run(self, share: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        for case, task_a in share:
            reply = self._attempt(task_a, "shenyang_sa", {"x": 7})
            task_b = self._next_task(case, reply)
            if task_b is not None:
                self._attempt(task_b, "xinmin_party", {"b_decision": "同意"})

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "clients did not finish"


def wait_for(condition, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("threads", [1, 4], ids=["sync", "gthread"])
def test_a_worker_killed_mid_request_leaves_every_case_whole(ops_db: OpsDatabase, tmp_path: Path, threads: int) -> None:
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()
    server = Server.web(
        ops_db.url, tmp_path / "server.log", threads=threads, PROMETHEUS_MULTIPROC_DIR=str(prometheus_dir)
    )
    cases = ops_db.populated.at_a
    with server:
        workers = server.wait_workers(2)
        load = Load(server.port, ops_db.populated.tokens, cases)
        load.start()
        killed: list[int] = []
        for threshold in (12, 40):
            wait_for(lambda t=threshold: load.successes() >= t, 30)
            victim = workers[0]
            server.kill(victim)
            killed.append(victim)
            workers = server.wait_workers(2, exclude=set(killed))  # gunicorn starts a new one
        load.join(60)
        health = call(server.port, "GET", "/healthz")
        scrape = call(server.port, "GET", "/metrics")
    assert health.status == 200, health.text

    broken = [r for r in load.replies if r.status is None]
    assert broken, "no request was in flight when the workers were killed"
    assert not [r for r in load.replies if r.status is not None and r.status >= 500], server.log_tail()
    assert set(load.final) <= {200, 409}, [(a.status, a.body) for a in load.attempts if a.status not in (200, 409)]

    engine = mini_engine(ops_db.url)
    try:
        events = completion_events(engine)
        assert check_attempts(load.attempts, events) == []
        assert check_consistency(engine) == []
        finished = {a.task_id for a in load.attempts if a.status == 200}
        assert len(finished) >= 2 * len(cases) - 2 * len(broken)  # almost every case went through
    finally:
        engine.db.dispose()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scrape.text)
        for s in family.samples
    }
    seen_ok = sum(1 for r in load.replies if r.status == 200) + 1  # + the /healthz above
    assert samples[("demozone_http_responses_total", (("code", "200"),))] >= seen_ok  # summed over all workers
    assert samples[("demozone_tasks_completed_total", (("process", "mini"),))] == sum(events.values())

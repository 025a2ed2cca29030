"""PostgreSQL stopped under load: a clear 503 (JSON and page), never a 500, nothing corrupted, and the
service comes back by itself when the database does (pool_pre_ping; no restart of the web server).

The test's database has ``synchronous_commit = on`` so that a commit a client was told about survives
the crash-like stop (the throwaway cluster turns it off for speed). ``PgCluster.kill()`` stops the
shared session cluster in immediate mode; it is always started again, even when the test fails.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

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

CLIENTS = 4


class Traffic:
    """API clients completing step a of their cases, retrying a 503 as a user would, plus page views."""

    def __init__(self, port: int, tokens: dict[str, str], cases: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        self.port, self.tokens = port, tokens
        self.stop = threading.Event()
        self.attempts: list[Attempt] = []
        self.api: list[tuple[float, Reply]] = []
        self.pages: list[tuple[float, Reply]] = []
        shares = [cases[i::CLIENTS] for i in range(CLIENTS)]
        self.threads = [threading.Thread(target=self._complete, args=(s,), daemon=True) for s in shares]
        self.threads.append(threading.Thread(target=self._browse, daemon=True))

    def _complete(self, share: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        for _case, task in share:
            while not self.stop.is_set():
                reply = complete(self.port, self.tokens["shenyang_sa"], task, {"x": 3}, timeout=20)
                self.api.append((time.monotonic(), reply))
                self.attempts.append(Attempt(task, reply.status, reply.seconds, body=reply.text))
                if reply.status != 503:
                    break
                time.sleep(0.05)
            time.sleep(0.02)

    def _browse(self) -> None:
        english = {"Accept-Language": "en"}
        while not self.stop.is_set():
            for path, headers in (("/login", {}), ("/api/v1/tasks", english), ("/healthz", {})):
                token = self.tokens["auditor"] if path.startswith("/api/") else None
                reply = call(self.port, "GET", path, token, headers=headers, timeout=20)
                if path == "/healthz":
                    reply.headers["x-path"] = "h"
                self.pages.append((time.monotonic(), reply))
            time.sleep(0.05)

    def ok_since(self, moment: float) -> int:
        return sum(1 for at, r in self.api if at > moment and r.status == 200)


def wait_for(condition, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_postgresql_stopped_gives_503_and_service_resumes_by_itself(ops_pg_db: OpsDatabase, tmp_path: Path) -> None:
    cluster = ops_pg_db.cluster
    assert cluster is not None
    server = Server.web(ops_pg_db.url, tmp_path / "server.log")
    stopped_at = started_at = 0.0
    with server:
        traffic = Traffic(server.port, ops_pg_db.populated.tokens, ops_pg_db.populated.at_a)
        for thread in traffic.threads:
            thread.start()
        running = True
        try:
            assert wait_for(lambda: traffic.ok_since(0) >= 5, 30), server.log_tail()
            cluster.kill()
            running = False
            stopped_at = time.monotonic()
            assert wait_for(lambda: sum(1 for at, r in traffic.api if at > stopped_at and r.status == 503) >= 3, 20)
            assert wait_for(lambda: sum(1 for at, r in traffic.pages if at > stopped_at + 0.5) >= 6, 20)
            cluster.start()
            running = True
            started_at = time.monotonic()
            assert wait_for(lambda: traffic.ok_since(started_at) >= 3, 30), server.log_tail()
            recovered = min(at for at, r in traffic.api if at > started_at and r.status == 200) - started_at
        finally:
            if not running:
                cluster.start()
            traffic.stop.set()
            for thread in traffic.threads:
                thread.join(30)
    print(f"service back {recovered:.2f} s after PostgreSQL")

    everything = [r for _at, r in traffic.api + traffic.pages]
    assert all(r.status is not None for r in everything), {r.error for r in everything if r.status is None}
    assert not [r.status for r in everything if r.status >= 500 and r.status != 503], server.log_tail()

    outage = [r for at, r in traffic.api if stopped_at < at < started_at and r.status == 503]
    assert outage and all(r.json()["error"]["code"] == "database_unavailable" for r in outage)
    assert "数据库暂时无法连接" in outage[0].json()["error"]["message"]
    down_pages = [(r.status, r.text) for at, r in traffic.pages if stopped_at + 0.5 < at < started_at]
    assert any(status == 503 and "服务暂时不可用" in text and "<html" in text for status, text in down_pages)
    assert any(status == 503 and "The database cannot be reached" in text for status, text in down_pages)
    assert any(
        status == 503
        and '"database":{"error":"OperationalError","ok":false}' in text.replace(" ", "")
        or (status == 503 and '"ok":false' in text and "database" in text)
        for status, text in down_pages
    )

    engine = mini_engine(ops_pg_db.url)
    try:
        events = completion_events(engine)
        assert check_attempts(traffic.attempts, events) == []
        assert check_consistency(engine) == []
    finally:
        engine.db.dispose()

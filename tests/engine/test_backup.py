"""Backup and restore of the whole database, on SQLite and PostgreSQL, each verified afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.scenario import Scenario
from tests.support.zone import fill, start


def demozone(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DEMOZONE_DATABASE_URL": url},
    )


def test_backup_then_restore_brings_back_the_backed_up_state(scenario: Scenario, tmp_path: Path) -> None:
    url = scenario.engine.settings.database_url
    start(scenario)
    backup_file = tmp_path / "backups" / "demozone.backup"
    made = demozone(url, "backup", str(backup_file))
    assert made.returncode == 0, made.stderr
    assert "history verified" in made.stdout and backup_file.stat().st_size > 0

    scenario.complete("shenyang_sa", "recommend", fill("recommend"))
    assert scenario.open_steps() == ["talent_cosign"]
    scenario.engine.db.dispose()

    restored = demozone(url, "restore", str(backup_file), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "history verified" in restored.stdout
    scenario.engine.store._live.clear()
    assert scenario.open_steps() == ["recommend"]
    assert [e.command for e in scenario.history()] == ["start"]


def test_restore_from_a_missing_file_is_a_clear_error(sqlite_url: str, tmp_path: Path) -> None:
    result = demozone(sqlite_url, "restore", str(tmp_path / "nope.backup"), "--yes")
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr

"""The demozone command line, run as a real subprocess on a prepared SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from engine.sample_data import sample_form_data

FORMS = Path(__file__).parent.parent.parent / "forms"


@pytest.fixture
def cli(sqlite_url: str):
    """Run ``demozone ARGS`` against a fresh demo database with the clock fixed."""
    env = {**os.environ, "DEMOZONE_DATABASE_URL": sqlite_url, "DEMOZONE_NOW": "2026-03-02T09:00:00+08:00"}

    def run(*args: str, expect: int = 0, now: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "engine", *args],
            capture_output=True,
            text=True,
            check=False,
            env={**env, "DEMOZONE_NOW": now} if now else env,
        )
        assert result.returncode == expect, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        return result

    return run


def test_a_case_can_be_driven_from_the_command_line(cli, tmp_path: Path) -> None:
    users = json.loads(cli("users", "--json").stdout)
    shenyang = next(u for u in users if u["username"] == "shenyang_sa")
    assert shenyang["roles"] == [{"role": "city_sa", "org_code": "210100"}]

    started = json.loads(
        cli("start", "zone_creation", "--as", "shenyang_sa", "--data", '{"county_code": "210181"}', "--json").stdout
    )
    assert started["status"] == "running"

    tasks = json.loads(cli("tasks", "--as", "shenyang_sa", "--json").stdout)
    assert len(tasks) == 1
    task = tasks[0]
    assert {"id", "process", "step", "name", "role", "instance", "due_at"} <= set(task)
    assert (task["process"], task["step"], task["role"], task["instance"]) == (
        "zone_creation",
        "recommend",
        "city_sa",
        started["id"],
    )

    schema = json.loads(cli("form", task["id"], "--json").stdout)
    payload = tmp_path / "recommend.json"
    payload.write_text(json.dumps(sample_form_data(schema, date(2026, 3, 2)), ensure_ascii=False), encoding="utf-8")
    cli("complete", task["id"], "--as", "shenyang_sa", "--data", f"@{payload}")

    shown = json.loads(cli("show", started["id"], "--json").stdout)
    assert {"id", "process", "status", "open_tasks", "data"} <= set(shown)
    assert [t["step"] for t in shown["open_tasks"]] == ["talent_cosign"]
    assert shown["data"]["county_name"] == "新民市"

    cosign = shown["open_tasks"][0]["id"]
    returned = cli("return", cosign, "--as", "shenyang_talent", "--reason", "请补充")
    assert "待办" in returned.stdout and "recommend" in returned.stdout
    assert [t["step"] for t in json.loads(cli("show", started["id"], "--json").stdout)["open_tasks"]] == ["recommend"]


def test_errors_are_one_clear_line_with_a_non_zero_exit(cli) -> None:
    bad_json = cli("start", "zone_creation", "--as", "shenyang_sa", "--data", "{county", expect=2)
    assert "--data is not valid JSON" in bad_json.stderr
    unknown = cli("tasks", "--as", "nobody", expect=1)
    assert "nobody" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1
    wrong_county = cli("start", "zone_creation", "--as", "shenyang_sa", "--data", '{"county_code": "210281"}', expect=1)
    assert "forbidden" in wrong_county.stderr
    missing = cli("complete", "00000000-0000-0000-0000-000000000000", "--as", "shenyang_sa", "--data", "{}", expect=1)
    assert "not found" in missing.stderr
    not_an_id = cli("complete", "abc", "--as", "shenyang_sa", expect=2)
    assert "not a valid id" in not_an_id.stderr


def test_invalid_form_data_names_each_field(cli) -> None:
    started = json.loads(
        cli("start", "zone_creation", "--as", "shenyang_sa", "--data", '{"county_code": "210181"}', "--json").stdout
    )
    task = started["open_tasks"][0]["id"]
    result = cli("complete", task, "--as", "shenyang_sa", "--data", '{"recommend_gdp": "lots"}', expect=1)
    assert "recommend_gdp" in result.stderr and "recommend_reason" in result.stderr


def test_demozone_now_moves_the_clock_for_timers(cli) -> None:
    assert cli("timers", "run").stdout.startswith("2026-03-02T01:00:00+00:00")
    assert cli("timers", "run", now="2027-01-01T00:00:00Z").stdout.startswith("2027-01-01T00:00:00+00:00")

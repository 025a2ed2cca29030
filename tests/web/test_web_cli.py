"""The `demozone` console script of the web package: engine commands, `token`, `serve`."""

from __future__ import annotations

import gc

from click.testing import CliRunner
from sqlalchemy import select

from engine import cli as engine_cli
from engine.models import ApiToken
from tests.web.conftest import World
from web.cli import WORKER_GC_THRESHOLDS, demo_secret_key, main, settle_garbage_collector
from web.security import hash_token


def test_every_engine_command_is_there_too() -> None:
    assert set(engine_cli.main.commands) <= set(main.commands)
    assert {"serve", "token"} <= set(main.commands)


def test_token_prints_a_working_token_and_stores_only_its_hash(world: World) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["token", "xinmin_party"], env={"DEMOZONE_DATABASE_URL": world.url})
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("dz_") and len(token) > 40
    with world.engine().sessions() as session:
        assert session.scalar(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token)))
        assert session.scalar(select(ApiToken.id).where(ApiToken.token_hash == token)) is None
    client = world.app.test_client()
    assert client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoked = runner.invoke(main, ["token", "xinmin_party", "--revoke"], env={"DEMOZONE_DATABASE_URL": world.url})
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    unknown = runner.invoke(main, ["token", "nobody"], env={"DEMOZONE_DATABASE_URL": world.url})
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output


def test_serve_needs_a_secret_key_unless_demo(world: World) -> None:
    result = CliRunner().invoke(main, ["serve"], env={"DEMOZONE_DATABASE_URL": world.url, "DEMOZONE_SECRET_KEY": ""})
    assert result.exit_code == 2 and "DEMOZONE_SECRET_KEY" in result.output


def test_the_demo_secret_key_is_made_once_and_kept_private(tmp_path) -> None:
    path = tmp_path / "instance" / "secret_key"
    first = demo_secret_key(path)
    assert len(first) == 64 and demo_secret_key(path) == first
    assert path.stat().st_mode & 0o077 == 0


def test_a_booted_worker_freezes_what_it_holds_and_collects_less_often() -> None:
    thresholds = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == WORKER_GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)

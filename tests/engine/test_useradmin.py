"""User administration: every change by an admin is a link in the administrators' hash chain, which
`audit verify` checks; a disabled user can neither act nor use an API token."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select, update

from engine import AppEngine, useradmin
from engine.access import load_actor
from engine.audit import verify_history
from engine.db import read_session, write_session
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import AdminEvent, ApiToken, User
from engine.passwords import check_password
from web.security import actor_for_token, hash_token


def change(engine: AppEngine, username: str, run, *args):  # noqa: ANN001, ANN201
    with write_session(engine.sessions) as session:
        return run(session, load_actor(session, username), engine.now(), *args).username


def verified(engine: AppEngine):  # noqa: ANN201
    with read_session(engine.sessions) as session:
        return verify_history(session)


def test_every_change_is_chained_and_verified(engine: AppEngine) -> None:
    change(engine, "admin", useradmin.add_user, "liu_wei", "刘伟", "s3cret-pass", [("city_sa", "210100")])
    change(engine, "admin", useradmin.grant_role, "liu_wei", "city_sa", "210200")
    change(engine, "admin", useradmin.revoke_role, "liu_wei", "city_sa", "210100")
    change(engine, "admin", useradmin.set_password, "liu_wei", "another-pass")
    change(engine, "admin", useradmin.set_active, "liu_wei", False)
    change(engine, "admin", useradmin.set_active, "liu_wei", True)
    with read_session(engine.sessions) as session:
        events = session.scalars(select(AdminEvent).order_by(AdminEvent.seq)).all()
        assert [e.command for e in events] == [
            "user_add", "role_grant", "role_revoke", "user_password", "user_disable", "user_enable",
        ]  # fmt: skip
        assert {e.actor for e in events} == {"admin"} and {e.target for e in events} == {"liu_wei"}
        assert "another-pass" not in str([e.payload for e in events])
        user = session.scalar(select(User).where(User.username == "liu_wei"))
        assert [(a.role, a.org_code) for a in user.roles] == [("city_sa", "210200")]
        assert check_password(user.password_hash, "another-pass")
    result = verified(engine)
    assert result.ok and result.admin_events == 6


@pytest.mark.parametrize("tamper", ["alter", "delete", "reorder"])
def test_a_tampered_admin_chain_is_detected(engine: AppEngine, tamper: str) -> None:
    for name in ("zhang_a", "zhang_b", "zhang_c"):
        change(engine, "admin", useradmin.add_user, name, "张", "s3cret-pass", [])
    with write_session(engine.sessions) as session:
        if tamper == "alter":
            session.execute(update(AdminEvent).where(AdminEvent.seq == 2).values(target="someone"))
        elif tamper == "delete":
            session.delete(session.scalar(select(AdminEvent).where(AdminEvent.seq == 2)))
        else:
            session.execute(update(AdminEvent).where(AdminEvent.seq == 2).values(seq=-2))
            session.execute(update(AdminEvent).where(AdminEvent.seq == 3).values(seq=2))
            session.execute(update(AdminEvent).where(AdminEvent.seq == -2).values(seq=3))
    result = verified(engine)
    assert not result.ok
    assert result.first_break.instance_id == "admin" and result.first_break.seq in (2, 3)


def test_a_disabled_user_cannot_act_or_use_a_token(engine: AppEngine) -> None:
    with write_session(engine.sessions) as session:
        user_id = session.scalar(select(User.id).where(User.username == "shenyang_sa"))
        session.add(ApiToken(user_id=user_id, token_hash=hash_token("tok-123"), created_at=engine.now()))
    with read_session(engine.sessions) as session:
        assert actor_for_token(session, "tok-123").username == "shenyang_sa"
    change(engine, "admin", useradmin.set_active, "shenyang_sa", False)
    with read_session(engine.sessions) as session:
        assert actor_for_token(session, "tok-123") is None
        with pytest.raises(NotFound):
            load_actor(session, "shenyang_sa")


@pytest.mark.parametrize(
    ("username", "run", "args", "error"),
    [
        ("province_office", useradmin.add_user, ("wang_x", "王", "s3cret-pass", []), PermissionDenied),
        ("auditor", useradmin.set_active, ("shenyang_sa", False), PermissionDenied),
        ("admin", useradmin.add_user, ("Bad Name", "王", "s3cret-pass", []), InvalidInput),
        ("admin", useradmin.add_user, ("wang_x", "王", "short", []), InvalidInput),
        ("admin", useradmin.add_user, ("wang_x", "王", "s3cret-pass", [("nope", "210100")]), InvalidInput),
        ("admin", useradmin.add_user, ("wang_x", "王", "s3cret-pass", [("city_sa", "999999")]), InvalidInput),
        ("admin", useradmin.add_user, ("shenyang_sa", "王", "s3cret-pass", []), Conflict),
        ("admin", useradmin.set_active, ("admin", False), InvalidInput),
        ("admin", useradmin.revoke_role, ("shenyang_sa", "auditor", "210000"), NotFound),
        ("admin", useradmin.grant_role, ("nobody", "city_sa", "210100"), NotFound),
    ],
)
def test_refused_changes_leave_no_trace(engine: AppEngine, username, run, args, error) -> None:  # noqa: ANN001
    with pytest.raises(error):
        change(engine, username, run, *args)
    with read_session(engine.sessions) as session:
        assert session.scalar(select(AdminEvent.id).limit(1)) is None
        assert session.scalar(select(User.id).where(User.username == "wang_x")) is None


def test_disabling_revokes_tokens_for_good(engine: AppEngine) -> None:
    with write_session(engine.sessions) as session:
        user_id = session.scalar(select(User.id).where(User.username == "shenyang_sa"))
        session.add(ApiToken(user_id=user_id, token_hash=hash_token("tok-old"), created_at=engine.now()))
    change(engine, "admin", useradmin.set_active, "shenyang_sa", False)
    change(engine, "admin", useradmin.set_active, "shenyang_sa", True)
    with write_session(engine.sessions) as session:
        assert load_actor(session, "shenyang_sa").username == "shenyang_sa"  # the account itself works again
        assert actor_for_token(session, "tok-old") is None
        session.add(ApiToken(user_id=user_id, token_hash=hash_token("tok-new"), created_at=engine.now()))
    with read_session(engine.sessions) as session:
        assert actor_for_token(session, "tok-new").username == "shenyang_sa"
        disabled = session.scalar(select(AdminEvent).where(AdminEvent.command == "user_disable"))
        assert disabled.payload == {"tokens_revoked": 1}
    assert verified(engine).ok


def test_user_cli(engine: AppEngine) -> None:
    env = {**os.environ, "DEMOZONE_DATABASE_URL": engine.settings.database_url}
    cli = [sys.executable, "-m", "engine", "user"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, check=False)

    added = run(
        "add", "li_na", "--as", "admin", "--name", "李娜", "--password", "s3cret-pass", "--role", "city_sa@210100"
    )
    assert added.returncode == 0, added.stderr
    assert "city_sa@210100" in added.stdout
    assert run("disable", "li_na", "--as", "admin").returncode == 0
    refused = run("grant", "li_na", "--as", "shenyang_sa", "--role", "admin@210000")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    bad_role = run("grant", "li_na", "--as", "admin", "--role", "city_sa")
    assert bad_role.returncode == 2 and "ROLE@ORG_CODE" in bad_role.stderr
    verify = subprocess.run(
        [sys.executable, "-m", "engine", "audit", "verify"], env=env, capture_output=True, text=True
    )
    assert verify.returncode == 0 and "2 admin events" in verify.stdout

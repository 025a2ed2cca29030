"""Sign-in and sign-out, throttling, session cookies, demo accounts, the language switch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.models import User
from engine.passwords import hash_password
from tests.web.conftest import Browser, World, engine_for, signed_in
from web import create_app


def test_sign_in_and_out(browser: Browser) -> None:
    assert browser.login("shenyang_sa", "wrong").status_code == 401
    response = browser.login("shenyang_sa")
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
    assert "沈阳市科协" in browser.get("/inbox").get_data(as_text=True)
    assert browser.post("/logout").status_code == 302
    assert browser.get("/inbox").status_code == 302


def test_the_session_cookie_is_httponly_and_samesite(browser: Browser) -> None:
    response = browser.login("shenyang_sa")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_session_cookie_is_reissued_every_few_minutes_and_ends_after_hours_of_idleness(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 8-hour idle limit slides with the user's requests, but the cookie is not re-signed on each one."""
    user = signed_in(world.app, "shenyang_sa")
    user.get("/inbox")  # the first page after signing in stores a new CSRF token in the session
    assert "Set-Cookie" not in user.get("/inbox").headers  # unchanged, and signed a moment ago

    signed_at = time.time()
    # Ten minutes on, the cookie is older than SESSION_REISSUE_AFTER: the page re-issues it, still valid.
    monkeypatch.setattr(time, "time", lambda: signed_at + 600)
    response = user.get("/inbox")
    assert response.status_code == 200 and "demozone_session=" in response.headers["Set-Cookie"]
    assert "Set-Cookie" not in user.get("/inbox").headers

    # Seven hours after that re-issue the session holds (it slid); a further nine hours of idleness end it.
    monkeypatch.setattr(time, "time", lambda: signed_at + 600 + 7 * 3600)
    assert user.get("/inbox").status_code == 200
    monkeypatch.setattr(time, "time", lambda: signed_at + 600 + 16 * 3600)
    assert user.get("/inbox").status_code == 302


def test_next_is_only_followed_within_the_site(browser: Browser) -> None:
    token = browser.csrf()
    response = browser.client.post(
        "/login?next=https://evil.example/",
        data={"username": "shenyang_sa", "password": "demo123", "csrf_token": token},
    )
    assert response.headers["Location"] == "/inbox"


def test_five_failures_lock_the_username_from_that_address(browser: Browser) -> None:
    for _ in range(5):
        assert browser.login("dalian_sa", "wrong").status_code == 401
    locked = browser.login("dalian_sa")  # even the right password
    assert locked.status_code == 429 and "15 分钟后再试" in locked.get_data(as_text=True)
    other_address = browser.login("dalian_sa", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other_address.status_code == 302
    assert Browser(browser.client.application.test_client()).login("dalian_talent").status_code == 302


def test_the_lock_lifts_after_the_window(world: World) -> None:
    throttle = world.app.extensions["demozone.throttle"]
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    throttle.clock = lambda: now[0]
    for _ in range(5):
        throttle.failed("x", "1.2.3.4")
    assert throttle.blocked("X", "1.2.3.4")
    now[0] += timedelta(minutes=15, seconds=1)
    assert not throttle.blocked("x", "1.2.3.4")


def test_the_limit_holds_across_server_processes_on_one_database(world: World) -> None:
    # A second app over the same database stands for another gunicorn worker (or host).
    other = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "ENGINE": engine_for(world.url)})
    try:
        first, second = Browser(world.app.test_client()), Browser(other.test_client())
        for browser in (first, second, first, second, first):
            assert browser.login("dalian_sa", "wrong").status_code == 401
        assert second.login("dalian_sa").status_code == 429
        assert first.login("dalian_sa").status_code == 429
    finally:
        other.extensions["demozone.engine"].db.dispose()


def test_failures_from_many_addresses_lock_the_username_and_a_success_clears_them(world: World) -> None:
    browser = Browser(world.app.test_client())
    for n in range(19):
        assert browser.login("dalian_sa", "wrong", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}).status_code == 401
    assert browser.login("dalian_sa", environ_base={"REMOTE_ADDR": "10.0.1.1"}).status_code == 302
    assert world.app.extensions["demozone.throttle"].blocked("dalian_sa", "10.0.0.1") is False
    fresh = Browser(world.app.test_client())
    for n in range(20):
        assert fresh.login("dalian_sa", "wrong", environ_base={"REMOTE_ADDR": f"10.0.2.{n}"}).status_code == 401
    assert fresh.login("dalian_sa", environ_base={"REMOTE_ADDR": "10.0.3.1"}).status_code == 429


def test_one_address_failing_over_many_usernames_is_locked_out(world: World) -> None:
    world.app.extensions["demozone.throttle"].address_limit = 6
    browser = Browser(world.app.test_client())
    for n in range(6):
        assert browser.login(f"nobody{n}", "wrong").status_code == 401
    assert browser.login("shenyang_sa").status_code == 429
    assert browser.login("shenyang_sa", environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 302


def test_a_password_change_ends_existing_sessions(world: World) -> None:
    user = signed_in(world.app, "shenyang_sa")
    assert user.get("/inbox").status_code == 200
    with world.engine().sessions() as session, session.begin():
        session.scalar(select(User).where(User.username == "shenyang_sa")).password_hash = hash_password("new-pass")
    assert user.get("/inbox").status_code == 302


def test_inactive_users_cannot_sign_in(world: World, browser: Browser) -> None:
    with world.engine().sessions() as session, session.begin():
        session.scalar(select(User).where(User.username == "faku_party")).active = False
    assert browser.login("faku_party").status_code == 401


def test_the_login_page_lists_the_demo_accounts(world: World, browser: Browser) -> None:
    page = browser.get("/login").get_data(as_text=True)
    assert "演示账号" in page and "demo123" in page and "shenyang_sa" in page and "xinmin_party" in page
    quiet = create_app({"TESTING": True, "SECRET_KEY": "x", "ENGINE": world.engine(), "SHOW_DEMO_ACCOUNTS": False})
    assert "demo123" not in quiet.test_client().get("/login").get_data(as_text=True)


def test_chinese_by_default_and_english_on_request(browser: Browser) -> None:
    browser.login("shenyang_sa")
    assert "待办" in browser.get("/inbox").get_data(as_text=True)
    assert browser.post("/language", {"lang": "en", "next": "/inbox"}).headers["Location"] == "/inbox"
    page = browser.get("/inbox").get_data(as_text=True)
    assert "To do" in page and "My tasks" in page and 'lang="en"' in page
    assert browser.post("/language", {"lang": "fr"}).status_code == 400
    browser.post("/language", {"lang": "zh"})
    assert "我的事项" in browser.get("/inbox").get_data(as_text=True)


def test_the_app_refuses_to_start_without_a_secret_key(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMOZONE_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="DEMOZONE_SECRET_KEY"):
        create_app({"ENGINE": world.engine()})
    monkeypatch.setenv("DEMOZONE_SECRET_KEY", "from-the-environment")
    assert create_app({"ENGINE": world.engine()}).secret_key == "from-the-environment"

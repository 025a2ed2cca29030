"""Sign-in and sign-out, throttling, session cookies, demo accounts, the language switch."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.models import User
from engine.passwords import hash_password
from tests.web.conftest import Browser, World, signed_in
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
    now = [1000.0]
    throttle.clock = lambda: now[0]
    for _ in range(5):
        throttle.failed("x", "1.2.3.4")
    assert throttle.blocked("X", "1.2.3.4")
    now[0] += 15 * 60 + 1
    assert not throttle.blocked("x", "1.2.3.4")


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

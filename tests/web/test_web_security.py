"""CSRF, security headers and error pages (Chinese, and never a stack trace)."""

from __future__ import annotations

import logging

import pytest

from tests.web.conftest import World, signed_in
from web import create_app


def test_every_state_changing_form_needs_the_csrf_token(world: World) -> None:
    user = signed_in(world.app, "xinmin_party")
    a, task = world.case_a, world.research_task
    for url, data in (
        ("/logout", {}),
        ("/language", {"lang": "en"}),
        (f"/tasks/{task}", {"action": "submit"}),
        (f"/tasks/{task}/return", {"reason": "x"}),
        (f"/tasks/{task}/transfer", {"to": "x", "reason": "x"}),
        (f"/tasks/{task}/claim", {}),
        (f"/tasks/{task}/unclaim", {}),
        ("/inbox/bulk", {"action": "claim", "task_ids": str(task)}),
        (f"/cases/{a}/comments", {"body": "意见"}),
        (f"/cases/{a}/attachments", {}),
        ("/cases/new", {"process": "zone_creation", "county_code": "210124"}),
    ):
        for token in (None, "forged"):
            sent = dict(data) if token is None else {**data, "csrf_token": token}
            response = user.post(url, sent, csrf=False)
            assert response.status_code == 400, (url, token)
            assert "页面已过期" in response.get_data(as_text=True)
    login = world.app.test_client().post("/login", data={"username": "xinmin_party", "password": "demo123"})
    assert login.status_code == 400
    assert user.get("/inbox").status_code == 200  # still signed in: the refused logout did nothing


def test_security_headers(world: World) -> None:
    client = world.app.test_client()
    for response in (client.get("/login"), client.get("/api/v1/openapi.json"), client.get("/nowhere")):
        headers = response.headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"


def test_error_pages_are_in_chinese(world: World) -> None:
    user = signed_in(world.app, "faku_party")
    missing = user.get(f"/cases/{world.case_b}")
    assert missing.status_code == 404 and "该事项不存在，或您无权查看" in missing.get_data(as_text=True)
    assert user.get("/no/such/page").status_code == 404
    assert user.get("/logout").status_code == 405


@pytest.fixture
def broken_app(world: World):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "ENGINE": world.engine(), "PROPAGATE_EXCEPTIONS": False})

    @app.route("/boom")
    def boom():  # noqa: ANN202
        raise RuntimeError("secret internals: password=hunter2")

    @app.route("/api/v1/boom")
    def api_boom():  # noqa: ANN202
        raise RuntimeError("secret internals: password=hunter2")

    return app


def test_an_unexpected_error_is_logged_and_shown_without_a_trace(broken_app, caplog) -> None:
    client = broken_app.test_client()
    with caplog.at_level(logging.ERROR):
        page = client.get("/boom")
        api = client.get("/api/v1/boom")
    text = page.get_data(as_text=True)
    assert page.status_code == 500 and "系统出现错误" in text
    for body in (text, api.get_data(as_text=True)):
        assert "Traceback" not in body and "hunter2" not in body and "RuntimeError" not in body
    assert api.status_code == 500 and api.get_json()["error"]["code"] == "internal_error"
    assert "secret internals" in caplog.text  # but the log has it


def test_a_broken_error_page_falls_back_to_a_static_one(broken_app, monkeypatch) -> None:
    import web.errors

    def fail(*_args, **_kwargs):
        raise RuntimeError("template engine down")

    monkeypatch.setattr(web.errors, "render_template", fail)
    response = broken_app.test_client().get("/boom")
    assert response.status_code == 500 and "系统暂时无法处理此请求" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_uploads_over_the_limit_are_refused_with_413(world: World) -> None:
    world.app.config["MAX_CONTENT_LENGTH"] = 1000
    user = signed_in(world.app, "xinmin_party")
    response = user.post(
        f"/cases/{world.case_a}/attachments",
        {"file": (__import__("io").BytesIO(b"x" * 5000), "big.txt")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413 and "上传的文件过大" in response.get_data(as_text=True)

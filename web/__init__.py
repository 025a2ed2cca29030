"""The demozone web app: task inbox, task and case pages, and the JSON API, over the engine.

``create_app(overrides)`` is the only way the app is built: defaults, then the environment
(``DEMOZONE_*``), then ``overrides`` (tests pass ``ENGINE`` with a fixed clock, ``TESTING``, …).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from flask import Flask

from engine import AppEngine, build_engine
from engine.settings import PROJECT_ROOT

DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_NAME": "demozone_session",
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
    "SESSION_REISSUE_AFTER": 300,  # seconds: web/sessions.py
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
    "BABEL_DEFAULT_LOCALE": "zh",
    "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_FAILURE_WINDOW": 15 * 60,
    "LOGIN_MAX_FAILURES_PER_USER": 20,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": None,
    "SHOW_DEMO_ACCOUNTS": True,
    "JSON_SORT_KEYS": False,
}


def _from_env() -> dict[str, Any]:
    config: dict[str, Any] = {}
    if os.environ.get("DEMOZONE_SECRET_KEY"):
        config["SECRET_KEY"] = os.environ["DEMOZONE_SECRET_KEY"]
    if os.environ.get("DEMOZONE_SECURE_COOKIES", "").lower() in ("1", "true", "yes"):
        config["SESSION_COOKIE_SECURE"] = True
    if os.environ.get("DEMOZONE_SHOW_DEMO_ACCOUNTS", "").lower() in ("0", "false", "no"):
        config["SHOW_DEMO_ACCOUNTS"] = False
    return config


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(PROJECT_ROOT / "instance"))
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(_from_env())
    app.config.from_mapping(overrides or {})
    if not app.config.get("SECRET_KEY") and not app.testing:
        raise RuntimeError(
            "DEMOZONE_SECRET_KEY is not set: set it to a long random string "
            "(`demozone serve --demo` makes one in instance/secret_key for a local demo)"
        )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.urandom(32).hex()
    app.json.sort_keys = False  # type: ignore[attr-defined]
    engine: AppEngine = app.config.get("ENGINE") or build_engine()
    app.extensions["demozone.engine"] = engine

    from web import api, auth, cases, db, errors, i18n, inbox, security, tasks
    from web.extensions import babel, csrf, login_manager
    from web.sessions import ReissuingSessionInterface

    app.session_interface = ReissuingSessionInterface()
    db.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_translation_directories=str(i18n.TRANSLATIONS_DIR))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"
    i18n.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    for blueprint in (auth.bp, inbox.bp, tasks.bp, cases.bp, api.bp):
        app.register_blueprint(blueprint)
    from web import designer, designer_forms, designer_migrate

    for blueprint in (designer.bp, designer_forms.bp, designer_migrate.bp):
        app.register_blueprint(blueprint)
    from web import admin, audit, notifications, overview, termination

    for blueprint in (audit.bp, overview.bp, notifications.bp, termination.bp, admin.bp):
        app.register_blueprint(blueprint)
    from web import ops

    app.register_blueprint(ops.bp)
    return app

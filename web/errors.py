"""One table from errors to HTTP status, and the two renderers: HTML pages and API JSON.

Every error leaves as ``{"error": {"code", "message", "details"}}`` under ``/api/`` and as a Chinese
(or English) page elsewhere; never a stack trace. Unexpected exceptions are logged and become 500.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from engine.errors import (
    Conflict,
    EngineError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SpecInvalid,
    TaskNotReady,
    WorkflowFailed,
)
from web.i18n import error_message

ENGINE_STATUS: dict[type[EngineError], int] = {
    InvalidInput: 400,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    TaskNotReady: 409,
    WorkflowFailed: 422,
    SpecInvalid: 422,
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "too_many_requests",
    500: "internal_error",
}


def status_for(exc: EngineError) -> int:
    for cls in type(exc).__mro__:
        if cls in ENGINE_STATUS:
            return ENGINE_STATUS[cls]
    return 400


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, code: str, message: str | None = None, details: Any = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message or error_message(code), "details": details}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="demozone"'
    return response


FALLBACK_PAGE = (
    "<!doctype html><html lang=zh><meta charset=utf-8><title>{status}</title>"
    "<h1>{status}</h1><p>系统暂时无法处理此请求，请稍后再试。</p><p><a href=/>返回首页</a></p></html>"
)


def render_error(status: int, code: str, message: str | None = None) -> tuple[str, int]:
    try:
        page = render_template("errors/error.html", status=status, code=code, message=message or error_message(code))
    except Exception:  # the error page itself failed (e.g. the database is down): a static page
        current_app.logger.exception("error page for %s failed", status)
        page = FALLBACK_PAGE.format(status=int(status))
    return page, status


def engine_error_response(exc: EngineError) -> Any:
    status = status_for(exc)
    if wants_json():
        details = exc.details if isinstance(exc, InvalidInput) else None
        return json_error(status, exc.code, error_message(exc.code), details)
    return render_error(status, exc.code)


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    code = HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    if isinstance(exc, CSRFError):
        code = "csrf"
    response = json_error(status, code) if wants_json() else render_error(status, code)
    if status == 405 and exc.valid_methods:
        if isinstance(response, tuple):
            return response[0], status, {"Allow": ", ".join(exc.valid_methods)}
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return json_error(500, "internal_error") if wants_json() else render_error(500, "internal_error")


# The database is down, restarting or out of connections: a 503 that says so, never a 500. A lost race
# that surfaces only at commit (SQLite "locked", PostgreSQL deadlock/serialization) is a 409 conflict,
# as the engine maps it at flush time. The page is built without templates or the database.
DATABASE_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError)
DATABASE_RETRY_AFTER = 30
DATABASE_UNAVAILABLE_TITLE = _l("Service temporarily unavailable")
DATABASE_UNAVAILABLE = _l(
    "The database cannot be reached at the moment. Please try again in a few minutes. "
    "If you had just submitted something, check afterwards whether it was saved."
)
DATABASE_PAGE = (
    "<!doctype html><html lang={lang}><meta charset=utf-8><title>503 {title}</title>"
    "<h1>503 {title}</h1><p>{message}</p><p><a href=/>{home}</a></p></html>"
)


def is_lost_race(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    return "locked" in str(orig) or getattr(orig, "sqlstate", None) in ("40P01", "40001")


def _database_error(exc: Exception) -> Any:
    if is_lost_race(exc):
        return engine_error_response(Conflict("lost a race at commit"))
    current_app.logger.error("database unavailable on %s %s: %s", request.method, request.path, exc)
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
    if wants_json():
        response = json_error(503, "database_unavailable", str(DATABASE_UNAVAILABLE))
        response.headers.update(headers)
        return response
    page = DATABASE_PAGE.format(
        lang=escape(str(get_locale() or "zh")),
        title=escape(str(DATABASE_UNAVAILABLE_TITLE)),
        message=escape(str(DATABASE_UNAVAILABLE)),
        home=escape(str(_l("Back to my tasks"))),
    )
    return page, 503, {**headers, "Content-Type": "text/html; charset=utf-8"}


def init_app(app: Flask) -> None:
    for database_error in DATABASE_ERRORS:
        app.register_error_handler(database_error, _database_error)
    app.register_error_handler(EngineError, engine_error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)

"""Blueprint ``api``: the JSON API at ``/api/v1``, over the same engine calls as the pages.

Authentication is ``Authorization: Bearer <token>`` (``demozone token USER``); only the token's SHA-256
is stored. Every answer is JSON, errors included: ``{"error": {"code", "message", "details"}}``.
CSRF does not apply: a browser never sends the bearer token by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from flask import Blueprint, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from engine import documents, inbox
from engine.access import Actor
from engine.clock import as_utc
from engine.errors import InvalidInput
from engine.models import HistoryEvent
from engine.serializer import reject_unstorable
from web.cases import document_response
from web.db import get_engine, get_session, write, write_on_task
from web.errors import json_error
from web.extensions import csrf
from web.openapi import MAX_PAGE, openapi_document
from web.security import actor_for_token

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


class _NoValidToken(Exception):
    """The request has no valid bearer token: answered 401."""


@bp.errorhandler(_NoValidToken)
def _unauthorized(_exc: _NoValidToken):  # noqa: ANN202
    return json_error(401, "unauthorized")


def _token_actor(session: Session) -> Actor:
    """The actor of the request's bearer token, checked in ``session``'s transaction."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    actor = actor_for_token(session, token.strip()) if scheme.lower() == "bearer" else None
    if actor is None:
        raise _NoValidToken
    return actor


def _actor() -> Actor:
    return g.api_actor


def token_required(view):  # noqa: ANN001, ANN201
    """For a read: the token is checked in the request's read transaction; the view finds the actor in ``_actor()``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.api_actor = _token_actor(get_session())
        return view(*args, **kwargs)

    return wrapper


@contextmanager
def _command(task_id: uuid.UUID | None = None) -> Iterator[tuple[Session, Actor]]:
    """A command's write transaction and the actor of the request's token.

    The token is checked inside the write transaction: one transaction per command, not a read one and
    then a write one (a tenth of an API completion's time). Holding the writer's lock for that one
    indexed statement is no more than a failed sign-in does. The exception is a command on a task whose
    case is not live in this process: its token is checked first, in a read transaction, so that the case
    is deserialized for the task's holder before the writer's lock is taken (``write_on_task``).
    """
    if task_id is not None and not get_engine().store.is_live_task(task_id):
        actor = _token_actor(get_session())
        with write_on_task(actor, task_id) as session:
            yield session, actor
        return
    with write() as session:
        yield session, _token_actor(session)


def _body() -> dict[str, Any]:
    try:
        body = request.get_json(force=True, silent=False)
    except BadRequest as exc:
        raise InvalidInput("the body is not JSON", {"": "请求体必须是 JSON 对象"}) from exc
    if not isinstance(body, dict):
        raise InvalidInput("the body is not a JSON object", {"": "请求体必须是 JSON 对象"})
    reject_unstorable(body)  # reasons and data without a form too: nothing unstorable reaches a command
    return body


def _int(name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} is not an integer", {name: "必须是整数"}) from exc
    if not 1 <= number <= MAX_PAGE:
        raise InvalidInput(f"{name} is out of range", {name: f"必须在 1 到 {MAX_PAGE} 之间"})
    return number


def _bool(name: str) -> bool | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidInput(f"{name} is not a boolean", {name: "必须是 true 或 false"})


def event_dict(event: HistoryEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": as_utc(event.at).isoformat(),
        "actor": event.actor,
        "role": event.role,
        "org_code": event.org_code,
        "command": event.command,
        "task_id": str(event.task_id) if event.task_id else None,
        "step": event.bpmn_id,
        "payload": event.payload,
        "hash": event.hash,
    }


@bp.route("/openapi.json")
def openapi():  # noqa: ANN201
    return jsonify(openapi_document())


@bp.route("/tasks")
@token_required
def list_tasks():  # noqa: ANN201
    query = inbox.InboxQuery(
        process=request.args.get("process") or None,
        county=request.args.get("county") or None,
        overdue=_bool("overdue"),
        search=request.args.get("search") or None,
        sort=request.args.get("sort", "due"),
        page=_int("page", 1),
        per_page=_int("per_page", 20),
    )
    page = inbox.open_tasks(get_engine(), get_session(), _actor(), query)
    return jsonify(
        {"items": [t.to_dict() for t in page.items], "total": page.total, "page": page.page, "per_page": page.per_page}
    )


@bp.route("/tasks/<uuid:task_id>")
@token_required
def get_task(task_id: uuid.UUID):  # noqa: ANN201
    detail = get_engine().get_task(get_session(), _actor(), task_id)
    return jsonify(
        {
            "task": detail.task.to_dict(),
            "schema": detail.schema,
            "instructions": detail.instructions,
            "data": detail.data,
        }
    )


@bp.route("/tasks/<uuid:task_id>/complete", methods=["POST"])
def complete_task(task_id: uuid.UUID):  # noqa: ANN201
    with _command(task_id) as (session, actor):
        data = _body().get("data", {})
        if not isinstance(data, dict):
            raise InvalidInput("data must be an object", {"data": "data 必须是 JSON 对象"})
        view = get_engine().complete_task(session, actor, task_id, data)
    return jsonify(view.to_dict())


@bp.route("/tasks/<uuid:task_id>/return", methods=["POST"])
def return_task(task_id: uuid.UUID):  # noqa: ANN201
    with _command(task_id) as (session, actor):
        reason = _body().get("reason", "")
        if not isinstance(reason, str):
            raise InvalidInput("reason must be a string", {"reason": "退回理由必须是文本"})
        view = get_engine().return_task(session, actor, task_id, reason)
    return jsonify(view.to_dict())


@bp.route("/tasks/<uuid:task_id>/claim", methods=["POST"])
def claim_task(task_id: uuid.UUID):  # noqa: ANN201
    with _command() as (session, actor):
        task = get_engine().claim_task(session, actor, task_id)
    return jsonify(task.to_dict())


@bp.route("/tasks/<uuid:task_id>/unclaim", methods=["POST"])
def unclaim_task(task_id: uuid.UUID):  # noqa: ANN201
    with _command() as (session, actor):
        task = get_engine().unclaim_task(session, actor, task_id)
    return jsonify(task.to_dict())


@bp.route("/instances", methods=["POST"])
def start_instance():  # noqa: ANN201
    with _command() as (session, actor):
        body = _body()
        process, data = body.get("process"), body.get("data", {})
        if not isinstance(process, str) or not process:
            raise InvalidInput("process is required", {"process": "必须指定流程"})
        if not isinstance(data, dict):
            raise InvalidInput("data must be an object", {"data": "data 必须是 JSON 对象"})
        view = get_engine().start_instance(session, actor, process, data)
    return jsonify(view.to_dict()), 201


@bp.route("/instances/<uuid:instance_id>")
@token_required
def get_instance(instance_id: uuid.UUID):  # noqa: ANN201
    return jsonify(get_engine().get_instance(get_session(), _actor(), instance_id).to_dict())


@bp.route("/instances/<uuid:instance_id>/terminate", methods=["POST"])
def terminate_instance(instance_id: uuid.UUID):  # noqa: ANN201
    with _command() as (session, actor):
        reason = _body().get("reason", "")
        if not isinstance(reason, str):
            raise InvalidInput("reason must be a string", {"reason": "终止理由必须是文本"})
        view = get_engine().terminate_instance(session, actor, instance_id, reason)
    return jsonify(view.to_dict())


@bp.route("/instances/<uuid:instance_id>/history")
@token_required
def history(instance_id: uuid.UUID):  # noqa: ANN201
    events = get_engine().history(get_session(), _actor(), instance_id)
    return jsonify({"items": [event_dict(e) for e in events]})


@bp.route("/instances/<uuid:instance_id>/documents")
@token_required
def list_documents(instance_id: uuid.UUID):  # noqa: ANN201
    items = documents.list_documents(get_session(), _actor(), instance_id)
    return jsonify({"items": [d.to_dict() for d in items]})


@bp.route("/documents/<uuid:document_id>")
@token_required
def get_document(document_id: uuid.UUID):  # noqa: ANN201
    return document_response(document_id, _actor())

"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from engine.inbox import MAX_PER_PAGE, MAX_SEARCH_CHARS, SORTS
from engine.store import URGENCIES

MAX_PAGE = 1_000_000


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_DESCRIPTIONS = {
    400: "Invalid input; `details` maps each field path to a message",
    401: "Missing, unknown or revoked bearer token",
    403: "The user may not do this (role or scope)",
    404: "No such item, or outside the user's scope",
    409: "Lost race or task no longer open; nothing was written",
    422: "The process could not continue with this data; nothing was written",
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ref("Error"), ERROR_DESCRIPTIONS[code]) for code in codes}


def _uuid_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "format": "uuid"},
    }


NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid_input", "not_found", "conflict"]},
                    "message": {"type": "string"},
                    "details": {
                        "description": "For invalid_input: field path -> message (Chinese); otherwise null",
                        "type": ["object", "null"],
                        "additionalProperties": {"type": "string"},
                    },
                },
            }
        },
    },
    "Task": {
        "type": "object",
        "required": ["id", "instance", "process", "step", "name", "role", "org_code", "returnable", "urgency"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "instance": {"type": "string", "format": "uuid"},
            "process": {"type": "string"},
            "step": {"type": "string", "description": "BPMN id of the user task"},
            "name": {"type": "string"},
            "role": {"type": "string"},
            "role_title": {"type": "string"},
            "org_code": {"type": "string"},
            "form": {"type": ["string", "null"]},
            "returnable": {"type": "boolean", "description": "whether 退回 is offered"},
            "urgency": {"type": "string", "enum": list(URGENCIES)},
            "created_at": NULLABLE_TIME,
            "due_at": NULLABLE_TIME,
            "claimed_by": {"type": ["string", "null"]},
            "case_title": {"type": "string"},
        },
    },
    "TaskPage": {
        "type": "object",
        "required": ["items", "total", "page", "per_page"],
        "properties": {
            "items": {"type": "array", "items": _ref("Task")},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
        },
    },
    "TaskDetail": {
        "type": "object",
        "required": ["task", "schema", "instructions", "data"],
        "properties": {
            "task": _ref("Task"),
            "schema": {"type": "object", "description": "JSON Schema (draft 2020-12) of the task's form"},
            "instructions": {"type": "string"},
            "data": {"type": "object", "description": "the case data the task sees"},
        },
    },
    "Instance": {
        "type": "object",
        "required": ["id", "process", "version", "business_key", "status", "revision", "open_tasks", "data"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "process": {"type": "string"},
            "version": {"type": "integer"},
            "business_key": {"type": "string"},
            "status": {"type": "string", "enum": ["running", "completed", "error", "terminated"]},
            "outcome": {"type": ["string", "null"]},
            "county_code": {"type": ["string", "null"]},
            "city_code": {"type": ["string", "null"]},
            "revision": {"type": "integer"},
            "created_at": NULLABLE_TIME,
            "completed_at": NULLABLE_TIME,
            "next_timer_at": NULLABLE_TIME,
            "open_tasks": {"type": "array", "items": _ref("Task")},
            "data": {"type": "object"},
        },
    },
    "HistoryEvent": {
        "type": "object",
        "required": ["seq", "at", "actor", "command", "payload", "hash"],
        "properties": {
            "seq": {"type": "integer", "minimum": 1},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "role": {"type": ["string", "null"]},
            "org_code": {"type": ["string", "null"]},
            "command": {"type": "string", "examples": ["start", "complete", "return", "claim", "transfer"]},
            "task_id": {"type": ["string", "null"], "format": "uuid"},
            "step": {"type": ["string", "null"]},
            "payload": {"type": "object"},
            "hash": {"type": "string", "description": "SHA-256 chaining this event to the previous one"},
        },
    },
    "Document": {
        "type": "object",
        "required": ["id", "instance", "kind", "document_no", "title", "issued_on", "sha256", "size"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "instance": {"type": "string", "format": "uuid"},
            "kind": {"type": "string", "enum": ["联合请示", "考察评估意见表", "批复", "考核结果通知", "撤销通知"]},
            "issuer": {"type": "string", "description": "the body whose series numbers it"},
            "document_no": {"type": "string", "examples": ["辽科协发〔2026〕1号"]},
            "title": {"type": "string"},
            "issued_on": {"type": "string", "format": "date", "description": "成文日期"},
            "sha256": {"type": "string", "description": "SHA-256 of the PDF"},
            "size": {"type": "integer", "minimum": 0},
            "filename": {"type": "string"},
        },
    },
    "CompleteRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"data": {"type": "object", "description": "the form data, validated against the task's schema"}},
    },
    "ReturnRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
    },
    "StartRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["process", "data"],
        "properties": {
            "process": {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["zone_creation"]},
            "data": {"type": "object", "examples": [{"county_code": "210181"}]},
        },
    },
}


def _task_op(summary: str, response: str, body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [_uuid_param("task_id", "task id")],
        "responses": {"200": _json(_ref(response), "OK"), **_errors(400, 401, 403, 404, 409, 422)},
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return op


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "demozone API",
            "version": "1",
            "description": "Tasks and cases of Liaoning's 创新驱动助力示范区（县） programme. Every call runs with "
            "the permissions of the token's user, exactly as the web pages do. Tokens: `demozone token USER`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI document")},
                }
            },
            "/api/v1/tasks": {
                "get": {
                    "summary": "My open tasks (待办)",
                    "parameters": [
                        {"name": "process", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                        {
                            "name": "county",
                            "in": "query",
                            "description": "county or city org code",
                            "schema": {"type": "string", "maxLength": 16},
                        },
                        {"name": "overdue", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "search", "in": "query", "schema": {"type": "string", "maxLength": MAX_SEARCH_CHARS}},
                        {"name": "sort", "in": "query", "schema": {"type": "string", "enum": list(SORTS)}},
                        {
                            "name": "page",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        },
                        {
                            "name": "per_page",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                        },
                    ],
                    "responses": {"200": _json(_ref("TaskPage"), "A page of tasks"), **_errors(400, 401)},
                }
            },
            "/api/v1/tasks/{task_id}": {"get": _task_op("A task with its form's JSON Schema", "TaskDetail")},
            "/api/v1/tasks/{task_id}/complete": {
                "post": _task_op("Complete a task (提交) with form data", "Instance", "CompleteRequest")
            },
            "/api/v1/tasks/{task_id}/return": {
                "post": _task_op("Return a task (退回) with a reason", "Instance", "ReturnRequest")
            },
            "/api/v1/tasks/{task_id}/claim": {"post": _task_op("Claim (签收) a task offered to a group", "Task")},
            "/api/v1/tasks/{task_id}/unclaim": {"post": _task_op("Give a claimed task back to the group", "Task")},
            "/api/v1/instances": {
                "post": {
                    "summary": "Start a case (发起)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("StartRequest")}},
                    },
                    "responses": {
                        "201": _json(_ref("Instance"), "The new case"),
                        **_errors(400, 401, 403, 404, 409, 422),
                    },
                }
            },
            "/api/v1/instances/{instance_id}": {
                "get": {
                    "summary": "A case: status, open tasks and data",
                    "parameters": [_uuid_param("instance_id", "case id")],
                    "responses": {"200": _json(_ref("Instance"), "The case"), **_errors(401, 404)},
                }
            },
            "/api/v1/instances/{instance_id}/terminate": {
                "post": {
                    "summary": "Terminate a running case (终止) with a reason; 省科协 or admin only",
                    "parameters": [_uuid_param("instance_id", "case id")],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ReturnRequest")}},
                    },
                    "responses": {
                        "200": _json(_ref("Instance"), "The terminated case"),
                        **_errors(400, 401, 403, 404, 409),
                    },
                }
            },
            "/api/v1/instances/{instance_id}/history": {
                "get": {
                    "summary": "The case's hash-chained history",
                    "parameters": [_uuid_param("instance_id", "case id")],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["items"],
                                "properties": {"items": {"type": "array", "items": _ref("HistoryEvent")}},
                            },
                            "Events, oldest first",
                        ),
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/instances/{instance_id}/documents": {
                "get": {
                    "summary": "The case's official documents (公文), in issue order",
                    "parameters": [_uuid_param("instance_id", "case id")],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["items"],
                                "properties": {"items": {"type": "array", "items": _ref("Document")}},
                            },
                            "Documents without their bytes",
                        ),
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/documents/{document_id}": {
                "get": {
                    "summary": "The PDF of an official document (GB/T 9704 layout)",
                    "parameters": [_uuid_param("document_id", "document id")],
                    "responses": {
                        "200": {
                            "description": "The PDF, inline, with a UTF-8 file name; X-Document-SHA256 is its hash",
                            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        **_errors(401, 404),
                    },
                }
            },
        },
    }

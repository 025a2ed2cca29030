"""The engine's error contract.

Every failure the engine reports is an ``EngineError`` with a stable ``code``; callers (CLI, web, API)
map each class to one exit code or HTTP status. Messages are English, for logs and the CLI; the web
layer translates by ``code``.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    code = "engine_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(EngineError):
    code = "not_found"


class PermissionDenied(EngineError):
    code = "forbidden"


class InvalidInput(EngineError):
    """Submitted data failed validation; ``details`` maps field paths to messages."""

    code = "invalid_input"


class Conflict(EngineError):
    """The instance changed under us (a lost race); nothing was written."""

    code = "conflict"


# The message of a lost race on a case's revision, however the command wrote the case.
CASE_CHANGED = "the case was changed by someone else at the same time; reload and try again"


class TaskNotReady(EngineError):
    code = "task_not_ready"


class SpecInvalid(EngineError):
    """A BPMN/DMN/form file failed validation; ``details`` is a list of ``Finding``s."""

    code = "spec_invalid"


class WorkflowFailed(EngineError):
    """A script, condition or service inside the process failed; the command was rolled back."""

    code = "workflow_failed"

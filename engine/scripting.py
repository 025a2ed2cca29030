"""BPMN scripts and expressions, run under RestrictedPython instead of bare ``eval``/``exec``.

Conditions, scripts, timer expressions and DMN entries are Python written by process designers, and
SpiffWorkflow's default environment runs them with plain ``eval``/``exec`` (``import os`` works). Here
RestrictedPython compiles them, refusing imports and any name or attribute starting with ``_`` (so no
dunder traversal), and the code sees only allow-listed builtins, the engine's helpers and the task data.

Limitation: nothing bounds CPU time or memory; ``while True: pass`` hangs the worker. Only trusted model
authors should deploy processes (a hard bound would need a subprocess runner).
"""

from __future__ import annotations

import copy
import functools
import json
import operator
import re
from collections.abc import Callable, Mapping
from types import CodeType, ModuleType
from typing import Any

from RestrictedPython import Guards, compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import RestrictingNodeTransformer
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import BasePythonScriptEngineEnvironment, PythonScriptEngine
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task

from engine.errors import EngineError


class ScriptError(EngineError):
    """Code in a process is refused, or a service task names an unknown operation. Not a SyntaxError:
    SpiffWorkflow's error handler crashes on one without a line number."""

    code = "script_error"


_EXTRA_BUILTINS = (
    sum,
    min,
    max,
    any,
    all,
    sorted,
    enumerate,
    zip,
    map,
    filter,
    dict,
    list,
    set,
    tuple,
    reversed,
    round,
    abs,
    len,
    range,
    int,
    float,
    str,
    bool,
    isinstance,
)
_BUILTINS: dict[str, Any] = {**safe_builtins, **{f.__name__: f for f in _EXTRA_BUILTINS}}
_INPLACE_OPS = {
    "+=": operator.add,
    "-=": operator.sub,
    "*=": operator.mul,
    "/=": operator.truediv,
    "//=": operator.floordiv,
    "%=": operator.mod,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    """RestrictedPython rewrites ``x += y`` to ``x = _inplacevar_('+=', x, y)``."""
    if op not in _INPLACE_OPS:
        raise ScriptError(f"augmented assignment {op} is not allowed")
    return _INPLACE_OPS[op](target, value)


_GUARDS: dict[str, Any] = {
    "_getattr_": Guards.safer_getattr,
    "_write_": Guards.full_write_guard,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": Guards.guarded_iter_unpack_sequence,
    "_unpack_sequence_": Guards.guarded_unpack_sequence,
    "_inplacevar_": _inplacevar,
    "_print_": PrintCollector,  # print() output is collected and dropped
    "_apply_": lambda func, *args, **kwargs: func(*args, **kwargs),  # calls using *args / **kwargs
}


class _Policy(RestrictingNodeTransformer):
    """Refuse imports when compiling (RestrictedPython only lacks ``__import__``): deploy checks see them."""

    def visit_Import(self, node: Any) -> Any:
        self.error(node, "Import statements are not allowed.")
        return node

    visit_ImportFrom = visit_Import


_LINE = re.compile(r"^Line (\d+|None): (?:SyntaxError: )?")


def _describe(errors: tuple[str, ...]) -> str:
    """One line from RestrictedPython's ``Line 2: SyntaxError: ... at statement: '...'`` messages."""
    kind = "syntax error" if any("SyntaxError: " in e for e in errors) else "forbidden construct"
    parts = []
    for error in errors:
        match = _LINE.match(error)
        text = (error[match.end() :] if match else error).replace(" at statement: None", "")
        parts.append(f"line {match[1]}: {text}" if match and match[1] not in ("0", "None") else text)
    return " ".join(f"{kind}: {'; '.join(parts)}".split())


@functools.lru_cache(maxsize=1024)
def _compile(source: str, mode: str) -> tuple[CodeType | None, str | None]:
    """``(code, None)``, or ``(None, message)`` if refused; cached because compiling is slow."""
    result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source, policy=_Policy)
    return (None, _describe(result.errors)) if result.errors else (result.code, None)


def _compiled(source: str, mode: str) -> CodeType:
    code, message = _compile(source, mode)
    if code is None:
        raise ScriptError(message or "code cannot be compiled")
    return code


def check_expression(text: str) -> str | None:
    """Deploy-time check of a condition or other expression: None if allowed, else a one-line message."""
    return _compile(text, "eval")[1]


def check_script(text: str) -> str | None:
    """Deploy-time check of a script (task, pre- or post-script): None if allowed, else a one-line message."""
    return _compile(text, "exec")[1]


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Code sees the task data, allow-listed builtins and the engine's helpers, and nothing else."""

    def __init__(self, helpers: Mapping[str, Callable[..., Any]] | None = None) -> None:
        super().__init__(dict(helpers or {}))

    def _namespace(self, context: Mapping[str, Any], external: Mapping[str, Any] | None) -> dict[str, Any]:
        # Task data may shadow helpers, as in SpiffWorkflow, but never the guards or the builtins.
        return {**self.globals, **(external or {}), **context, **_GUARDS, "__builtins__": dict(_BUILTINS)}

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> Any:
        return eval(_compiled(expression, "eval"), self._namespace(context, external_context))

    def execute(self, script: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> bool:
        """Run the script; the variables it assigns or deletes become the task data's."""
        namespace = self._namespace(context, external_context)
        exec(_compiled(script, "exec"), namespace)
        for name in [name for name in context if name not in namespace]:
            del context[name]
        reserved = {*self.globals, *(external_context or {})}
        context.update(
            {
                name: value
                for name, value in namespace.items()
                if not name.startswith("_")
                and name not in reserved
                and not callable(value)
                and not isinstance(value, ModuleType)
            }
        )
        return True


class ScriptEngine(PythonScriptEngine):
    """The engine's script engine: restricted code, and service tasks resolved through a registry."""

    def __init__(
        self,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
        services: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        super().__init__(environment=RestrictedEnvironment(helpers))
        self.services = dict(services or {})

    def call_service(self, task: Task, operation_name: str, operation_params: Mapping[str, Mapping[str, Any]]) -> str:
        """Return ``services[operation_name](task_data, **params)`` as the JSON SpiffWorkflow expects.

        The service gets a copy of the data, so it acts on the process only through its result. Failures
        are wrapped here because the base class's wrapper raises a NameError in 3.2.0."""
        try:
            service = self.services.get(operation_name)
            if service is None:
                raise ScriptError(f"unknown service operation {operation_name!r}")
            params = {name: param["value"] for name, param in operation_params.items()}
            return json.dumps(service(copy.deepcopy(task.data), **params), ensure_ascii=False)
        except SpiffWorkflowException:
            raise
        except Exception as err:
            detail = str(err) if isinstance(err, ScriptError) else f"{type(err).__name__}: {err}"
            raise WorkflowTaskException(detail, task=task, exception=err) from err

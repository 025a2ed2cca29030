"""Validate submitted task data against the task's JSON Schema, with one message per field.

Messages are Chinese because they are shown next to the field to the official who typed the value.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from engine.errors import InvalidInput
from engine.serializer import reject_unstorable

_FORMAT_CHECKER = FormatChecker()
_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}
_TYPE_NAMES = {
    "string": "文本",
    "integer": "整数",
    "number": "数字",
    "boolean": "是/否",
    "array": "列表",
    "object": "对象",
}


def _field_title(schema: dict[str, Any], path: list[Any]) -> str:
    node: Any = schema
    title = ""
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {}) if isinstance(node, dict) else {}
            continue
        node = node.get("properties", {}).get(part, {}) if isinstance(node, dict) else {}
        title = node.get("title", str(part)) if isinstance(node, dict) else str(part)
    return title


def field_examples(schema: Any) -> list[str]:
    """A field's JSON Schema ``examples`` as text: a format is easier to copy than to describe, so the
    pages show the first as the placeholder and the format errors quote them all."""
    examples = schema.get("examples") if isinstance(schema, dict) else None
    return [str(example) for example in examples] if isinstance(examples, list) else []


def _for_example(error: ValidationError) -> str:
    examples = field_examples(error.schema)
    return "，例如：" + " / ".join(examples) if examples else ""


def _message(error: ValidationError, title: str) -> str:
    v = error.validator_value
    messages = {
        "required": "此项为必填项",
        "type": f"类型不正确，应为{_TYPE_NAMES.get(v, v) if isinstance(v, str) else v}",
        "enum": "取值必须是以下之一：" + "、".join(map(str, v)) if isinstance(v, list) else "取值不在允许范围内",
        "minLength": f"至少填写 {v} 个字",
        "maxLength": f"最多 {v} 个字",
        "minimum": f"不能小于 {v}",
        "maximum": f"不能大于 {v}",
        "exclusiveMinimum": f"必须大于 {v}",
        "exclusiveMaximum": f"必须小于 {v}",
        "minItems": f"至少需要 {v} 项",
        "maxItems": f"最多 {v} 项",
        "uniqueItems": "不能有重复项",
        "format": "格式不正确" + ("，应为日期（YYYY-MM-DD）" if v == "date" else _for_example(error) or f"（{v}）"),
        "pattern": "格式不正确" + _for_example(error),
        "const": f"取值必须为 {v}",
    }
    return (
        f"{title}：{messages.get(error.validator, error.message)}"
        if title
        else messages.get(error.validator, error.message)
    )


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    # Building a validator costs more than validating a form; a deployed version's schemas never change.
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, Draft202012Validator(schema, format_checker=_FORMAT_CHECKER))
        if len(_VALIDATORS) > 1024:
            _VALIDATORS.clear()
        _VALIDATORS[id(schema)] = cached
    return cached[1]


def validate_form_data(schema: dict[str, Any], data: Any) -> dict[str, Any]:
    """Return the data if it satisfies the schema; else raise ``InvalidInput`` with per-field messages."""
    if not isinstance(data, dict):
        raise InvalidInput("form data must be a JSON object", {"": "提交的数据必须是对象"})
    reject_unstorable(data)
    errors: dict[str, str] = {}
    allowed = set(schema.get("properties", {}))
    for key in data:
        if key not in allowed:
            errors[key] = f"不允许的字段：{key}"
    for error in _validator(schema).iter_errors(data):
        path = list(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = [*path, missing]
        key = "/".join(str(p) for p in path)
        errors.setdefault(key, _message(error, _field_title(schema, path)))
    if errors:
        raise InvalidInput(f"{len(errors)} field(s) invalid: {', '.join(sorted(errors))}", errors)
    return data

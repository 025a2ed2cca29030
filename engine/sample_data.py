"""Schema-valid sample form data, for simulation, benchmarks and tests.

Values are plausible rather than random: the first enum choice, the minimum number of items, text
long enough for ``minLength``, today's date for dates. Callers override the fields that steer the
process (decisions, scores).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator

# Values tried, in order, for string fields with a pattern (phone numbers, credit codes, codes).
PATTERN_CANDIDATES = (
    "13800138000",
    "024-23456789",
    "91210100MA0Y8QWE3K",
    "沈科协发〔2026〕8号",
    "210181",
    "S001",
    "A1",
)
FILLER = "示范区创建工作材料，内容真实完整。"


def sample_value(schema: dict[str, Any], today: date, name: str = "") -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        return sample_object(schema, today)
    if kind == "array":
        count = max(schema.get("minItems", 1), 1)
        items = schema.get("items", {"type": "string"})
        if "enum" in items:
            return list(items["enum"][:count])
        if schema.get("uniqueItems") and items.get("type") == "string" and not items.keys() & {"pattern", "format"}:
            base = str(sample_value(items, today, name))
            limit = items.get("maxLength", len(base) + 3)
            return [base[: max(limit - len(str(i)), 0)] + str(i) for i in range(1, count + 1)]
        return [sample_value(items, today, name) for _ in range(count)]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", low + 100)
        value = max(low, min(high, (low + high) // 2 if kind == "integer" else (low + high) / 2))
        return int(value) if kind == "integer" else float(value)
    if schema.get("format") == "date":
        return today.isoformat()
    if "pattern" in schema:
        for candidate in PATTERN_CANDIDATES:
            if re.search(schema["pattern"], candidate):
                return candidate
        raise ValueError(f"no sample value matches the pattern of {name!r}: {schema['pattern']}")
    text = schema.get("title", name) or "内容"
    minimum, maximum = schema.get("minLength", 0), schema.get("maxLength", 200)
    while len(text) < minimum:
        text += FILLER
    return text[: max(maximum, minimum)]


def sample_object(schema: dict[str, Any], today: date) -> dict[str, Any]:
    required = schema.get("required", [])
    return {key: sample_value(sub, today, key) for key, sub in schema.get("properties", {}).items() if key in required}


def sample_form_data(schema: dict[str, Any], today: date, **overrides: Any) -> dict[str, Any]:
    """A payload that satisfies ``schema``, with ``overrides`` applied (and checked)."""
    data = {**sample_object(schema, today), **overrides}
    Draft202012Validator(schema).validate(data)
    return data

"""Schemathesis against /api/v1/openapi.json, in-process: no request may end in a 5xx, and every
answer must match the document (status codes, content types, response schemas).

The cases are drawn with Hypothesis from each operation's strategy and sent through the WSGI app with
a real token, so they pass authentication and reach the engine.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.web.conftest import World

EXAMPLES_PER_OPERATION = 25
# Form data is checked against each task's own JSON Schema, which the document cannot spell out
# (it differs per task), so well-formed but wrong data is rightly refused with 400.
EXCLUDED = [positive_data_acceptance]


def test_the_api_matches_its_document_and_never_fails(shared: World) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", shared.app)
    headers = {"Authorization": f"Bearer {shared.tokens['shenyang_sa']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

        check()

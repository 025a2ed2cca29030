"""申报批次: zone-creation cases belong to the open batch and count against its quota."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.access import load_actor
from engine.batches import list_batches, open_batch
from engine.db import read_session, write_session
from engine.errors import InvalidInput, PermissionDenied
from tests.support.scenario import Scenario
from tests.support.zone import start


def test_a_recommendation_is_filed_under_the_open_batch(scenario: Scenario) -> None:
    start(scenario)
    assert scenario.view().data["batch_name"] == "2026年度创新驱动助力示范区（县）申报"
    with read_session(scenario.engine.sessions) as session:
        (batch,) = list_batches(session)
    assert (batch.recommended, batch.approved, batch.quota) == (1, 0, 15)


def test_no_recommendation_without_an_open_batch(scenario: Scenario) -> None:
    scenario.clock.set(scenario.clock.now().replace(year=2027, month=1, day=5))
    with pytest.raises(InvalidInput) as raised:
        start(scenario)
    assert set(raised.value.details) == {"batch"}
    with write_session(scenario.engine.sessions) as session:
        for username, quota, error in (("shenyang_sa", 12, PermissionDenied), ("province_office", 20, InvalidInput)):
            with pytest.raises(error):
                open_batch(session, load_actor(session, username), 2027, quota, date(2027, 6, 30), scenario.clock.now())
        open_batch(session, load_actor(session, "province_office"), 2027, 12, date(2027, 6, 30), scenario.clock.now())
    start(scenario)
    with read_session(scenario.engine.sessions) as session:
        batches = list_batches(session)
    assert [(b.year, b.recommended) for b in batches] == [(2027, 1), (2026, 0)]
    assert batches[0].is_open(scenario.clock.now().date())
    assert not batches[0].is_open(scenario.clock.now().date() + timedelta(days=200))

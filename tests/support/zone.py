"""Data and steps of the zone-creation process, shared by scenario, audit and web tests."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from engine.sample_data import sample_form_data
from tests.support.scenario import Scenario

FORMS = Path(__file__).parent.parent.parent / "forms"
TODAY = date(2026, 3, 2)
GOOD = {"score_foundation": 23, "score_demand": 22, "score_targets": 18, "score_support": 17, "score_materials": 9}
FAIR = {"score_foundation": 18, "score_demand": 18, "score_targets": 14, "score_support": 14, "score_materials": 6}
NO_VETO = {
    "veto_falsified": False,
    "veto_no_leading_industry": False,
    "veto_no_funding": False,
    "veto_major_incident": False,
}


def fill(form: str, **overrides: Any) -> dict[str, Any]:
    schema = json.loads((FORMS / f"{form}.json").read_text(encoding="utf-8"))
    return sample_form_data(schema, TODAY, **overrides)


def start(case: Scenario, county: str = "210181") -> None:
    case.start("shenyang_sa", "zone_creation", {"county_code": county})


def through_joint_request(case: Scenario) -> None:
    case.complete("shenyang_sa", "recommend", fill("recommend"))
    case.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    case.complete("xinmin_party", "research_report", fill("research_report"))
    case.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    case.complete("shenyang_sa", "joint_request", fill("joint_request"))
    case.complete("xinmin_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))


def evaluate(case: Scenario, sheets: dict[str, dict[str, Any]]) -> None:
    """省科协 assigns the societies in ``sheets``; each submits its score sheet."""
    case.complete("province_office", "assign_societies", fill("assign_societies", assigned_societies=list(sheets)))
    for code, sheet in sheets.items():
        case.complete(code.lower(), "society_evaluation", fill("society_evaluation", **{**NO_VETO, **sheet}))

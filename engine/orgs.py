"""Liaoning's org units: the province, 14 cities, their counties and districts, high-tech parks and
provincial societies, loaded from the CSV files in ``engine/data``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.models import OrgUnit
from engine.roles import PROVINCE_CODE

DATA_DIR = Path(__file__).parent / "data"
CANDIDATE_KINDS = {"county": "county", "county_city": "county", "district": "district", "park": "park"}


@dataclass(frozen=True)
class CaseScope:
    """Where a case belongs: its candidate (county, district or park) and that candidate's city."""

    county_code: str
    county_name: str
    city_code: str
    city_name: str
    candidate_kind: str

    def as_data(self) -> dict[str, str]:
        return dict(self.__dict__)


def society_code(position: int) -> str:
    return f"S{position:03d}"


def read_org_units() -> list[OrgUnit]:
    """Every org unit from the bundled reference data, parents before children."""
    units = []
    with open(DATA_DIR / "liaoning-divisions.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            units.append(
                OrgUnit(code=row["code"], name=row["name"], kind=row["level"], parent_code=row["parent_code"] or None)
            )
    with open(DATA_DIR / "liaoning-parks.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            units.append(OrgUnit(code=row["code"], name=row["name"], kind="park", parent_code=row["parent_code"]))
    with open(DATA_DIR / "liaoning-societies.csv", encoding="utf-8") as fh:
        for position, row in enumerate(csv.DictReader(fh), start=1):
            units.append(
                OrgUnit(
                    code=society_code(position),
                    name=row["name"],
                    kind="society",
                    parent_code=PROVINCE_CODE,
                    field=row["field"],
                )
            )
    return units


def load_org_units(session: Session) -> int:
    """Insert the org units that are missing (idempotent); return how many were added."""
    existing = set(session.scalars(select(OrgUnit.code)))
    added = 0
    for unit in read_org_units():
        if unit.code not in existing:
            session.add(unit)
            added += 1
    session.flush()
    return added


def _candidate_with_city() -> Select:
    """A candidate unit and its city in one statement, built once: every case start runs it."""
    candidate, city = OrgUnit.__table__.alias("candidate"), OrgUnit.__table__.alias("city")
    return (
        select(
            candidate.c.code,
            candidate.c.name,
            candidate.c.kind,
            city.c.code.label("city_code"),
            city.c.name.label("city_name"),
        )
        .join(city, city.c.code == candidate.c.parent_code)
        .where(candidate.c.code == bindparam("code"))
    )


_CANDIDATE_WITH_CITY = _candidate_with_city()


def resolve_case_scope(session: Session, code: object) -> CaseScope:
    """The scope of a case for a candidate code; InvalidInput naming the field if it is not a candidate."""
    row = (
        session.connection().execute(_CANDIDATE_WITH_CITY, {"code": code}).first()
        if isinstance(code, str) and code
        else None
    )
    if row is None or row.kind not in CANDIDATE_KINDS:
        raise InvalidInput(
            f"{code!r} is not a county, district or park code", {"county_code": "候选区（县）或园区代码不存在"}
        )
    return CaseScope(row.code, row.name, row.city_code, row.city_name, CANDIDATE_KINDS[row.kind])

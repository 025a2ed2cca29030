"""Liaoning demo data: org units, one demo user per role and scope, and this year's open batch
(idempotent).

Every city gets its three city roles; twelve counties across five cities get the county roles and a
zone office; the province and every provincial society get theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Batch, OrgUnit, RoleAssignment, User
from engine.orgs import load_org_units
from engine.passwords import hash_password
from engine.roles import PROVINCE_CODE

DEMO_PASSWORD = "demo123"

CITY_SLUGS = {
    "210100": "shenyang",
    "210200": "dalian",
    "210300": "anshan",
    "210400": "fushun",
    "210500": "benxi",
    "210600": "dandong",
    "210700": "jinzhou",
    "210800": "yingkou",
    "210900": "fuxin",
    "211000": "liaoyang",
    "211100": "panjin",
    "211200": "tieling",
    "211300": "chaoyang",
    "211400": "huludao",
}
DEMO_COUNTIES = {
    "210181": "xinmin",
    "210124": "faku",
    "210281": "wafangdian",
    "210283": "zhuanghe",
    "210381": "haicheng",
    "210323": "xiuyan",
    "210682": "fengcheng",
    "210681": "donggang",
    "210881": "gaizhou",
    "210882": "dashiqiao",
    "211282": "kaiyuan",
    "211224": "changtu",
    "2101GX": "shenyanggx",
}
CITY_ROLES = {"city_sa": "sa", "city_talent_office": "talent", "city_org_dept": "org"}
COUNTY_ROLES = {"county_party": "party", "county_gov": "gov", "zone_office": "office"}


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    org_code: str


def demo_accounts(session: Session) -> list[DemoAccount]:
    names = dict(session.execute(select(OrgUnit.code, OrgUnit.name)).tuples().all())
    titles = {
        "city_sa": "科协",
        "city_talent_office": "委组织部人才办",
        "city_org_dept": "委组织部",
        "county_party": "委",
        "county_gov": "政府",
        "zone_office": "示范区办公室",
    }
    accounts = []
    for code, slug in CITY_SLUGS.items():
        for role, suffix in CITY_ROLES.items():
            accounts.append(DemoAccount(f"{slug}_{suffix}", names[code] + titles[role], role, code))
    for code, slug in DEMO_COUNTIES.items():
        for role, suffix in COUNTY_ROLES.items():
            accounts.append(DemoAccount(f"{slug}_{suffix}", names[code] + titles[role], role, code))
    accounts += [
        DemoAccount("province_office", "省科协学会学术部", "province_office", PROVINCE_CODE),
        DemoAccount("province_org", "省委组织部人才工作处", "province_org_dept", PROVINCE_CODE),
        DemoAccount("auditor", "审计员", "auditor", PROVINCE_CODE),
        DemoAccount("designer", "流程设计员", "designer", PROVINCE_CODE),
        DemoAccount("admin", "系统管理员", "admin", PROVINCE_CODE),
    ]
    societies = session.scalars(select(OrgUnit).where(OrgUnit.kind == "society").order_by(OrgUnit.code))
    accounts += [DemoAccount(unit.code.lower(), unit.name, "society", unit.code) for unit in societies]
    return accounts


def seed_demo(session: Session, now: datetime) -> tuple[int, int]:
    """Load org units and demo users; return (org units added, users added). Safe to run twice."""
    units_added = load_org_units(session)
    existing = set(session.scalars(select(User.username)))
    password_hash = hash_password(DEMO_PASSWORD)  # one hash for all demo users: scrypt is slow on purpose
    users_added = 0
    for account in demo_accounts(session):
        if account.username in existing:
            continue
        user = User(
            username=account.username,
            display_name=account.display_name,
            password_hash=password_hash,
            active=True,
            created_at=now,
        )
        user.roles.append(RoleAssignment(role=account.role, org_code=account.org_code))
        session.add(user)
        users_added += 1
    if session.scalar(select(Batch.id).limit(1)) is None:
        session.add(Batch(year=now.year, name=f"{now.year}年度创新驱动助力示范区（县）申报", quota=15,
                          opens_on=date(now.year, 1, 1), deadline=date(now.year, 12, 31), opened_by="province_office",
                          opened_at=now))
    session.flush()
    return units_added, users_added

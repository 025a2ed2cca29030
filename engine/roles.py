"""The programme's roles: BPMN lane names are these keys; each role's tasks are scoped to one org unit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    key: str
    title: str
    scope: str  # city | county | province | society | global


ROLES: dict[str, Role] = {
    role.key: role
    for role in (
        Role("city_talent_office", "市委组织部人才办", "city"),
        Role("city_org_dept", "市委组织部", "city"),
        Role("city_sa", "市科协", "city"),
        Role("county_party", "县（市、区）委", "county"),
        Role("county_gov", "县（市、区）政府", "county"),
        Role("province_office", "省科协学会学术部（领导小组办公室）", "province"),
        Role("province_org_dept", "省委组织部", "province"),
        Role("society", "省级学会", "society"),
        Role("zone_office", "示范区工作领导小组办公室", "county"),
        Role("auditor", "审计", "global"),
        Role("designer", "流程设计", "global"),
        Role("admin", "系统管理", "global"),
    )
}

LANE_ROLES = frozenset(key for key, role in ROLES.items() if role.scope != "global")
PROVINCE_CODE = "210000"

"""The case page: header, timeline, 案卷, and the data for the BPMN diagram."""

from __future__ import annotations

import json
import re

from tests.web.conftest import World, signed_in


def test_the_case_page_shows_timeline_dossier_and_diagram_state(shared: World) -> None:
    page = signed_in(shared.app, "shenyang_sa").get(f"/cases/{shared.case_a}").get_data(as_text=True)
    assert "新民市" in page and "沈阳市" in page and "办理中" in page
    for text in ("发起", "填报推荐表", "人才办会签", "同意", "请县委抓紧调研", "调研提纲.pdf"):
        assert text in page, text
    assert "县委组织调研" in page  # the open step
    state = json.loads(re.search(r'id="diagram-state">(.*?)</script>', page, re.S).group(1))
    assert {"recommend", "talent_cosign"} <= set(state["completed"])
    assert state["active"] == ["research_report"]
    assert f'data-xml-url="/cases/{shared.case_a}/diagram.bpmn"' in page
    assert "推荐理由" in page  # the 案卷 shows the recommendation's fields by their titles


def test_the_diagram_is_the_deployed_bpmn(shared: World) -> None:
    response = signed_in(shared.app, "xinmin_party").get(f"/cases/{shared.case_a}/diagram.bpmn")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert b'<bpmn:process id="zone_creation"' in response.data


def test_the_english_case_page(shared: World) -> None:
    user = signed_in(shared.app, "province_office")
    user.post("/language", {"lang": "en"})
    page = user.get(f"/cases/{shared.case_a}").get_data(as_text=True)
    assert "Progress" in page and "Case file" in page and "Submitted" in page and "City Talent Office" in page

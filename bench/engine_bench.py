"""Engine benchmark: the demozone engine against raw SpiffWorkflow, on the same zone_creation model.

Run from the project root:

    .venv/bin/python bench/engine_bench.py --quick      # ~40 s
    .venv/bin/python bench/engine_bench.py              # full run, a few minutes

It builds a throwaway database (a temporary SQLite file in WAL mode, or the empty database given by
``--database-url``), seeds the Liaoning demo data, deploys ``processes/`` and the generated
``bench/models/``, and prints, all in one run:

1. zone_creation driven to approval through the engine commands, one committed transaction per
   command (as the CLI does): completions/s, p50/p95 per command, stored bytes per finished case;
2. the raw SpiffWorkflow baseline on the same model (deserialize -> run -> serialize per user task,
   spec embedded, no database) and the ratio engine/raw;
3. the cost of one completion late in a 200-step case against one in a 10-step case;
4. the inbox query p95 with M cases stored;

and a summary table of the goals of issue 2. See bench/README.md for what each figure means.
Never imported by the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import gc
import io
import json
import math
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import SpiffWorkflow
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import LargeBinary, Text, cast, func, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from engine import AppEngine, Settings, build_engine
from engine.access import Actor, load_actor
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.demo import seed_demo
from engine.errors import SpecInvalid
from engine.migrate import upgrade_database
from engine.models import HistoryEvent, Instance, OpenTask, OrgUnit, RoleAssignment, User
from engine.sample_data import sample_form_data
from engine.scripting import ScriptEngine
from engine.settings import PROJECT_ROOT
from engine.typeset import register_fonts

BENCH_DIR = Path(__file__).resolve().parent
MODELS_DIR = BENCH_DIR / "models"
FORMS_DIR = PROJECT_ROOT / "forms"
PROCESS_FILE = PROJECT_ROOT / "processes" / "zone_creation.bpmn"
DECISION_FILE = PROJECT_ROOT / "processes" / "zone_recommendation.dmn"

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # the bench clock stands still at 09:00 Shenyang time
TODAY = date(2026, 3, 2)
ZONE = "zone_creation"
APPROVED = "已批复"
CANDIDATE_KINDS = ("county", "county_city", "district", "park")
PROVINCE_CODE = "210000"
CITY_ROLES = ("city_sa", "city_talent_office", "city_org_dept")
COUNTY_ROLES = ("county_party", "county_gov", "zone_office")

GOALS = {"ratio": 1.0, "inbox_ms": 5.0, "long_ratio": 1.5}
LAST_STEPS = 20  # the completions of seq200 that are compared with seq10's
PARKS_PER_BENCH_CITY = 50
BENCH_CITY_PREFIX = "9"  # made-up cities 9001 00…; real Liaoning codes start with 21
ADVANCED_FILLER_SHARE = 0.01  # stored filler cases moved on to 省科协's steps, so its inbox is not empty

NO_VETO = {
    "veto_falsified": False,
    "veto_no_leading_industry": False,
    "veto_no_funding": False,
    "veto_major_incident": False,
}
GOOD_SCORES = {
    "score_foundation": 23,
    "score_demand": 22,
    "score_targets": 18,
    "score_support": 17,
    "score_materials": 9,
}
# The answers that keep a case on the happy path to approval.
STEERING = {
    "talent_cosign": {"talent_decision": "同意"},
    "org_consent": {"consent_decision": "同意"},
    "joint_cosign": {"cosign_decision": "同意"},
    "society_evaluation": {**NO_VETO, **GOOD_SCORES},
    "province_decision": {"province_decision": "批准"},
}
SEQ_FORM = "seq_step.json"


# -- figures -----------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (linear interpolation); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


@dataclass
class Timings:
    """Latencies of the commands of one phase, in seconds."""

    starts: list[float] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)
    by_index: dict[int, list[float]] = field(default_factory=dict)  # completion number in its case -> latencies

    def add_completion(self, index: int, seconds: float) -> None:
        self.completions.append(seconds)
        self.by_index.setdefault(index, []).append(seconds)

    def window(self, first: int, last: int) -> list[float]:
        return [s for i in range(first, last + 1) for s in self.by_index.get(i, [])]

    def rate(self) -> float:
        return per_second(len(self.completions), sum(self.completions))

    def summary(self) -> dict[str, float]:
        return {
            "completions": len(self.completions),
            "completions_per_s": self.rate(),
            "complete_p50_ms": pct(self.completions, 50) * 1000,
            "complete_p95_ms": pct(self.completions, 95) * 1000,
            "complete_mean_ms": mean(self.completions) * 1000,
            "starts": len(self.starts),
            "start_p50_ms": pct(self.starts, 50) * 1000,
            "start_p95_ms": pct(self.starts, 95) * 1000,
        }


def print_timings(label: str, timings: Timings, cases: int) -> None:
    s = timings.summary()
    print(
        f"  {label:<36} {s['completions']:>5} completions {s['completions_per_s']:>7.1f}/s   "
        f"complete p50 {s['complete_p50_ms']:.2f} ms, p95 {s['complete_p95_ms']:.2f} ms   "
        f"start p50 {s['start_p50_ms']:.2f} ms, p95 {s['start_p95_ms']:.2f} ms   ({cases} cases)"
    )


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"
    except OSError:
        return "n/a"


def progress(total: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="cmd", leave=False, mininterval=0.5, disable=not enabled, file=sys.stderr)


# -- generated models (bench/models) -----------------------------------------------------------


def seq_bpmn(steps: int) -> str:
    """start -> step_001 ... step_NNN -> end, all in the city_sa lane, each step the one-field form."""
    pid = f"seq{steps}"
    ids = [f"step_{i:03d}" for i in range(1, steps + 1)]
    nodes = ["start", *ids, "end"]
    flows = [(f"flow_{i:03d}", nodes[i], nodes[i + 1]) for i in range(len(nodes) - 1)]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- Generated by bench/engine_bench.py; do not edit. -->",
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
        f'id="Definitions_{pid}" targetNamespace="http://demozone.liaoning/bench">',
        f'  <bpmn:process id="{pid}" name="基准测试：{steps}个顺序步骤" isExecutable="true">',
        f'    <bpmn:laneSet id="laneset_{pid}">',
        '      <bpmn:lane id="lane_city_sa" name="city_sa">',
        *[f"        <bpmn:flowNodeRef>{node}</bpmn:flowNodeRef>" for node in nodes],
        "      </bpmn:lane>",
        "    </bpmn:laneSet>",
        '    <bpmn:startEvent id="start" name="发起">',
        f"      <bpmn:outgoing>{flows[0][0]}</bpmn:outgoing>",
        "    </bpmn:startEvent>",
    ]
    for i, task_id in enumerate(ids, start=1):
        lines += [
            f'    <bpmn:userTask id="{task_id}" name="第{i}步">',
            "      <bpmn:extensionElements>",
            "        <spiffworkflow:properties>",
            f'          <spiffworkflow:property name="formJsonSchemaFilename" value="{SEQ_FORM}" />',
            "        </spiffworkflow:properties>",
            "      </bpmn:extensionElements>",
            f"      <bpmn:incoming>{flows[i - 1][0]}</bpmn:incoming>",
            f"      <bpmn:outgoing>{flows[i][0]}</bpmn:outgoing>",
            "    </bpmn:userTask>",
        ]
    lines += [
        '    <bpmn:endEvent id="end" name="结束">',
        f"      <bpmn:incoming>{flows[-1][0]}</bpmn:incoming>",
        "    </bpmn:endEvent>",
        *[f'    <bpmn:sequenceFlow id="{fid}" sourceRef="{src}" targetRef="{dst}" />' for fid, src, dst in flows],
        "  </bpmn:process>",
        "</bpmn:definitions>",
        "",
    ]
    return "\n".join(lines)


SEQ_STEP_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "基准测试步骤",
    "description": "One trivial field: the long-instance benchmark measures the engine, not the form.",
    "type": "object",
    "properties": {"note": {"type": "string", "title": "办理意见", "minLength": 1, "maxLength": 200}},
    "required": ["note"],
    "additionalProperties": False,
}
SEQ_START_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "发起",
    "description": "The candidate county, district or park of the case (as zone_creation.start.json).",
    "type": "object",
    "properties": {
        "county_code": {
            "type": "string",
            "title": "候选区（县）或园区代码",
            "minLength": 6,
            "maxLength": 32,
            "pattern": "^[0-9A-Za-z-]+$",
        }
    },
    "required": ["county_code"],
    "additionalProperties": False,
}


def write_models(step_counts: Iterable[int]) -> list[Path]:
    """(Re)generate bench/models: seqN.bpmn, forms/seq_step.json and forms/seqN.start.json."""
    files = {MODELS_DIR / "forms" / SEQ_FORM: json.dumps(SEQ_STEP_FORM, ensure_ascii=False, indent=2) + "\n"}
    for steps in step_counts:
        files[MODELS_DIR / f"seq{steps}.bpmn"] = seq_bpmn(steps)
        start_form = json.dumps(SEQ_START_FORM, ensure_ascii=False, indent=2) + "\n"
        files[MODELS_DIR / "forms" / f"seq{steps}.start.json"] = start_form
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return sorted(files)


# -- form data ---------------------------------------------------------------------------------


class Payloads:
    """Schema-valid form data for each user task, by its form file (made once, copied per use)."""

    def __init__(self, forms_dirs: list[Path]) -> None:
        self.forms_dirs = forms_dirs
        self.base: dict[str, dict[str, Any]] = {}

    @staticmethod
    def societies(case_index: int) -> list[str]:
        """Two or three society codes per case, spread over S001…S024."""
        return [f"S{(case_index * 5 + j * 7) % 24 + 1:03d}" for j in range(2 + case_index % 2)]

    def form(self, case_index: int, step: str, form_name: str | None) -> dict[str, Any]:
        """A fresh copy (the engine and SpiffWorkflow may keep, or change, what they are given)."""
        key = f"{step}:{form_name}"
        if key not in self.base:
            path = next((d / form_name for d in self.forms_dirs if form_name and (d / form_name).is_file()), None)
            if path is None:
                raise SystemExit(f"no form {form_name!r} for step {step!r} in {[str(d) for d in self.forms_dirs]}")
            schema = json.loads(path.read_text(encoding="utf-8"))
            self.base[key] = sample_form_data(schema, TODAY, **STEERING.get(step, {}))
        data = copy.deepcopy(self.base[key])
        if step == "assign_societies":
            data["assigned_societies"] = self.societies(case_index)
        return data


def form_of(task_spec: Any) -> str | None:
    return getattr(task_spec, "extensions", {}).get("properties", {}).get("formJsonSchemaFilename")


# -- cases and drivers -------------------------------------------------------------------------


@dataclass
class Case:
    index: int
    process: str
    county: str
    county_name: str
    city: str
    city_name: str
    kind: str
    stop_after: int | None = None  # completions after which the driver leaves the case running
    done: int = 0
    status: str = "new"
    outcome: str | None = None
    tasks: list[Any] = field(default_factory=list)  # engine: open TaskViews
    instance_id: uuid.UUID | None = None
    next_form: dict[str, Any] | None = None  # raw: the form for the READY task, prepared untimed

    def wants_more(self) -> bool:
        return self.status == "running" and (self.stop_after is None or self.done < self.stop_after)


class EngineDriver:
    """One engine command per committed transaction, as the CLI runs them (actor loaded inside).

    ``cache_actors`` keeps each Actor (plain data) after its first load: only for bulk storing.
    """

    def __init__(
        self, app: AppEngine, users: dict[tuple[str, str], str], payloads: Payloads, cache_actors: bool = False
    ) -> None:
        self.app = app
        self.users = users
        self.payloads = payloads
        self.actors: dict[str, Actor] | None = {} if cache_actors else None

    def actor(self, session: Session, username: str) -> Actor:
        if self.actors is None:
            return load_actor(session, username)
        if username not in self.actors:
            self.actors[username] = load_actor(session, username)
        return self.actors[username]

    def start(self, case: Case) -> float:
        starter = self.users[("city_sa", case.city)]
        data = {"county_code": case.county}
        began = time.perf_counter()
        with write_session(self.app.sessions) as session:
            view = self.app.start_instance(session, self.actor(session, starter), case.process, data)
        elapsed = time.perf_counter() - began
        case.instance_id, case.tasks, case.status, case.outcome = view.id, view.open_tasks, view.status, view.outcome
        return elapsed

    def complete(self, case: Case) -> float:
        task = case.tasks[0]
        username = self.users[(task.role, task.org_code)]
        data = self.payloads.form(case.index, task.step, task.form)
        began = time.perf_counter()
        with write_session(self.app.sessions) as session:
            view = self.app.complete_task(session, self.actor(session, username), task.id, data)
        elapsed = time.perf_counter() - began
        case.tasks, case.status, case.outcome = view.open_tasks, view.status, view.outcome
        case.done += 1
        return elapsed


class RawDriver:
    """Raw SpiffWorkflow: each completion is deserialize -> run -> serialize, state held in a dict."""

    def __init__(self, spec: Any, subprocess_specs: dict[str, Any], payloads: Payloads) -> None:
        self.spec = spec
        self.subprocess_specs = subprocess_specs
        self.payloads = payloads
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        operations = {
            s.operation_name
            for s in [spec, *subprocess_specs.values()]
            for s in s.task_specs.values()
            if getattr(s, "operation_name", None)
        }
        services = {name: fake_service for name in operations}  # any other operation the model calls
        self.script_engine = ScriptEngine(
            services={**services, "issue_approval": fake_issue_approval, "issue_pdf": fake_issue_pdf}
        )
        self.store: dict[int, str] = {}

    def start(self, case: Case) -> float:
        data = {
            "county_code": case.county,
            "county_name": case.county_name,
            "city_code": case.city,
            "city_name": case.city_name,
            "candidate_kind": case.kind,
        }
        began = time.perf_counter()
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs)
        workflow.script_engine = self.script_engine
        workflow.task_tree.data.update(data)
        workflow.do_engine_steps()
        self.store[case.index] = self.serializer.serialize_json(workflow)
        elapsed = time.perf_counter() - began
        self._prepare(case, workflow)
        return elapsed

    def complete(self, case: Case) -> float:
        form = case.next_form
        began = time.perf_counter()
        workflow = self.serializer.deserialize_json(self.store[case.index])
        workflow.script_engine = self.script_engine
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        variable = getattr(task.task_spec, "variable", None)  # spiffworkflow:variableName (multi-instance)
        if variable:
            task.set_data(**{variable: form})
        else:
            task.set_data(**form)
        task.run()
        workflow.do_engine_steps()
        self.store[case.index] = self.serializer.serialize_json(workflow)
        elapsed = time.perf_counter() - began
        case.done += 1
        self._prepare(case, workflow)
        return elapsed

    def _prepare(self, case: Case, workflow: BpmnWorkflow) -> None:
        """Untimed: note the case's status and build the form for its next READY task."""
        if workflow.is_completed():
            case.status = "completed"
            case.outcome = APPROVED if "approval" in workflow.data else "?"
            case.next_form = None
            return
        case.status = "running"
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        case.next_form = (
            self.payloads.form(case.index, task.task_spec.bpmn_id, form_of(task.task_spec)) if task else None
        )
        if task is None:
            case.status = "stuck"


def fake_service(*_args: Any, **_params: Any) -> dict[str, Any]:
    """Stands in, for raw SpiffWorkflow, for any service operation but issue_approval."""
    return {"ok": True}


def fake_issue_approval(data: dict[str, Any], term_years: int = 3) -> dict[str, Any]:
    return {
        "approval_no": "辽科协发〔2026〕1号",
        "approval_date": TODAY.isoformat(),
        "term_start": TODAY.isoformat(),
        "term_end": TODAY.replace(year=TODAY.year + int(term_years)).isoformat(),
    }


def fake_issue_pdf(data: dict[str, Any], kind: str) -> dict[str, Any]:
    """The rendering work of issue_pdf (the same PDF from the task data), without numbering or storage."""
    from engine.documents import render_document

    pdf = render_document(kind, data, TODAY, "辽科协发〔2026〕1号")
    return {"document_no": "辽科协发〔2026〕1号", "size": len(pdf)}


class ProfiledDriver:
    """Wraps a driver so that cProfile sees only its commands (not the other lanes of a phase)."""

    def __init__(self, driver: EngineDriver | RawDriver, profiler: cProfile.Profile) -> None:
        self.driver = driver
        self.profiler = profiler

    def start(self, case: Case) -> float:
        self.profiler.enable()
        try:
            return self.driver.start(case)
        finally:
            self.profiler.disable()

    def complete(self, case: Case) -> float:
        self.profiler.enable()
        try:
            return self.driver.complete(case)
        finally:
            self.profiler.disable()


@dataclass
class Lane:
    """Cases run by one driver, recorded in one Timings; ``expected`` completions set its share."""

    driver: EngineDriver | RawDriver | ProfiledDriver
    cases: list[Case]
    timings: Timings
    expected: float = 1.0


def _round_robin(cases: list[Case]) -> Iterable[Case]:
    active = [c for c in cases if c.wants_more()]
    while active:
        yield from active
        active = [c for c in active if c.wants_more()]


def drive(lanes: list[Lane], bar: tqdm | None = None, start: bool = True) -> None:
    """Start the cases, then complete one open task of each case in turn until every case stops.

    Several lanes run interleaved, each at the pace of its ``expected`` number of completions, so
    that two things compared (engine and raw, seq200 and seq10) share the same machine conditions.
    """
    if start:
        for group in zip_longest(*(lane.cases for lane in lanes)):
            for lane, case in zip(lanes, group, strict=True):
                if case is not None:
                    lane.timings.starts.append(lane.driver.start(case))
                    if bar is not None:
                        bar.update()
    streams = [iter(_round_robin(lane.cases)) for lane in lanes]
    done = [0] * len(lanes)
    live = set(range(len(lanes)))
    while live:
        i = min(live, key=lambda k: (done[k] / max(lanes[k].expected, 1), k))
        case = next(streams[i], None)
        if case is None:
            live.discard(i)
            continue
        lanes[i].timings.add_completion(case.done + 1, lanes[i].driver.complete(case))
        done[i] += 1
        if bar is not None:
            bar.update()


# -- database set-up ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    code: str
    name: str
    city: str
    city_name: str
    kind: str


@dataclass(frozen=True)
class Model:
    """The zone_creation files the engine deployed and raw SpiffWorkflow parses: the very same."""

    bpmn: Path
    dmn: Path
    forms_dir: Path
    source: str


def prepare_database(url: str, clock: FixedClock, workdir: Path) -> tuple[AppEngine, AppEngine, Model]:
    """Migrate, seed the demo data, deploy processes/ and bench/models/ (two engines, one database).

    The model is processes/zone_creation.bpmn as it is in the working tree. If processes/ does not
    deploy as a whole (another process being written), zone_creation and its DMN are deployed alone;
    if zone_creation itself does not deploy (being edited), the committed version (git HEAD, with its
    forms) is used, and the run says so.
    """
    app = build_engine(Settings(database_url=url), clock)
    upgrade_database(app.db)
    with write_session(app.sessions) as session:
        if session.scalar(select(func.count()).select_from(Instance)):
            raise SystemExit(
                f"{app.db.url.render_as_string()} already holds cases: give the benchmark an empty database"
            )
        seed_demo(session, START)
    app.db.dispose()
    staged = workdir / "processes"
    staged.mkdir(exist_ok=True)
    for source in (PROCESS_FILE, DECISION_FILE):
        shutil.copy(source, staged / source.name)
    committed = workdir / "head"
    attempts = [
        (Model(PROCESS_FILE, DECISION_FILE, FORMS_DIR, "working tree"), PROCESS_FILE.parent),
        (Model(staged / PROCESS_FILE.name, staged / DECISION_FILE.name, FORMS_DIR, "working tree, alone"), staged),
        (
            Model(
                committed / "processes" / PROCESS_FILE.name,
                committed / "processes" / DECISION_FILE.name,
                committed / "forms",
                "git HEAD",
            ),
            committed / "processes",
        ),
    ]
    for model, processes_dir in attempts:
        if model.source == "git HEAD":
            extract_committed(committed)
        app = build_engine(Settings(database_url=url, processes_dir=processes_dir, forms_dir=model.forms_dir), clock)
        try:
            with write_session(app.sessions) as session:
                app.deploy(session, deployed_by="bench")
            break
        except SpecInvalid as exc:
            app.db.dispose()
            print(f"NOTE: {processes_dir} ({model.source}) does not deploy: {exc.message}; first: {exc.details[0]}")
    else:
        raise SystemExit("zone_creation does not deploy, not even at git HEAD")
    seq = build_engine(Settings(database_url=url, processes_dir=MODELS_DIR, forms_dir=MODELS_DIR / "forms"), clock)
    with write_session(seq.sessions) as session:
        seq.deploy(session, deployed_by="bench")
    return app, seq, model


def extract_committed(target: Path) -> None:
    """processes/zone_creation.bpmn, its DMN and forms/ as committed (git HEAD), into ``target``."""
    paths = [f"processes/{PROCESS_FILE.name}", f"processes/{DECISION_FILE.name}", "forms"]
    archive = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", "HEAD", *paths],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def real_candidates(session: Session) -> list[Candidate]:
    """The real counties, districts and parks of the 14 cities, with their cities."""
    city = select(OrgUnit.code, OrgUnit.name).subquery()
    rows = session.execute(
        select(OrgUnit.code, OrgUnit.name, OrgUnit.parent_code, city.c.name, OrgUnit.kind)
        .join(city, city.c.code == OrgUnit.parent_code)
        .where(OrgUnit.kind.in_(CANDIDATE_KINDS), OrgUnit.parent_code.like("21%"))
        .order_by(OrgUnit.code)
    ).all()
    return [Candidate(code, name, parent, parent_name, kind) for code, name, parent, parent_name, kind in rows]


class CandidatePool:
    """Hands out each candidate once, the real ones first, then parks of made-up bench cities.

    A zone_creation case may run only once at a time per candidate, and an approval starts the
    candidate's follow-on case, so no candidate is used for two benchmark cases. Real Liaoning has
    110 candidates; the rest are parks of made-up cities coded 9xxx00 (50 parks each), each city with
    its three city users. Keeping them in their own cities keeps the real users' inboxes at their
    real size while the tables grow.
    """

    def __init__(self, app: AppEngine, users: dict[tuple[str, str], str], real: list[Candidate]) -> None:
        self.app = app
        self.users = users
        self.real = real
        self.bench: list[Candidate] = []
        self.next_real = 0
        self.next_bench = 0

    def take(self, count: int, real: bool = True, county_users: bool = True) -> list[Candidate]:
        taken = []
        while len(taken) < count:
            if real and self.next_real < len(self.real):
                taken.append(self.real[self.next_real])
                self.next_real += 1
                continue
            if self.next_bench == len(self.bench):
                self._add_cities(count - len(taken))
            taken.append(self.bench[self.next_bench])
            self.next_bench += 1
        if county_users:
            self.add_county_users(taken)
        return taken

    def add_county_users(self, found: list[Candidate]) -> None:
        with write_session(self.app.sessions) as session:
            add_users(session, [role for c in found for role in roles_for(c)])
            self.users.update(user_map(session))

    def _add_cities(self, parks: int) -> None:
        first = len(self.bench) // PARKS_PER_BENCH_CITY + 1
        units = []
        for k in range(first, first + math.ceil(parks / PARKS_PER_BENCH_CITY)):
            city, city_name = f"{BENCH_CITY_PREFIX}{k:03d}00", f"基准测试市{k:03d}"
            units.append(OrgUnit(code=city, name=city_name, kind="city", parent_code=PROVINCE_CODE))
            for j in range(1, PARKS_PER_BENCH_CITY + 1):
                code, name = f"{BENCH_CITY_PREFIX}{k:03d}P{j:02d}", f"基准测试园区{k:03d}-{j:02d}"
                units.append(OrgUnit(code=code, name=name, kind="park", parent_code=city))
                self.bench.append(Candidate(code, name, city, city_name, "park"))
        with write_session(self.app.sessions) as session:
            session.add_all(units)
            session.flush()
            cities = [u.code for u in units if u.kind == "city"]
            add_users(session, [(role, city) for city in cities for role in CITY_ROLES])
            self.users.update(user_map(session))


def add_users(session: Session, wanted: Iterable[tuple[str, str]]) -> int:
    """Give every (role, org) in ``wanted`` that has no user a bench user (no usable password)."""
    have = set(session.execute(select(RoleAssignment.role, RoleAssignment.org_code)).tuples())
    added = 0
    for role, org in sorted(set(wanted) - have):
        user = User(
            username=f"bench_{role}_{org}".lower(),
            display_name=f"基准测试 {role} {org}",
            password_hash="!",
            active=True,
            created_at=START,
        )
        user.roles.append(RoleAssignment(role=role, org_code=org))
        session.add(user)
        added += 1
    session.flush()
    return added


def user_map(session: Session) -> dict[tuple[str, str], str]:
    """(role, org) -> a user holding it (the first by name: shenyang_sa, s001, province_office, ...)."""
    rows = session.execute(
        select(RoleAssignment.role, RoleAssignment.org_code, User.username)
        .join(User, User.id == RoleAssignment.user_id)
        .order_by(User.username.desc())
    ).all()
    return {(role, org): username for role, org, username in rows}


def roles_for(candidate: Candidate) -> list[tuple[str, str]]:
    """The roles a zone_creation case of ``candidate`` needs, besides 省科协 and the societies."""
    return [(role, candidate.city) for role in CITY_ROLES] + [(role, candidate.code) for role in COUNTY_ROLES]


def make_cases(found: list[Candidate], process: str, first_index: int = 0) -> list[Case]:
    """One case per candidate."""
    return [Case(first_index + i, process, c.code, c.name, c.city, c.city_name, c.kind) for i, c in enumerate(found)]


# -- measurements ------------------------------------------------------------------------------


def value_bytes(column: Any, dialect: str) -> Any:
    """Bytes of a column's stored value (SQLite: as a blob; PostgreSQL: as text)."""
    if dialect == "sqlite":
        return func.coalesce(func.length(cast(column, LargeBinary)), 0)
    return func.coalesce(func.octet_length(cast(column, Text)), 0)


def stored_bytes(app: AppEngine, instance_ids: list[uuid.UUID]) -> dict[str, float]:
    """Bytes of the cases' rows: the instance row (state included), its history events, its open tasks."""
    dialect = app.db.dialect.name
    totals: dict[str, float] = {}
    with read_session(app.sessions) as session:
        for label, model, key in (
            ("instance", Instance, Instance.id),
            ("history", HistoryEvent, HistoryEvent.instance_id),
            ("open_task", OpenTask, OpenTask.instance_id),
        ):
            columns = [value_bytes(c, dialect) for c in model.__table__.columns]
            total = 0
            for first in range(0, len(instance_ids), 500):
                chunk = instance_ids[first : first + 500]
                total += session.scalar(select(func.sum(sum(columns[1:], columns[0]))).where(key.in_(chunk))) or 0
            totals[label] = total
        totals["state"] = sum(
            session.scalar(select(func.sum(value_bytes(Instance.state, dialect))).where(Instance.id.in_(chunk))) or 0
            for chunk in (instance_ids[i : i + 500] for i in range(0, len(instance_ids), 500))
        )
    return totals


def count_cases(app: AppEngine) -> int:
    with read_session(app.sessions) as session:
        return session.scalar(select(func.count()).select_from(Instance)) or 0


def sqlite_used_bytes(app: AppEngine) -> int | None:
    if app.db.dialect.name != "sqlite":
        return None
    with app.db.connect() as connection:
        page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        free = connection.exec_driver_sql("PRAGMA freelist_count").scalar()
    return (pages - free) * page_size


def measure_inbox(app: AppEngine, username: str, samples: int) -> dict[str, Any]:
    """engine.list_tasks inside read_session (the actor loaded once, as a web session holds it)."""
    with read_session(app.sessions) as session:
        actor = load_actor(session, username)
    result: dict[str, Any] = {"user": username}

    def sample(query: Callable[[Session], int]) -> tuple[int, list[float]]:
        rows = 0
        for _ in range(5):
            with read_session(app.sessions) as session:
                rows = query(session)
        times = []
        for _ in range(samples):
            began = time.perf_counter()
            with read_session(app.sessions) as session:
                query(session)
            times.append(time.perf_counter() - began)
        return rows, times

    rows, times = sample(lambda s: len(app.list_tasks(s, actor)))
    result.update(rows=rows, p50=pct(times, 50), p95=pct(times, 95))
    try:  # the paged 待办 query of the web inbox, where the engine has it
        from engine.inbox import open_tasks
    except ImportError:
        return result
    rows, times = sample(lambda s: len(open_tasks(app, s, actor).items))
    result.update(page_rows=rows, page_p50=pct(times, 50), page_p95=pct(times, 95))
    return result


class ColdCache:
    """Make the engine deserialize the case state on every command (no live workflows kept).

    Sets an attribute on the engine's store object only; the engine code is untouched.
    """

    def __init__(self, app: AppEngine) -> None:
        self.store = getattr(app, "store", None)
        self.available = self.store is not None and hasattr(self.store, "LIVE_CACHE_SIZE")

    def __enter__(self) -> ColdCache:
        if self.available:
            self.store.LIVE_CACHE_SIZE = 0
            live = getattr(self.store, "_live", None)
            if hasattr(live, "clear"):
                live.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.available and "LIVE_CACHE_SIZE" in vars(self.store):
            del self.store.LIVE_CACHE_SIZE


def parse_raw(bpmn: Path, process_id: str, dmn: Path | None = None) -> tuple[Any, dict[str, Any]]:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_files([str(bpmn)])
    if dmn is not None:
        parser.add_dmn_files([str(dmn)])
    return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)


PROFILE_GROUPS = (
    ("SQLAlchemy", "/sqlalchemy/"),
    ("sqlite3 / psycopg (the database calls)", "sqlite3.|psycopg"),
    ("SpiffWorkflow", "/SpiffWorkflow/"),
    ("jsonschema (+ referencing, rpds)", "/jsonschema|/referencing/|rpds"),
    ("RestrictedPython", "/RestrictedPython/"),
    ("json (encode / decode)", "/json/|_json."),
    ("the engine's own code", f"{PROJECT_ROOT / 'engine'}{os.sep}"),
    ("Python's standard library (uuid, copy, datetime, ...)", r"/python3\.\d+/(?!site-packages)"),
    ("built-in functions and methods (dict.get, isinstance, ...)", "^~:"),
)


def time_by_package(stats: pstats.Stats) -> list[tuple[str, float, float]]:
    """Own time (tottime) per package: (package, seconds, share of the total)."""
    totals: Counter[str] = Counter()
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{name}"
        group = next((label for label, pattern in PROFILE_GROUPS if re.search(pattern, where)), "other")
        totals[group] += own
    total = sum(totals.values()) or 1.0
    return [(group, seconds, seconds / total) for group, seconds in totals.most_common()]


def top_functions(profile: cProfile.Profile, limit: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    print("Own time by package:", file=out)
    for group, seconds, share in time_by_package(stats):
        print(f"  {group:<58} {seconds:7.2f} s  {share:6.1%}", file=out)
    stats.sort_stats("tottime").print_stats(limit)
    print("The engine's own functions, by cumulative time:", file=out)
    stats.sort_stats("cumulative").print_stats(re.escape(f"{PROJECT_ROOT / 'engine'}{os.sep}"), limit)
    return out.getvalue()


# -- the run -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=None, help="zone_creation cases driven to approval (200)")
    parser.add_argument("--stored", type=int, default=None, help="cases stored for the inbox query (10000)")
    parser.add_argument("--database", choices=["sqlite"], default="sqlite", help="a temporary SQLite file, WAL mode")
    parser.add_argument("--database-url", help="use this EMPTY database instead (e.g. postgresql+psycopg://...)")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run (~40 s)")
    parser.add_argument("--seq10", type=int, default=None, help="seq10 cases (20)")
    parser.add_argument("--seq200", type=int, default=None, help="seq200 cases (5)")
    parser.add_argument("--samples", type=int, default=200, help="inbox query samples per user (200)")
    parser.add_argument("--store-budget", type=float, default=180.0, help="seconds allowed for storing cases")
    parser.add_argument("--no-cold", action="store_true", help="skip the informational cold-cache runs")
    parser.add_argument(
        "--profile", choices=["engine", "seq200", "raw", "store"], help="cProfile one phase, print top functions"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary SQLite database")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = parser.parse_args(argv)
    quick = args.quick
    args.instances = args.instances if args.instances is not None else (20 if quick else 200)
    args.stored = args.stored if args.stored is not None else (500 if quick else 10_000)
    args.seq10 = args.seq10 if args.seq10 is not None else (5 if quick else 20)
    args.seq200 = args.seq200 if args.seq200 is not None else (1 if quick else 5)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bars = not args.no_progress
    figures: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    profiler = cProfile.Profile() if args.profile else None
    workdir = Path(tempfile.mkdtemp(prefix="demozone-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    began = time.perf_counter()
    try:
        return run(args, url, workdir, figures, profiler, bars, began)
    finally:
        if args.keep and not args.database_url:
            print(f"database kept: {url}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Context:
    args: argparse.Namespace
    app: AppEngine
    seq_app: AppEngine
    users: dict[tuple[str, str], str]
    payloads: Payloads
    real: list[Candidate]
    pool: CandidatePool
    model: Model
    profiler: cProfile.Profile | None
    bars: bool

    def engine(
        self, app: AppEngine | None = None, profile: bool = False, cache_actors: bool = False
    ) -> EngineDriver | ProfiledDriver:
        driver = EngineDriver(app or self.app, self.users, self.payloads, cache_actors)
        return ProfiledDriver(driver, self.profiler) if profile and self.profiler else driver

    def raw(self, spec: tuple[Any, dict[str, Any]], profile: bool = False) -> RawDriver | ProfiledDriver:
        driver = RawDriver(*spec, self.payloads)
        return ProfiledDriver(driver, self.profiler) if profile and self.profiler else driver


def run(
    args: argparse.Namespace,
    url: str,
    workdir: Path,
    figures: dict[str, Any],
    profiler: cProfile.Profile | None,
    bars: bool,
    began: float,
) -> int:
    write_models([10, 200])
    register_fonts()  # once per process, untimed: whichever side typeset first would otherwise pay ~0.4 s for both
    app, seq_app, model = prepare_database(url, FixedClock(START), workdir)
    with write_session(app.sessions) as session:
        real = real_candidates(session)
        add_users(session, [("province_office", PROVINCE_CODE)])
        users = user_map(session)
    pool = CandidatePool(app, users, real)
    payloads = Payloads([model.forms_dir, MODELS_DIR / "forms"])
    ctx = Context(args, app, seq_app, users, payloads, real, pool, model, profiler, bars)
    print(
        f"demozone engine benchmark — SpiffWorkflow {getattr(SpiffWorkflow, '__version__', '?')}, "
        f"Python {sys.version.split()[0]}, database {app.db.dialect.name} "
        f"({'temporary file, WAL mode' if args.database_url is None else 'given URL'})"
    )
    print(
        f"model zone_creation.bpmn ({model.source}); {len(real)} candidate counties/districts/parks in 14 cities; "
        f"clock fixed at {START.isoformat()}; engine and raw commands interleaved one by one"
    )
    print(
        f"{os.cpu_count()} CPUs; load average at the start {load_average()} (other work on the machine skews figures)"
    )
    figures.update(zone_phase(ctx))
    figures["long"] = long_phase(ctx)
    store = store_cases(ctx)
    figures["store"] = store.pop("store")
    figures["inbox"] = store
    summary(ctx, figures, time.perf_counter() - began)
    if profiler is not None:
        print(f"\nProfile of the {args.profile} commands (the timings above include the profiler's overhead):")
        print(top_functions(profiler))
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    app.db.dispose()
    seq_app.db.dispose()
    return 0


def zone_phase(ctx: Context) -> dict[str, Any]:
    """1 and 2: zone_creation to approval, engine and raw interleaved; the engine's stored bytes."""
    args, app = ctx.args, ctx.app
    print(
        f"\n1-2. zone_creation to approval, {args.instances} cases: engine commands (one committed transaction each, "
        "actor loaded inside, as the CLI runs them)\n"
        "   vs raw SpiffWorkflow (deserialize_json, spec embedded -> READY task -> set_data -> run -> "
        "do_engine_steps -> serialize_json; no database)"
    )
    spec = parse_raw(ctx.model.bpmn, ZONE, ctx.model.dmn)
    found = ctx.pool.take(args.instances)
    engine_cases = make_cases(found, ZONE)
    raw_cases = make_cases(found, ZONE)
    engine_driver = ctx.engine(profile=args.profile == "engine")
    raw_driver = ctx.raw(spec, profile=args.profile == "raw")
    engine_t, raw_t = Timings(), Timings()
    used_before = sqlite_used_bytes(app)
    cases_before = count_cases(app)
    gc.collect()
    with progress(args.instances * 22, "zone_creation engine+raw", ctx.bars) as bar:
        drive([Lane(engine_driver, engine_cases, engine_t), Lane(raw_driver, raw_cases, raw_t)], bar)
    used_after = sqlite_used_bytes(app)
    n = len(engine_cases)
    follow_on = count_cases(app) - cases_before - n
    approved = sum(c.outcome == APPROVED for c in engine_cases)
    raw_ok = sum(c.outcome == APPROVED for c in raw_cases)
    raw_store = (raw_driver.driver if isinstance(raw_driver, ProfiledDriver) else raw_driver).store
    raw_size = mean([len(raw_store[c.index].encode()) for c in raw_cases])
    print_timings("engine", engine_t, n)
    print_timings("raw SpiffWorkflow", raw_t, n)
    for label, ok in (("engine", approved), ("raw", raw_ok)):
        if ok != n:
            print(f"  WARNING: only {ok} of {n} {label} cases ended {APPROVED}")
    zone_ratio = ratio(engine_t.rate(), raw_t.rate())
    print(f"  ratio engine/raw (completions/s): {zone_ratio:.2f}x")

    sizes = stored_bytes(app, [c.instance_id for c in engine_cases])
    per_case = (sizes["instance"] + sizes["history"] + sizes["open_task"]) / n
    line = (
        f"  stored per finished case: {per_case / 1024:.1f} KiB = instance row {sizes['instance'] / n / 1024:.1f} "
        f"(state {sizes['state'] / n / 1024:.1f}) + history events {sizes['history'] / n / 1024:.1f} "
        f"+ open tasks {sizes['open_task'] / n / 1024:.1f} KiB"
    )
    file_per_case = None
    if used_before is not None and used_after is not None:
        file_per_case = (used_after - used_before) / n
        line += f"; SQLite file +{file_per_case / 1024:.1f} KiB per case (pages and indexes"
        line += f", and the {follow_on} follow-on cases the approvals started)" if follow_on else ")"
    print(line)
    print(f"  raw: final JSON per finished case {raw_size / 1024:.1f} KiB (spec embedded)")
    result: dict[str, Any] = {
        "engine": {
            **engine_t.summary(),
            "cases": n,
            "approved": approved,
            "bytes_per_case": per_case,
            "state_bytes_per_case": sizes["state"] / n,
            "history_bytes_per_case": sizes["history"] / n,
            "file_bytes_per_case": file_per_case,
        },
        "raw": {**raw_t.summary(), "cases": n, "approved": raw_ok, "json_bytes_per_case": raw_size},
        "ratio_engine_raw": zone_ratio,
    }

    cold = ColdCache(app)
    if args.no_cold or not cold.available:
        return result
    count = max(10, min(args.instances, len(ctx.real)) // 2)
    found = ctx.pool.take(count)
    cold_t, cold_raw_t = Timings(), Timings()
    gc.collect()
    with cold, progress(count * 22, "zone_creation cold engine+raw", ctx.bars) as bar:
        drive(
            [
                Lane(ctx.engine(), make_cases(found, ZONE, first_index=100_000), cold_t),
                Lane(ctx.raw(spec), make_cases(found, ZONE, first_index=100_000), cold_raw_t),
            ],
            bar,
        )
    print_timings("engine, cache off (informational)", cold_t, count)
    cold_ratio = ratio(cold_t.rate(), cold_raw_t.rate())
    print(
        f"  ratio engine/raw with the engine's live-workflow cache off (every command deserializes the case): "
        f"{cold_ratio:.2f}x (raw alongside: {cold_raw_t.rate():.0f}/s)"
    )
    result["engine_cold"] = cold_t.summary()
    result["ratio_engine_cold_raw"] = cold_ratio
    return result


def long_phase(ctx: Context) -> dict[str, Any]:
    """3: one completion late in seq200 against one in seq10, measured side by side."""
    args = ctx.args
    n10, n200 = args.seq10, args.seq200
    print(
        f"\n3. long cases: a completion among the last {LAST_STEPS} of seq200 vs one of seq10 "
        f"({n200} x seq200 driven to step {200 - LAST_STEPS}, then its last {LAST_STEPS} steps interleaved with "
        f"{n10} x seq10)"
    )
    raw_specs = {pid: parse_raw(MODELS_DIR / f"{pid}.bpmn", pid) for pid in ("seq10", "seq200")}
    runs: list[tuple[str, Callable[[str], Any], ColdCache | None]] = [
        ("engine", lambda pid: ctx.engine(ctx.seq_app, profile=args.profile == "seq200" and pid == "seq200"), None)
    ]
    cold = ColdCache(ctx.seq_app)
    if not args.no_cold and cold.available:
        runs.append(("engine, cache off", lambda pid: ctx.engine(ctx.seq_app), cold))
    runs.append(("raw SpiffWorkflow", lambda pid: ctx.raw(raw_specs[pid]), None))
    result = {}
    for number, (label, make_driver, cache) in enumerate(runs):
        t10, t200 = Timings(), Timings()
        c10 = make_cases(ctx.pool.take(n10, county_users=False), "seq10", first_index=200_000 + number * 1000)
        c200 = make_cases(ctx.pool.take(n200, county_users=False), "seq200", first_index=300_000 + number * 1000)
        for case in c200:
            case.stop_after = 200 - LAST_STEPS
        gc.collect()
        with cache or contextlib.nullcontext(), progress(n10 * 11 + n200 * 201, f"{label} seq", ctx.bars) as bar:
            d200, d10 = make_driver("seq200"), make_driver("seq10")
            drive([Lane(d200, c200, t200)], bar)
            for case in c200:
                case.stop_after = None
            for case in c10:
                t10.starts.append(d10.start(case))
                bar.update()
            lanes = [Lane(d200, c200, t200, expected=n200 * LAST_STEPS), Lane(d10, c10, t10, expected=n10 * 10)]
            drive(lanes, bar, start=False)
        late = t200.window(201 - LAST_STEPS, 200)
        short = t10.completions
        unfinished = sum(c.status != "completed" for c in c10 + c200)
        row = {
            "seq10_mean_ms": mean(short) * 1000,
            "seq10_p50_ms": pct(short, 50) * 1000,
            "seq200_last_mean_ms": mean(late) * 1000,
            "seq200_last_p50_ms": pct(late, 50) * 1000,
            "seq200_first_p50_ms": pct(t200.window(1, LAST_STEPS), 50) * 1000,
            "ratio_mean": ratio(mean(late), mean(short)),
            "ratio_p50": ratio(pct(late, 50), pct(short, 50)),
        }
        result[label] = row
        print(
            f"  {label:<20} seq10 p50 {row['seq10_p50_ms']:.2f} ms (mean {row['seq10_mean_ms']:.2f})   "
            f"seq200 steps {201 - LAST_STEPS}-200 p50 {row['seq200_last_p50_ms']:.2f} ms "
            f"(mean {row['seq200_last_mean_ms']:.2f}; steps 1-{LAST_STEPS} p50 {row['seq200_first_p50_ms']:.2f})   "
            f"200/10: p50 {row['ratio_p50']:.2f}x, mean {row['ratio_mean']:.2f}x"
            + (f"   WARNING: {unfinished} cases unfinished" if unfinished else "")
        )
    return result


def store_cases(ctx: Context) -> dict[str, Any]:
    """4: bring the database to ``--stored`` cases through engine starts, then time the inbox queries."""
    args, app = ctx.args, ctx.app
    with read_session(app.sessions) as session:
        already = session.scalar(select(func.count()).select_from(Instance)) or 0
    # One running case per real candidate, left at each step of the path in turn (a real candidate
    # used above has finished its case, so it may start another).
    live = make_cases(ctx.real, ZONE, first_index=400_000)
    for i, case in enumerate(live):
        case.stop_after = i % 9
    ctx.pool.add_county_users(ctx.real)
    filler_count = max(0, args.stored - already - len(live))
    found = ctx.pool.take(filler_count, real=False, county_users=False)
    filler = make_cases(found, ZONE, first_index=500_000)
    advanced = filler[:: max(1, round(1 / ADVANCED_FILLER_SHARE))]
    for i, case in enumerate(advanced):
        case.stop_after = 9 if i % 2 else 6  # 省科协 assigns the societies / decides
    ctx.pool.add_county_users([c for c in found if c.code in {case.county for case in advanced}])
    cities = sorted({c.city for c in found})
    print(
        f"\n4. inbox query with {args.stored} cases stored: {already} so far, plus {len(live)} running cases on the "
        f"real candidates (left at every step in turn) and {filler_count} started in {len(cities)} made-up bench "
        f"cities ({len(advanced)} of them moved on to 省科协's steps)"
    )
    driver = ctx.engine()
    filler_driver = ctx.engine(profile=args.profile == "store", cache_actors=True)
    live_t, filler_t = Timings(), Timings()
    budget_hit = False
    wall = time.perf_counter()
    with progress(len(live) * 5 + filler_count + len(advanced) * 8, "storing cases", ctx.bars) as bar:
        drive([Lane(driver, live, live_t)], bar)
        for case in filler:
            if time.perf_counter() - wall > args.store_budget:
                budget_hit = True
                break
            filler_t.starts.append(filler_driver.start(case))
            bar.update()
        drive([Lane(driver, [c for c in advanced if c.instance_id is not None], live_t)], bar, start=False)
    wall = time.perf_counter() - wall
    with read_session(app.sessions) as session:
        stored = session.scalar(select(func.count()).select_from(Instance)) or 0
        running = session.scalar(select(func.count()).select_from(Instance).where(Instance.status == "running")) or 0
        open_rows = session.scalar(select(func.count()).select_from(OpenTask)) or 0
    starts = filler_t.starts
    tenth = max(1, len(starts) // 10)
    print(
        f"  stored {stored} cases ({running} running, {open_rows} open tasks) in {wall:.1f} s; "
        f"{len(starts)} filler starts (actor cached): p50 {ms(pct(starts, 50))} ms, p95 {ms(pct(starts, 95))} ms "
        f"({per_second(len(starts), sum(starts)):.0f}/s; first tenth p50 {ms(pct(starts[:tenth], 50))} ms, "
        f"last tenth p50 {ms(pct(starts[-tenth:], 50))} ms)"
    )
    if budget_hit:
        print(
            f"  NOTE: storing stopped at the {args.store_budget:.0f} s budget (--store-budget): the inbox figures "
            f"are for {stored} stored cases, not {args.stored}"
        )
    result: dict[str, Any] = {
        "store": {
            "stored": stored,
            "running": running,
            "open_tasks": open_rows,
            "wall_s": wall,
            "start_p50_ms": pct(starts, 50) * 1000,
            "start_p95_ms": pct(starts, 95) * 1000,
            "budget_hit": budget_hit,
        },
    }
    gc.collect()
    measured = [("city", ctx.users[("city_sa", "210100")]), ("province", ctx.users[("province_office", PROVINCE_CODE)])]
    if cities:  # informational: the 市科协 of a bench city, with up to 50 cases in its inbox
        busiest = Counter(c.city for c in found).most_common(1)[0][0]
        measured.append(("bench_city", ctx.users[("city_sa", busiest)]))
    for key, username in measured:
        r = result[key] = measure_inbox(app, username, args.samples)
        line = f"  {username:<22} engine.list_tasks: {r['rows']:>4} tasks  p50 {ms(r['p50'])} ms  p95 {ms(r['p95'])} ms"
        if "page_rows" in r:
            line += (
                f"   | engine.inbox.open_tasks, page 1: {r['page_rows']:>2} rows  p50 {ms(r['page_p50'])} ms  "
                f"p95 {ms(r['page_p95'])} ms"
            )
        print(line)
    return result


def summary(ctx: Context, figures: dict[str, Any], total: float) -> None:
    args = ctx.args
    engine, raw, long, inbox = figures["engine"], figures["raw"], figures["long"], figures["inbox"]
    stored = figures["store"]["stored"]
    short_store = stored < args.stored
    zone_ratio = figures["ratio_engine_raw"]
    long_ratio = long["engine"]["ratio_p50"]
    rows = [
        ("engine/raw completions/s", f"{zone_ratio:.2f}x", f">= {GOALS['ratio']:.1f}x", zone_ratio >= GOALS["ratio"]),
        (
            f"inbox p95, {inbox['city']['user']} ({stored} stored)",
            f"{ms(inbox['city']['p95'])} ms",
            f"<= {GOALS['inbox_ms']:.0f} ms",
            inbox["city"]["p95"] * 1000 <= GOALS["inbox_ms"],
        ),
        (
            f"inbox p95, {inbox['province']['user']} ({stored} stored)",
            f"{ms(inbox['province']['p95'])} ms",
            f"<= {GOALS['inbox_ms']:.0f} ms",
            inbox["province"]["p95"] * 1000 <= GOALS["inbox_ms"],
        ),
        (
            "seq200/seq10 cost per completion (p50)",
            f"{long_ratio:.2f}x",
            f"<= {GOALS['long_ratio']:.1f}x",
            long_ratio <= GOALS["long_ratio"],
        ),
    ]
    print(f"\nSummary ({total:.0f} s in all; load average now {load_average()})")
    if args.profile:
        print(f"  NOTE: --profile {args.profile} slowed those commands down: ratios from this run are not valid")
    print(f"  {'goal':<46} {'figure':>9}  {'target':<8} result")
    for i, (name, figure, target, ok) in enumerate(rows):
        verdict = "PASS" if ok else "MISS"
        if short_store and i in (1, 2):
            verdict += f" (only {stored} of {args.stored} cases stored)"
        print(f"  {name:<46} {figure:>9}  {target:<8} {verdict}")
    info = [
        (
            "engine completions/s (complete p50 / p95)",
            f"{engine['completions_per_s']:.0f}/s "
            f"({engine['complete_p50_ms']:.2f} / {engine['complete_p95_ms']:.2f} ms)",
        ),
        (
            "raw completions/s (complete p50 / p95)",
            f"{raw['completions_per_s']:.0f}/s ({raw['complete_p50_ms']:.2f} / {raw['complete_p95_ms']:.2f} ms)",
        ),
        ("engine start p50 / p95", f"{engine['start_p50_ms']:.2f} / {engine['start_p95_ms']:.2f} ms"),
        (
            "stored bytes per finished case",
            f"{engine['bytes_per_case'] / 1024:.1f} KiB (raw JSON {raw['json_bytes_per_case'] / 1024:.1f} KiB)",
        ),
    ]
    if "ratio_engine_cold_raw" in figures:
        info.append(("engine/raw, engine cache off", f"{figures['ratio_engine_cold_raw']:.2f}x"))
    if "engine, cache off" in long:
        info.append(("seq200/seq10, engine cache off (p50)", f"{long['engine, cache off']['ratio_p50']:.2f}x"))
    info.append(("seq200/seq10, raw SpiffWorkflow (p50)", f"{long['raw SpiffWorkflow']['ratio_p50']:.2f}x"))
    print("  for information:")
    for name, figure in info:
        print(f"  {name:<46} {figure}")
    figures["summary"] = [{"goal": n, "figure": f, "target": t, "pass": ok} for n, f, t, ok in rows]
    figures["total_s"] = total


if __name__ == "__main__":
    sys.exit(main())

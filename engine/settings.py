"""Engine settings, read once from the environment and passed around explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "sqlite:///instance/demozone.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    processes_dir: Path = PROJECT_ROOT / "processes"
    forms_dir: Path = PROJECT_ROOT / "forms"
    fixed_now: datetime | None = None
    document_rendering: str = "inline"  # when issued PDFs are rendered: see engine/document_rendering.py

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from DEMOZONE_* variables; explicit overrides win."""
        values: dict[str, object] = {
            "database_url": os.environ.get("DEMOZONE_DATABASE_URL", DEFAULT_DATABASE_URL),
        }
        if os.environ.get("DEMOZONE_PROCESSES_DIR"):
            values["processes_dir"] = Path(os.environ["DEMOZONE_PROCESSES_DIR"])
        if os.environ.get("DEMOZONE_FORMS_DIR"):
            values["forms_dir"] = Path(os.environ["DEMOZONE_FORMS_DIR"])
        if os.environ.get("DEMOZONE_DOCUMENT_RENDERING"):
            values["document_rendering"] = os.environ["DEMOZONE_DOCUMENT_RENDERING"]
        if os.environ.get("DEMOZONE_NOW"):
            from engine.clock import parse_instant

            values["fixed_now"] = parse_instant(os.environ["DEMOZONE_NOW"])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

"""The scenario development set and the bundled example are well-formed and cover what they promise.

Every ``tests/scenarios/<nn>-<slug>/scenario.yaml`` must load into :class:`ScenarioSpec`, name categories
from :class:`core.models.Category`, ship at least one log file of a sane size, and name a suspect that
actually appears in its data. The set as a whole must keep its coverage promises.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.models import Category

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"
EXAMPLE = REPO / "examples" / "checkout-incident"

MIN_SCENARIOS = 30
MIN_CATEGORIES = 18
MIN_HIDDEN_ORIGIN = 8
MIN_LINES, MAX_LINES = 200, 3000
MAX_BYTES = 1_100_000
NAME_RE = re.compile(r"^\d{2}-[a-z0-9]+(?:-[a-z0-9]+)*$")
NON_LOG_SUFFIXES = {".yaml", ".yml", ".csv", ".md"}


class ScenarioExpected(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suspect: str = Field(min_length=1)
    suspect_alternates: list[str] = Field(default_factory=list)
    category: Category
    category_alternates: list[Category] = Field(default_factory=list)

    @field_validator("suspect", "suspect_alternates")
    @classmethod
    def _lower_case(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        for name in names:
            if name != name.lower() or name.strip() != name or not name:
                raise ValueError(f"suspect names must be lower-case and trimmed, got {name!r}")
        return value

    @field_validator("category", "category_alternates")
    @classmethod
    def _not_unknown(cls, value: Category | list[Category]) -> Category | list[Category]:
        cats = [value] if isinstance(value, Category) else value
        if Category.UNKNOWN in cats:
            raise ValueError("'unknown' is not a ground-truth category")
        return value


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=10)
    description: str = Field(min_length=80)
    query: str | None = None
    expected: ScenarioExpected
    stack: list[str] = Field(min_length=1)
    multi_service: bool
    origin_not_loudest: bool


def scenario_dirs() -> list[Path]:
    return sorted(p for p in SCENARIOS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def load_spec(folder: Path) -> ScenarioSpec:
    raw = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))
    return ScenarioSpec.model_validate(raw)


def log_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in NON_LOG_SUFFIXES)


def metric_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".csv")


def line_count(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


DIRS = scenario_dirs()


def test_scenario_folder_exists_and_is_not_empty() -> None:
    assert SCENARIOS.is_dir()
    assert DIRS, "no scenario folders under tests/scenarios"


@pytest.mark.parametrize("folder", DIRS, ids=[d.name for d in DIRS])
def test_scenario_yaml_is_valid(folder: Path) -> None:
    assert NAME_RE.match(folder.name), f"{folder.name}: folder name must look like '07-some-slug'"
    assert (folder / "scenario.yaml").is_file(), f"{folder.name}: scenario.yaml missing"
    try:
        spec = load_spec(folder)
    except ValidationError as exc:
        pytest.fail(f"{folder.name}/scenario.yaml: {exc}")
    alternates = set(spec.expected.category_alternates)
    assert spec.expected.category not in alternates, f"{folder.name}: category repeated in alternates"
    assert spec.expected.suspect not in spec.expected.suspect_alternates, f"{folder.name}: suspect repeated"
    if spec.origin_not_loudest:
        assert spec.multi_service, f"{folder.name}: origin_not_loudest needs more than one service"


@pytest.mark.parametrize("folder", DIRS, ids=[d.name for d in DIRS])
def test_scenario_has_logs_of_sane_size(folder: Path) -> None:
    logs = log_files(folder)
    assert logs, f"{folder.name}: no log file"
    lines = sum(line_count(p) for p in logs)
    assert MIN_LINES <= lines <= MAX_LINES, f"{folder.name}: {lines} log lines, want {MIN_LINES}..{MAX_LINES}"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= MAX_BYTES, f"{folder.name}: {size} bytes, keep each scenario under ~1 MB"
    for p in logs:
        text = p.read_text(encoding="utf-8")
        assert text.endswith("\n"), f"{folder.name}/{p.name}: last line has no newline"
        assert "\r" not in text, f"{folder.name}/{p.name}: carriage returns"


@pytest.mark.parametrize("folder", DIRS, ids=[d.name for d in DIRS])
def test_suspect_appears_in_the_data(folder: Path) -> None:
    spec = load_spec(folder)
    haystack = " ".join(p.name.lower() for p in folder.iterdir())
    haystack += "\n" + "\n".join(p.read_text(encoding="utf-8").lower() for p in log_files(folder))
    haystack += "\n" + "\n".join(p.read_text(encoding="utf-8").lower() for p in metric_files(folder))
    assert spec.expected.suspect in haystack, (
        f"{folder.name}: suspect {spec.expected.suspect!r} not in the data"
    )


def check_metrics_csv(path: Path) -> int:
    """Every row has the header's width, an ISO-8601 UTC timestamp and numeric values; returns the rows."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header[0] == "timestamp", f"{path}: first column must be 'timestamp', got {header[0]!r}"
    label_cols = {
        i
        for i, name in enumerate(header)
        if name in {"service", "pod", "host", "node", "queue", "consumer_group"}
    }
    assert len(header) - 1 - len(label_cols) >= 1, f"{path}: no value column"
    previous: dict[tuple[str, ...], datetime] = {}
    for n, row in enumerate(body, start=2):
        assert len(row) == len(header), f"{path}:{n}: {len(row)} fields, header has {len(header)}"
        ts = datetime.fromisoformat(row[0].replace("Z", "+00:00"))
        assert ts.utcoffset() is not None, f"{path}:{n}: timestamp without a zone"
        key = tuple(row[i] for i in sorted(label_cols))
        if key in previous:
            assert ts > previous[key], f"{path}:{n}: timestamps go backwards for {key}"
        previous[key] = ts
        for i, value in enumerate(row[1:], start=1):
            if i not in label_cols:
                float(value)
    return len(body)


@pytest.mark.parametrize("folder", DIRS, ids=[d.name for d in DIRS])
def test_metrics_files_parse(folder: Path) -> None:
    for path in metric_files(folder):
        assert check_metrics_csv(path) >= 10, f"{path}: too few metric rows to see a change"


def test_readme_lists_every_scenario() -> None:
    readme = (SCENARIOS / "README.md").read_text(encoding="utf-8")
    missing = [d.name for d in DIRS if d.name not in readme]
    assert not missing, f"tests/scenarios/README.md does not list: {missing}"


def coverage() -> tuple[int, Counter[Category], int, int]:
    specs = [load_spec(d) for d in DIRS]
    cats: Counter[Category] = Counter(s.expected.category for s in specs)
    multi = sum(1 for s in specs if s.multi_service)
    hidden = sum(1 for s in specs if s.multi_service and s.origin_not_loudest)
    return len(specs), cats, multi, hidden


def test_coverage_promises() -> None:
    n, cats, multi, hidden = coverage()
    logger.info(
        "scenarios=%d categories=%d multi_service=%d origin_not_loudest=%d", n, len(cats), multi, hidden
    )
    assert n >= MIN_SCENARIOS, f"{n} scenarios, want at least {MIN_SCENARIOS}"
    assert len(cats) >= MIN_CATEGORIES, (
        f"{len(cats)} categories covered, want {MIN_CATEGORIES}: {sorted(cats)}"
    )
    assert hidden >= MIN_HIDDEN_ORIGIN, (
        f"{hidden} multi-service scenarios with a quiet origin, want {MIN_HIDDEN_ORIGIN}"
    )


def test_stacks_are_varied() -> None:
    stacks: Counter[str] = Counter()
    for d in DIRS:
        stacks.update(load_spec(d).stack)
    for needed in ("java", "python", "go", "nginx", "postgres", "kubernetes", "node", "kafka"):
        assert stacks[needed] >= 1, f"no scenario on the {needed} stack"


def test_example_incident_is_complete() -> None:
    assert EXAMPLE.is_dir()
    logs = log_files(EXAMPLE)
    names = {p.name for p in logs}
    assert {"checkout.log", "payments.log", "inventory.log"} <= names
    assert any(name.startswith("nginx") for name in names)
    lines = sum(line_count(p) for p in logs)
    assert 1000 <= lines <= 2000, f"example has {lines} log lines"
    assert check_metrics_csv(EXAMPLE / "metrics.csv") >= 40
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    assert "inventory" in readme and "memory_exhaustion" in readme

"""Score `faultmaven analyze` on the incident dev set (tests/scenarios): suspect and category top-1/top-3.

    python -m bench.eval_scenarios [--root tests/scenarios] [--verbose]

Prints JSON. Each scenario folder holds log files, optional metrics files (names containing "metrics"),
and scenario.yaml with the expected origin and category (see tests/scenarios/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from core import engine
from core.analysis import LogFile, analyze
from core.answers import Question, Session
from core.knowledge_base import KnowledgeBase
from core.metrics import read_metrics
from core.models import Category, MetricSeries, Report

ROOT = Path(__file__).resolve().parent.parent / "tests" / "scenarios"


class Expected(BaseModel):
    model_config = ConfigDict(extra="ignore")

    suspect: str
    suspect_alternates: list[str] = Field(default_factory=list)
    category: Category
    category_alternates: list[Category] = Field(default_factory=list)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    query: str = ""
    expected: Expected
    multi_service: bool = False
    origin_not_loudest: bool = False


class Outcome(BaseModel):
    name: str
    suspect_rank: int | None
    category_rank: int | None
    suspects: list[str]
    categories: list[str]
    expected_suspect: str
    expected_category: str
    seconds: float


def scenario_dirs(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "scenario.yaml").is_file())


def load(folder: Path) -> Scenario:
    return Scenario.model_validate(yaml.safe_load((folder / "scenario.yaml").read_text()))


def scenario_inputs(folder: Path) -> tuple[list[LogFile], list[MetricSeries]]:
    """A scenario's log files and metric series (files named ``*metrics*``), in name order."""
    logs: list[LogFile] = []
    metrics: list[MetricSeries] = []
    for path in sorted(folder.iterdir()):
        if path.name in {"scenario.yaml", "README.md"} or path.is_dir():
            continue
        if "metrics" in path.name:
            metrics += read_metrics(path)
        else:
            logs.append(LogFile(path=path))
    return logs, metrics


def run_scenario(
    folder: Path, *, knowledge: KnowledgeBase, use_query: bool = True
) -> tuple[Scenario, Report]:
    scenario = load(folder)
    logs, metrics = scenario_inputs(folder)
    report = analyze(
        logs=logs, metrics=metrics, query=scenario.query if use_query else "", knowledge=knowledge
    )
    return scenario, report


def _rank(found: list[str], wanted: set[str]) -> int | None:
    for i, name in enumerate(found, 1):
        if name.lower() in wanted:
            return i
    return None


def engine_categories(scenario: Scenario, report: Report, *, knowledge: KnowledgeBase) -> list[str]:
    """The deterministic engine's ranked root-cause categories for the scenario (a fresh session)."""
    question = Question(user_id="eval", query=scenario.query)
    answer = engine.answer(question, session=Session(id="eval"), knowledge=knowledge, report=report)
    return [c.category.value for c in answer.root_causes]


def evaluate(
    root: Path = ROOT, *, use_query: bool = True, through_engine: bool = False
) -> tuple[dict[str, float], list[Outcome]]:
    knowledge = KnowledgeBase.load()
    outcomes: list[Outcome] = []
    for folder in scenario_dirs(root):
        started = time.perf_counter()
        scenario, report = run_scenario(folder, knowledge=knowledge, use_query=use_query)
        suspects = [s.name for s in report.suspects]
        if through_engine:
            categories = engine_categories(scenario, report, knowledge=knowledge)
        else:
            categories = [c.category.value for c in report.root_causes]
        exp = scenario.expected
        outcomes.append(
            Outcome(
                name=folder.name,
                suspect_rank=_rank(
                    suspects, {exp.suspect.lower(), *(a.lower() for a in exp.suspect_alternates)}
                ),
                category_rank=_rank(
                    categories, {exp.category.value, *(c.value for c in exp.category_alternates)}
                ),
                suspects=suspects[:5],
                categories=categories[:5],
                expected_suspect=exp.suspect,
                expected_category=exp.category.value,
                seconds=round(time.perf_counter() - started, 3),
            )
        )
    n = len(outcomes) or 1

    def share(ranks: list[int | None], k: int) -> float:
        return round(sum(1 for r in ranks if r is not None and r <= k) / n, 3)

    s_ranks = [o.suspect_rank for o in outcomes]
    c_ranks = [o.category_rank for o in outcomes]
    summary = {
        "scenarios": float(len(outcomes)),
        "suspect_top1": share(s_ranks, 1),
        "suspect_top3": share(s_ranks, 3),
        "category_top1": share(c_ranks, 1),
        "category_top3": share(c_ranks, 3),
    }
    return summary, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--verbose", action="store_true", help="Include every scenario's outcome.")
    parser.add_argument("--no-query", action="store_true", help="Ignore the scenarios' questions.")
    parser.add_argument(
        "--engine",
        action="store_true",
        help="Score the deterministic engine's root causes (question + analysis).",
    )
    args = parser.parse_args(argv)
    summary, outcomes = evaluate(args.root, use_query=not args.no_query, through_engine=args.engine)
    out: dict[str, object] = {"summary": summary}
    if args.verbose:
        out["scenarios"] = [o.model_dump() for o in outcomes]
    else:
        out["misses"] = [o.model_dump() for o in outcomes if o.suspect_rank != 1 or o.category_rank != 1]
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

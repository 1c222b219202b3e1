"""Regression guard on the incident dev set: accuracy may rise, it must not quietly fall.

The floors sit a little under the figures in the README (measured with `python -m bench.eval_scenarios`)."""

import pytest

from bench.eval_scenarios import Outcome, evaluate

FLOORS = {"suspect_top1": 0.55, "suspect_top3": 0.85, "category_top1": 0.65, "category_top3": 0.85}


@pytest.fixture(scope="module")
def evaluation() -> tuple[dict[str, float], list[Outcome]]:
    return evaluate()


def test_dev_set_accuracy_stays_above_its_floors(evaluation: tuple[dict[str, float], list[Outcome]]) -> None:
    summary, outcomes = evaluation
    assert summary["scenarios"] >= 30
    misses = {k: summary[k] for k, floor in FLOORS.items() if summary[k] < floor}
    detail = [(o.name, o.suspects[:3], o.categories[:3]) for o in outcomes if o.suspect_rank != 1]
    assert not misses, f"accuracy fell below its floor: {misses}; suspect misses: {detail}"


def test_every_scenario_produces_a_report_with_suspects_and_causes(
    evaluation: tuple[dict[str, float], list[Outcome]],
) -> None:
    _, outcomes = evaluation
    empty = [o.name for o in outcomes if not o.suspects or not o.categories]
    assert not empty

"""Root-cause ranking takes shortcuts (a signature's matcher narrowed to what occurs in any cluster, the knowledge
base's prepared matchers); the evidence it names must be what checking every cluster one by one names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.eval_scenarios import scenario_inputs
from core import analysis
from core.answers import LogInput
from core.classify import classify, evidence_profile, rank_causes
from core.knowledge_base import FoldedTexts, KnowledgeBase
from core.logtable import LogTable
from core.metrics import metrics_from_snapshot
from core.models import RootCause

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
_SEED_LOGS = [
    "2024-05-14T14:05:58Z INFO  checkout-7f9c Started CheckoutApplication in 6.2 seconds",
    "2024-05-14T14:06:01Z ERROR checkout-7f9c java.lang.OutOfMemoryError: Java heap space",
    "2024-05-14T14:06:01Z ERROR checkout-7f9c \tat com.shop.cart.CartService.load(CartService.java:88)",
    "2024-05-14T14:06:02Z WARN  checkout-7f9c GC overhead limit exceeded, heap=1986MB/2048MB",
    "2024-05-14T14:06:05Z ERROR kubelet Back-off restarting failed container checkout in pod checkout-7f9c",
    "2024-05-14T14:06:09Z ERROR checkout-7f9c upstream payments timeout after 5000ms",
    "2024-05-14T14:06:15Z ERROR checkout-9a1b java.lang.OutOfMemoryError: Java heap space",
]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def _classify_inputs(
    monkeypatch: pytest.MonkeyPatch, kb: KnowledgeBase, *, logs: list[Any], metrics: list[Any], query: str
) -> tuple[LogTable, dict[str, Any]]:
    seen: dict[str, Any] = {}

    def spy(table: LogTable, **kwargs: Any) -> list[RootCause]:
        seen["table"], seen["kwargs"] = table, kwargs
        return classify(table, **kwargs)

    monkeypatch.setattr(analysis, "classify", spy)
    analysis.analyze(logs=logs, metrics=metrics, query=query, knowledge=kb)
    return seen["table"], seen["kwargs"]


def _cases() -> list[tuple[str, list[Any], list[Any], str]]:
    cases: list[tuple[str, list[Any], list[Any], str]] = [
        (
            "seed",
            [LogInput(name="api", lines=_SEED_LOGS)],
            metrics_from_snapshot({"cpu_usage": 92, "memory_usage": 97.5, "error_rate": 0.18}),
            "checkout pods keep restarting since the deploy",
        )
    ]
    for name in ("01-payments-db-pool-exhausted", "05-ledger-cert-expired", "21-session-redis-pool-timeout"):
        logs, metrics = scenario_inputs(SCENARIOS / name)
        cases.append((name, list(logs), list(metrics), ""))
    return cases


@pytest.mark.parametrize(("name", "logs", "metrics", "query"), _cases(), ids=lambda v: str(v)[:30])
def test_ranked_evidence_is_what_checking_every_cluster_finds(
    monkeypatch: pytest.MonkeyPatch,
    kb: KnowledgeBase,
    name: str,
    logs: list[Any],
    metrics: list[Any],
    query: str,
) -> None:
    table, kwargs = _classify_inputs(monkeypatch, kb, logs=logs, metrics=metrics, query=query)
    profile = evidence_profile(
        table, anomalies=kwargs["anomalies"], suspects=kwargs["suspects"], question=kwargs["query"]
    )
    matches = kb.match(profile, limit=25)
    ranked = dict(
        table=table, anomalies=kwargs["anomalies"], suspects=kwargs["suspects"], focus=kwargs["focus"]
    )
    with_knowledge = rank_causes(matches, **ranked, knowledge=kb)
    assert with_knowledge == rank_causes(matches, **ranked)
    # the knowledge base's ranking (no models made) ranks the causes as its validated matches do
    assert with_knowledge == rank_causes(kb.rank(profile, limit=25), **ranked, knowledge=kb)
    assert with_knowledge, name
    by_id = {m.signature.id: m for m in matches}
    for cause in with_knowledge:
        if cause.signature_id not in by_id:
            continue
        signature = by_id[cause.signature_id].signature
        expected: list[str] = []
        for cid, stats in table.clusters.items():
            texts = FoldedTexts.of((table.miner.template(cid), *(e.text for e in stats.examples[:2])))
            if signature.matches_any(texts):
                expected.append(table.miner.template_id(cid))
            if len(expected) >= 5:
                break
        assert cause.evidence.template_ids == expected, (name, cause.signature_id)
        series = [
            a.subject
            for a in kwargs["anomalies"]
            if a.source == "metrics" and signature.matches_metric(a.subject)
        ]
        assert cause.evidence.series == series[:5]


def test_profile_messages_come_heaviest_first_with_rounded_weights(
    monkeypatch: pytest.MonkeyPatch, kb: KnowledgeBase
) -> None:
    _, logs, metrics, query = _cases()[0]
    table, kwargs = _classify_inputs(monkeypatch, kb, logs=logs, metrics=metrics, query=query)
    profile = evidence_profile(
        table, anomalies=kwargs["anomalies"], suspects=kwargs["suspects"], question=query
    )
    weights = [m.weight for m in profile.messages]
    assert weights == sorted(weights, reverse=True)
    assert all(round(w, 4) == w for w in weights)
    assert any("OutOfMemoryError" in m.text for m in profile.messages)
    assert {s.name for s in profile.metric_anomalies} <= {"cpu_usage", "memory_usage", "error_rate"}
    assert profile.question == query

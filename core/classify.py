"""Deterministic root-cause classification: evidence (templates, exception types, metric anomalies, crash
signatures) is matched against the knowledge base's failure signatures and mapped onto the taxonomy.

The evidence is weighed toward the top suspect, so that the origin's own failure (say, an exhausted
connection pool) outranks the symptoms its victims log (timeouts calling it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.focus import Focus
from core.knowledge_base import (
    EvidenceProfile,
    FoldedTexts,
    KnowledgeBase,
    RankedSignature,
    SignatureMatch,
    SignatureMatcher,
    fold,
)
from core.logtable import NO_SERVICE, LogTable
from core.models import Anomaly, Category, Evidence, EvidenceLine, RootCause, Severity, Suspect

ERROR = int(Severity.ERROR)
WARN = int(Severity.WARN)
MAX_MESSAGES = 400
UNCERTAINTY = 0.35  # a rival explanation we did not see, always in the running
MAX_CONFIDENCE = 0.95

# A signature that fits the evidence: as the knowledge base ranks it, or as a SignatureMatch (the same fields).
Match = SignatureMatch | RankedSignature


def evidence_profile(
    table: LogTable, *, anomalies: Sequence[Anomaly], suspects: Sequence[Suspect], question: str = ""
) -> EvidenceProfile:
    """A compact, weighted summary of the evidence, leaning toward the top suspect."""
    origin = suspects[0].name if suspects else None
    victims = {s.name for s in suspects[1:] if s.kind == "service"}
    template_scores: dict[str, float] = {}
    for anomaly in anomalies:
        if anomaly.source == "logs":
            for tid in anomaly.evidence.template_ids:
                template_scores[tid] = max(template_scores.get(tid, 0.0), anomaly.score)

    entries: list[tuple[float, str, float]] = []  # (weight, text, weight as reported)
    for cid, stats in table.clusters.items():
        tid = table.miner.template_id(cid)
        boost = template_scores.get(tid, 0.0)
        if stats.severity < WARN and boost == 0.0:
            continue
        severity = (
            1.2
            if stats.severity > ERROR
            else 1.0
            if stats.severity >= ERROR
            else 0.5
            if stats.severity >= WARN
            else 0.3
        )
        if len(stats.services) == 1:  # the usual case; most_common would sort
            services = [table.services[sid] for sid in stats.services]
        else:
            services = [table.services[sid] for sid, _ in stats.services.most_common(2)]
        place = 1.0
        if origin is not None and origin in services:
            place = 2.0
        elif services and all(s in victims for s in services):
            place = 0.7
        weight = math.log1p(stats.count) * severity * (1.0 + boost / 5.0) * place
        texts: dict[str, None] = {table.miner.template(cid): None}  # ordered and unique
        for example in stats.examples[:2]:
            lines = example.text.split("\n")
            texts[lines[0]] = None
            if len(lines) > 1:
                texts[lines[-1].strip()] = None
        for text in texts:
            if text:
                entries.append((weight, text[:500], round(weight, 4)))
    entries.sort(key=lambda e: -e[0])

    exception_types: list[str] = []
    for group in sorted(table.exceptions.values(), key=lambda g: -g.count):
        if group.info.type not in exception_types:
            exception_types.append(group.info.type)

    signals = [
        {
            "name": a.subject,
            "direction": "down" if a.direction == "down" else "up",
            "score": round(a.score * (2.0 if origin and origin in a.subject else 1.0), 4),
        }
        for a in anomalies
        if a.source == "metrics"
    ]
    services = [s for s in table.services if s != NO_SERVICE]
    # One validation of the whole profile (messages and signals as plain fields) costs half as much as
    # building each WeightedText and MetricSignal on its own, and makes the same models.
    return EvidenceProfile.model_validate(
        {
            "question": question,
            "messages": [{"text": text, "weight": rounded} for _, text, rounded in entries[:MAX_MESSAGES]],
            "exception_types": exception_types[:50],
            "metric_anomalies": signals[:50],
            "services": services,
        }
    )


def classify(
    table: LogTable,
    *,
    anomalies: Sequence[Anomaly],
    suspects: Sequence[Suspect],
    knowledge: KnowledgeBase,
    focus: Focus,
    query: str = "",
    limit: int = 5,
) -> list[RootCause]:
    profile = evidence_profile(table, anomalies=anomalies, suspects=suspects, question=query)
    if not profile.messages and not profile.metric_anomalies and not profile.exception_types:
        return []
    # ranked, not matched: the explanations of only the best match of each category are read
    matches: list[Match] = [*knowledge.rank(profile, limit=25)]
    deploy = _deploy_evidence(anomalies, suspects=suspects, knowledge=knowledge)
    if deploy is not None:
        matches.append(deploy)
    return rank_causes(
        matches,
        table=table,
        anomalies=anomalies,
        suspects=suspects,
        focus=focus,
        limit=limit,
        knowledge=knowledge,
    )


def rank_causes(
    matches: Sequence[Match],
    *,
    table: LogTable,
    anomalies: Sequence[Anomaly],
    suspects: Sequence[Suspect],
    focus: Focus,
    limit: int = 5,
    knowledge: KnowledgeBase | None = None,
) -> list[RootCause]:
    """Signature matches grouped by category; the best signature of each category names the cause.

    ``knowledge`` (the base the matches come from) only saves work: its signatures' matchers are ready."""
    # keyed by the category's value: hashing a str is cheaper than hashing an enum member (same order)
    by_category: dict[str, tuple[Category, list[Match]]] = {}
    for match in matches:
        category = match.signature.category
        found = by_category.get(category.value)
        if found is None:
            by_category[category.value] = (category, [match])
        else:
            found[1].append(match)
    origin = suspects[0].name if suspects else None
    wanted = focus.categories
    seen = _MatchMemo(knowledge)
    scored: list[tuple[float, Category, Match]] = []
    for category, group in by_category.values():
        group.sort(key=lambda m: -m.score)
        score = group[0].score + 0.25 * sum(m.score for m in group[1:3])
        share = _origin_share(group[0], table=table, anomalies=anomalies, origin=origin, seen=seen)
        score *= 0.4 + 0.6 * share
        if category in wanted:
            score *= 1.25
        scored.append((score, category, group[0]))
    scored.sort(key=lambda item: -item[0])

    # Confidence: the evidence's strength times its share against the rival explanations (squared, so a
    # clear winner stands out and a tie splits), never certain.
    squares = sum(s * s for s, _, _ in scored) + UNCERTAINTY**2
    causes: list[RootCause] = []
    for score, category, best in scored[:limit]:
        confidence = min(MAX_CONFIDENCE, min(1.0, score) * score * score / squares)
        title = best.signature.title + (f" ({origin})" if origin else "")
        causes.append(
            RootCause(
                title=title,
                category=category,
                confidence=round(confidence, 3),
                evidence=_evidence_for(best, table=table, anomalies=anomalies, seen=seen),
                suspect=origin,
                signature_id=best.signature.id,
            )
        )
    if not causes:
        causes = _fallback(table, anomalies=anomalies, origin=origin)
    return causes


@dataclass(slots=True)
class _MatchMemo:
    """What one ranking learns about clusters, kept so no signature is checked twice against a cluster."""

    knowledge: KnowledgeBase | None = None
    # (signature id, cluster) → whether the signature's patterns fire on the cluster's template or examples
    fires: dict[tuple[str, int], bool] = field(default_factory=dict)
    # cluster → its template and first two examples, folded once for every signature
    texts: dict[int, FoldedTexts] = field(default_factory=dict)
    # signature id → its matcher narrowed to what occurs in the texts of any cluster
    matchers: dict[str, SignatureMatcher] = field(default_factory=dict)
    # the folded texts of every cluster, joined (made on the first signature checked)
    everything: str | None = None
    # metric anomalies: (subject, folded subject), for matching series names
    series: list[tuple[str, str]] | None = None

    def cluster_texts(self, cid: int, table: LogTable) -> FoldedTexts:
        texts = self.texts.get(cid)
        if texts is None:
            stats = table.clusters[cid]
            raw = (table.miner.template(cid), *(e.text for e in stats.examples[:2]))
            texts = self.texts[cid] = FoldedTexts.of(raw)
        return texts

    def matcher(self, match: Match, table: LogTable) -> SignatureMatcher:
        """The signature's matcher without what occurs in no cluster: it answers for each cluster as the full
        one does (see SignatureMatcher.within), and most signatures keep little or nothing to check."""
        matcher = self.matchers.get(match.signature.id)
        if matcher is None:
            if self.everything is None:
                self.everything = "\n".join(self.cluster_texts(cid, table).joined for cid in table.clusters)
            matcher = self.full_matcher(match).within(self.everything)
            self.matchers[match.signature.id] = matcher
        return matcher

    def full_matcher(self, match: Match) -> SignatureMatcher:
        if self.knowledge is None:
            return SignatureMatcher.of(match.signature)
        return self.knowledge.matcher(match.signature)

    def metric_series(self, anomalies: Sequence[Anomaly]) -> list[tuple[str, str]]:
        if self.series is None:
            self.series = [(a.subject, fold(a.subject)) for a in anomalies if a.source == "metrics"]
        return self.series


def _fires_on(match: Match, cid: int, *, table: LogTable, seen: _MatchMemo) -> bool:
    """Whether the match's signature fires on the cluster's template or examples (Signature.matches_any)."""
    key = (match.signature.id, cid)
    hit = seen.fires.get(key)
    if hit is None:
        matcher = seen.matcher(match, table)
        # a matcher left with nothing to check fires on no cluster: the cluster's texts need no folding
        hit = seen.fires[key] = matcher.checks_text and matcher.matches_any(seen.cluster_texts(cid, table))
    return hit


def _series_matched(match: Match, anomalies: Sequence[Anomaly], *, seen: _MatchMemo) -> list[str]:
    """The subjects of the metric anomalies whose series the match's signature watches, in order."""
    series = seen.metric_series(anomalies)
    if not series:
        return []
    pieces = seen.full_matcher(match).metric_pieces
    return [subject for subject, folded in series if any(map(folded.__contains__, pieces))]


def _origin_share(
    match: Match,
    *,
    table: LogTable,
    anomalies: Sequence[Anomaly],
    origin: str | None,
    seen: _MatchMemo,
) -> float:
    """How much of the evidence behind a match comes from the origin suspect (0..1; 0.5 when unknown).

    A pattern that fires on the origin's own logs describes what broke; the same pattern on victims'
    logs mostly describes how they noticed."""
    if origin is None:
        return 0.5
    sid = table.service_id(origin) if origin in table.services else None
    total = at_origin = 0.0
    if sid is not None:
        for cid, stats in table.clusters.items():
            if stats.severity >= WARN and _fires_on(match, cid, table=table, seen=seen):
                total += stats.count
                at_origin += stats.services.get(sid, 0)
    if total:
        return at_origin / total
    # Only metrics back this match: resources moving at the origin say less about *what* broke than its logs.
    moved = _series_matched(match, anomalies, seen=seen)
    if not moved:
        return 0.5
    return 0.5 + 0.25 * any(origin.lower() in subject.lower() for subject in moved)


DEPLOY_SIGNATURE = "http-5xx-after-deploy"
DEPLOY_SCORE = 0.6


def _deploy_evidence(
    anomalies: Sequence[Anomaly], *, suspects: Sequence[Suspect], knowledge: KnowledgeBase
) -> SignatureMatch | None:
    """A new build of the origin going live at the incident start is evidence of a bad deploy, whether or
    not any log line says "deploy"."""
    changes = [a for a in anomalies if a.kind == "version_change" and a.score >= 5.0]
    if not changes:
        return None
    origin = suspects[0].name if suspects else None
    at_origin = [a for a in changes if a.subject == origin]
    change = (at_origin or changes)[0]
    signature = knowledge.find(DEPLOY_SIGNATURE)
    if signature is None:
        return None
    score = DEPLOY_SCORE if at_origin else DEPLOY_SCORE / 2
    return SignatureMatch(signature=signature, score=score, matched=[change.description])


def _evidence_for(
    match: Match, *, table: LogTable, anomalies: Sequence[Anomaly], seen: _MatchMemo
) -> Evidence:
    template_ids: list[str] = []
    lines: list[EvidenceLine] = []
    if seen.matcher(match, table).checks_text:  # otherwise it fires on no cluster
        for cid, stats in table.clusters.items():
            if _fires_on(match, cid, table=table, seen=seen):
                template_ids.append(table.miner.template_id(cid))
                lines.extend(stats.examples[:1])
            if len(template_ids) >= 5:
                break
    series = _series_matched(match, anomalies, seen=seen)
    return Evidence(template_ids=template_ids, series=series[:5], lines=lines[:5], notes=match.matched[:6])


def _fallback(table: LogTable, *, anomalies: Sequence[Anomaly], origin: str | None) -> list[RootCause]:
    """No signature matched: say what kind of failure the evidence shows, with low confidence."""
    groups = sorted(table.exceptions.values(), key=lambda g: -g.count)
    if groups:
        group = groups[0]
        return [
            RootCause(
                title=f"Unhandled {group.info.type}" + (f" in {origin}" if origin else ""),
                category=Category.APPLICATION_EXCEPTION,
                confidence=0.3,
                evidence=Evidence(
                    lines=[group.example] if group.example else [],
                    notes=[f"{group.count} occurrences; no known failure signature matched"],
                ),
                suspect=origin,
            )
        ]
    if anomalies:
        top = anomalies[0]
        return [
            RootCause(
                title=f"Unclassified deviation: {top.description or top.subject}",
                category=Category.UNKNOWN,
                confidence=0.15,
                evidence=top.evidence,
                suspect=origin,
            )
        ]
    return []

"""The knowledge base of failure signatures: models, the loader, and the matcher.

A *signature* describes one recognisable failure (an expired certificate, a pod killed for memory, a
database refusing new clients): the symptoms that give it away in logs, exceptions, metrics and in the
words of a user's question, the usual causes, and the commands an on-call engineer runs next.

Signatures ship with FaultMaven as YAML files in ``core/knowledge/`` (read through importlib.resources)
and teams add their own runbooks from folders: YAML files, or Markdown files whose YAML front matter is
the signature and whose body becomes extra notes and steps.

The matcher scores every signature against an :class:`EvidenceProfile`, a compact summary of an analysis
report or of a question. Each regular expression is compiled once, and each carries a literal substring
that every match must contain, so most probes are ruled out by one substring search over the evidence.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import InputError, NotFoundError
from core.models import Category, ParseIssue, Report, Severity

logger = logging.getLogger(__name__)

FILE_SCHEMA_VERSION = 1
"""The version of the knowledge file layout (the ``schema_version`` key of every YAML file)."""

BUILTIN_SOURCE = "builtin"
MAX_RUNBOOK_BYTES = 1_000_000
RUNBOOK_SUFFIXES = (".yaml", ".yml", ".md", ".markdown")

# Bounds that keep one match call cheap whatever the caller passes.
MAX_MESSAGES = 2000
MAX_TEXT_CHARS = 4000
_SNIPPET_CHARS = 140

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_EXCEPTION_IN_TEXT_RE = re.compile(r"\b((?:[A-Za-z_$][\w$]*\.)*[A-Z][\w$]*(?:Exception|Error))\b")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^(```|~~~)")

# Words that name a metric in a signature's conditions, and the pieces of series names that mean it.
METRIC_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "cpu": ("cpu", "load_average", "loadavg", "load1", "load5", "load15", "throttl"),
    "memory": ("memory", "mem_", "_mem", "rss", "heap", "working_set", "oom"),
    "disk": ("disk", "filesystem", "fs_", "_fs", "inode", "volume", "storage"),
    "disk_io": ("iops", "io_time", "iowait", "disk_io", "read_bytes", "write_bytes", "burst_balance"),
    "latency": ("latency", "duration", "response_time", "p99", "p95", "p90", "rtt", "elapsed"),
    "error_rate": ("error", "5xx", "fail", "exception"),
    "requests": ("request", "rps", "qps", "throughput", "invocations"),
    "queue_lag": ("lag", "backlog", "queue", "depth", "oldest_message", "messages_visible", "pending"),
    "connections": ("connection", "conn", "pool", "sessions", "clients", "sockets"),
    "restarts": ("restart", "crash"),
    "gc": ("gc_", "_gc", "garbage", "gc.pause", "gc pause"),
    "network": ("network", "net_", "packet", "retrans", "dropped", "rx_", "tx_", "conntrack"),
    "dns": ("dns", "coredns", "resolver"),
    "throttling": ("throttl", "429", "rate_limit", "ratelimit"),
    "threads": ("thread", "goroutine", "event_loop", "eventloop"),
    "replication_lag": ("replica_lag", "replication", "seconds_behind", "replay_lag"),
    "timeouts": ("timeout", "timed_out"),
    "pending_pods": ("pending", "unschedulable", "scheduling"),
    "cert_expiry": ("cert", "ssl", "tls", "expiry"),
    "auth_failures": ("auth", "401", "403", "unauthorized", "forbidden", "login"),
}

METRIC_HOME: Mapping[str, Category] = {
    "cpu": Category.CPU_SATURATION,
    "memory": Category.MEMORY_EXHAUSTION,
    "disk": Category.DISK_EXHAUSTION,
    "disk_io": Category.DISK_EXHAUSTION,
    "queue_lag": Category.QUEUE_BACKLOG,
    "connections": Category.CONNECTION_POOL_EXHAUSTION,
    "restarts": Category.CRASH_LOOP,
    "network": Category.NETWORK_LATENCY,
    "dns": Category.DNS_FAILURE,
    "throttling": Category.RATE_LIMITING,
    "replication_lag": Category.DATABASE_ERROR,
    "timeouts": Category.TIMEOUT,
    "pending_pods": Category.SCHEDULING_CAPACITY,
    "cert_expiry": Category.TLS_CERTIFICATE,
    "auth_failures": Category.AUTH_FAILURE,
}
"""The category each metric most directly indicates; other signatures using the metric score it lower."""

# Strength of one hit of each symptom kind before evidence weighting, and caps per kind.
_PATTERN_BASE = 0.5
_PATTERN_SPAN = 0.45
_PATTERN_FULL_LITERAL = 40
# A second pattern hitting only lines that an earlier pattern already explained adds little.
_REPEAT_FACTOR = 0.3
_EXCEPTION_QUALIFIED = 0.75
_EXCEPTION_SIMPLE = 0.6
_KEYWORD_BASE = 0.3
_QUESTION_BASE = 0.3
_METRIC_BASE = 0.3
_TAG_BONUS = 0.1
# Evidence on the lightest line still counts this much of what it would on the heaviest: a rare, precise error
# line is often the root cause.
_FACTOR_FLOOR = 0.6
# A metric condition counts fully for signatures of the category the metric naturally points at.
_METRIC_AWAY_FACTOR = 0.8
_GENERIC_FACTOR = 0.35
# The first metric condition of a signature is its defining one; later ones corroborate.
_METRIC_POSITION = (1.0, 0.8, 0.65)

GENERIC_TERMS = frozenset(
    {
        "error", "errors", "exception", "exceptions", "fail", "failed", "failure", "fatal", "warning", "warn",
        "critical", "invalid", "missing", "required", "timeout", "timeouts", "timed out", "slow", "down",
        "broken", "blocked", "stuck", "null", "none", "undefined", "retry", "retries", "connect", "connection",
        "lookup", "version", "release", "deploy", "config", "configuration", "setting", "settings", "parse",
        "format", "schema", "lag", "queue", "backlog", "worker", "workers", "pending", "restart", "restarting",
        "restarts", "exited", "unavailable", "reset", "expired", "token", "certificate", "limit", "capacity",
        "quota", "memory", "heap", "cpu", "disk", "network", "latency", "crash", "killed", "unhealthy",
        "not ready", "not found",
    }
)  # fmt: skip
"""Words too common in logs and questions to point at one failure; keyword hits on them count for less."""
_CAPS = {"pattern": 0.97, "exception": 0.9, "keyword": 0.5, "metric": 0.5, "question": 0.6}
# A score multiplies what each kind of evidence leaves unexplained together in the order of _CAPS; the kinds'
# positions in that order index the per-kind lists of a match (see _score_text_refs).
_PATTERN, _EXCEPTION, _KEYWORD, _METRIC, _QUESTION = range(len(_CAPS))
_CAP_BY_SLOT: Final = tuple(_CAPS.values())


class KnowledgeFileError(InputError):
    """A knowledge file or runbook could not be used; ``issues`` names each file and entry."""

    code = "invalid_knowledge"

    def __init__(self, user_message: str, *, issues: Sequence[ParseIssue], detail: str | None = None) -> None:
        super().__init__(user_message, detail=detail)
        self.issues = list(issues)


# --------------------------------------------------------------------------------------------- models


class NextStepTemplate(BaseModel):
    """One thing to do next: a title, an optional command, and why it helps."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: str = Field(min_length=1)
    command: str | None = None
    why: str = Field(min_length=1)


class MetricCondition(BaseModel):
    """A metric that moves when this failure happens, matched against anomalous series names."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    metric: str = Field(min_length=1)
    direction: Literal["up", "down", "any"] = "up"


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        compiled = _cached_compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression ({exc})") from None
    if compiled.search("") is not None:
        raise ValueError(f"pattern {pattern!r} matches empty text, so it would match every line")
    return compiled


class Signature(BaseModel):
    """One failure signature. In files the symptom lists may be grouped under a ``symptoms`` key."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(description="Stable kebab-case identifier.")
    title: str = Field(min_length=1)
    category: Category
    version: int = Field(ge=1)
    tags: list[str] = Field(default_factory=list, description="Stacks involved: java, postgres, kubernetes…")
    patterns: list[str] = Field(default_factory=list, description="Case-insensitive regexes over messages.")
    keywords: list[str] = Field(default_factory=list, description="Words of log templates that hint here.")
    exception_types: list[str] = Field(default_factory=list)
    metric_conditions: list[MetricCondition] = Field(default_factory=list)
    question_keywords: list[str] = Field(default_factory=list)
    causes: list[str] = Field(default_factory=list)
    next_steps: list[NextStepTemplate] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list, description="Names of documents worth reading.")
    notes: str = Field(default="", description="Free text from a team runbook's Markdown body.")
    source: str = Field(default=BUILTIN_SOURCE, description="'builtin' or the path of the team runbook.")

    @model_validator(mode="before")
    @classmethod
    def _flatten_symptoms(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "symptoms" not in data:
            return data
        flat = dict(data)
        symptoms = flat.pop("symptoms")
        if symptoms is None:
            return flat
        if not isinstance(symptoms, dict):
            raise ValueError("'symptoms' must be a mapping of patterns, keywords, exception_types…")
        for key, value in symptoms.items():
            if key in flat:
                raise ValueError(f"'{key}' is given both at the top level and under 'symptoms'")
            flat[key] = value
        return flat

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"id {value!r} must be kebab-case: lowercase letters, digits and single dashes")
        return value

    @field_validator("category")
    @classmethod
    def _check_category(cls, value: Category) -> Category:
        if value is Category.UNKNOWN:
            raise ValueError("a signature must name a concrete category, not 'unknown'")
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        return [_non_empty(tag, "tag").lower() for tag in value]

    @field_validator("patterns")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _compile_pattern(_non_empty(pattern, "pattern"))
        return value

    @field_validator("keywords", "question_keywords", "exception_types", "causes", "references")
    @classmethod
    def _check_strings(cls, value: list[str]) -> list[str]:
        return [_non_empty(item, "entry") for item in value]

    def matches_text(self, text: str) -> bool:
        """Whether one of the signature's patterns, or one of its exception types, occurs in ``text``."""
        return self.matches_any(FoldedTexts.of((text,)))

    def matches_any(self, texts: FoldedTexts) -> bool:
        """Whether :meth:`matches_text` holds for one of the texts (folded once for many signatures)."""
        return SignatureMatcher.of(self).matches_any(texts)

    def matches_metric(self, series: str) -> bool:
        """Whether a metric series name or key is one of the metrics this signature watches."""
        return SignatureMatcher.of(self).matches_metric(series)

    @model_validator(mode="after")
    def _check_has_symptoms(self) -> Signature:
        if not (
            self.patterns
            or self.keywords
            or self.exception_types
            or self.metric_conditions
            or self.question_keywords
        ):
            raise ValueError(
                f"signature {self.id!r} has no symptoms: give at least one pattern, keyword, exception type,"
                " metric condition or question keyword"
            )
        return self


@dataclass(frozen=True, slots=True)
class FoldedTexts:
    """Texts as :meth:`Signature.matches_any` checks them: each one's first ``MAX_TEXT_CHARS`` characters with
    those folded (:func:`fold`), and all the folded ones joined by newlines."""

    samples: tuple[tuple[str, str], ...]
    joined: str

    @classmethod
    def of(cls, texts: Iterable[str]) -> FoldedTexts:
        samples = []
        for text in texts:
            sample = text[:MAX_TEXT_CHARS]
            samples.append((sample, fold(sample)))
        return cls(tuple(samples), "\n".join(folded for _, folded in samples))


@dataclass(frozen=True, slots=True)
class SignatureMatcher:
    """What :meth:`Signature.matches_any` and :meth:`Signature.matches_metric` test with, prepared once per
    signature: its patterns compiled, each with its required literal (:func:`analyse_pattern`; empty when none
    is known), its folded exception types, and the series-name pieces of its metrics (METRIC_SYNONYMS).

    One check of many texts against a signature can first narrow the matcher to what occurs in them at all
    (:meth:`within`)."""

    probes: tuple[tuple[re.Pattern[str], str], ...]
    names: tuple[str, ...]
    metric_pieces: tuple[str, ...]

    @classmethod
    def of(cls, signature: Signature) -> SignatureMatcher:
        return _signature_matcher(
            tuple(signature.patterns),
            tuple(signature.exception_types),
            tuple(condition.metric for condition in signature.metric_conditions),
        )

    @property
    def checks_text(self) -> bool:
        """Whether any pattern or exception type is left: without one, :meth:`matches_any` is always False."""
        return bool(self.probes or self.names)

    def within(self, joined: str) -> SignatureMatcher:
        """This matcher without the patterns and exception types that cannot occur in ``joined`` (folded text).

        It answers :meth:`matches_any` as this one does for any texts whose folded forms all occur in
        ``joined`` (the ``joined`` of FoldedTexts holding them and more, say): a pattern whose literal, or an
        exception type that, is not in ``joined`` is in none of them either."""
        probes = tuple(probe for probe in self.probes if not probe[1] or probe[1] in joined)
        names = tuple(name for name in self.names if name in joined)
        return SignatureMatcher(probes, names, self.metric_pieces)

    def matches_any(self, texts: FoldedTexts) -> bool:
        """Whether a pattern matches, or an exception type occurs in, one of the texts."""
        joined = texts.joined
        # what cannot occur in any of the texts is left out before the texts are visited one by one
        live = [(regex, literal) for regex, literal in self.probes if not literal or literal in joined]
        names = [name for name in self.names if name in joined]
        if not live and not names:
            return False
        for sample, folded in texts.samples:
            for regex, literal in live:
                if (not literal or literal in folded) and regex.search(sample):
                    return True
            for name in names:
                if name in folded:
                    return True
        return False

    def matches_metric(self, series: str) -> bool:
        """Whether a metric series name or key is one of the metrics this signature watches."""
        return self.matches_folded_metric(fold(series))

    def matches_folded_metric(self, folded_series: str) -> bool:
        """:meth:`matches_metric` of a series name already folded (:func:`fold`)."""
        return any(map(folded_series.__contains__, self.metric_pieces))


@lru_cache(maxsize=4096)
def _signature_matcher(
    patterns: tuple[str, ...], exception_types: tuple[str, ...], metrics: tuple[str, ...]
) -> SignatureMatcher:
    probes = tuple((_cached_compile(pattern), analyse_pattern(pattern)[0]) for pattern in patterns)
    return SignatureMatcher(probes, tuple(fold(name) for name in exception_types), _metric_pieces(metrics))


@lru_cache(maxsize=4096)
def _metric_pieces(metrics: tuple[str, ...]) -> tuple[str, ...]:
    """The series-name pieces that mean any of these metrics (see METRIC_SYNONYMS)."""
    return tuple(
        piece for metric in metrics for piece in METRIC_SYNONYMS.get(metric.lower(), (metric.lower(),))
    )


def _non_empty(value: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError(f"empty {what}")
    return text


class WeightedText(BaseModel):
    """A template text or example line, with how much it should count (count, error-ness, anomaly)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    weight: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    count: int | None = Field(default=None, ge=0, description="Occurrences, shown in explanations.")


class MetricSignal(BaseModel):
    """An anomalous metric series: its name or key, which way it moved, and how strongly."""

    model_config = ConfigDict(extra="forbid")

    name: str
    direction: Literal["up", "down", "none"] = "up"
    score: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)


class EvidenceProfile(BaseModel):
    """A compact summary of what an analysis (or a user's question) points at."""

    model_config = ConfigDict(extra="forbid")

    question: str = ""
    messages: list[WeightedText] = Field(default_factory=list)
    exception_types: list[str] = Field(default_factory=list)
    metric_anomalies: list[MetricSignal] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)

    @classmethod
    def from_report(cls, report: Report, *, question: str = "", max_messages: int = 300) -> EvidenceProfile:
        """Summarise a report: template examples weighted by count, severity and anomaly, plus metrics."""
        messages: list[WeightedText] = []
        exceptions: dict[str, None] = {}
        for template in report.templates:
            text = template.example or template.template
            if template.severity >= Severity.ERROR:
                severity_factor = 3.0
            elif template.severity >= Severity.WARN:
                severity_factor = 2.0
            else:
                severity_factor = 1.0
            anomaly_factor = 1.0 + min(template.score, 10.0) if template.anomalous else 1.0
            weight = max(template.count, 1) * severity_factor * anomaly_factor
            messages.append(WeightedText(text=text, weight=weight, count=template.count))
            for found in _EXCEPTION_IN_TEXT_RE.findall(text):
                exceptions[found] = None
        messages.sort(key=lambda item: item.weight, reverse=True)
        signals = [
            MetricSignal(name=anomaly.subject, direction=anomaly.direction, score=anomaly.score)
            for anomaly in report.anomalies
            if anomaly.source == "metrics"
        ]
        services: dict[str, None] = {name: None for name in report.counts_by_service}
        for suspect in report.suspects:
            if suspect.kind in ("service", "dependency", "component"):
                services[suspect.name] = None
        return cls(
            question=question,
            messages=messages[:max_messages],
            exception_types=list(exceptions),
            metric_anomalies=signals,
            services=list(services),
        )


class SignatureMatch(BaseModel):
    """A signature that fits the evidence, how well (0..1), and which symptoms hit."""

    model_config = ConfigDict(extra="forbid")

    signature: Signature
    score: float = Field(ge=0.0, le=1.0)
    matched: list[str] = Field(default_factory=list)


class RankedSignature:
    """What :meth:`KnowledgeBase.rank` finds: a :class:`SignatureMatch` as :meth:`KnowledgeBase.match` would
    return it (the same signature, score and explanations), not validated into a model, and with the notes on
    metrics written only when :attr:`matched` is first read. A caller that reads the explanations of only a few
    of its matches (the root-cause ranking reads those of the best match per category) saves writing and
    validating the rest."""

    __slots__ = ("_explained", "_matched", "_notes", "score", "signature")

    def __init__(
        self, signature: Signature, score: float, explained: list[str], notes: Sequence[_Note]
    ) -> None:
        self.signature = signature
        self.score = score  # in (0, 1]: the ranking keeps positive scores only and caps them at 1
        self._explained = explained
        self._notes = notes
        self._matched: list[str] | None = None

    @property
    def matched(self) -> list[str]:
        """Which symptoms hit (SignatureMatch.matched): one list, written on the first read."""
        if self._matched is None:
            self._matched = self._explained + [_note_text(note) for note in self._notes]
        return self._matched


# ---------------------------------------------------------------------------------- regex analysis

_SPECIAL_ESCAPES = frozenset("dDwWsSbBAZzGnrtfvxuUN0123456789")


def _skip_class(pattern: str, start: int) -> int:
    """Index just past the character class that opens at ``start``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i + 1
        i += 1
    return len(pattern)


def _structural(pattern: str, start: int) -> Iterator[tuple[int, str]]:
    """Index and character of each character from ``start`` on that is neither escaped nor inside a
    character class: the ones that open and close groups and separate alternatives."""
    i = start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _skip_class(pattern, i)
            continue
        yield i, char
        i += 1


def _skip_group(pattern: str, start: int) -> int:
    """Index just past the group that opens at ``start``."""
    depth = 0
    for i, char in _structural(pattern, start):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(pattern)


def _top_level_branches(pattern: str) -> list[str]:
    """The pattern's alternatives outside any group (a stray ``)`` closes nothing)."""
    branches: list[str] = []
    depth = start = 0
    for i, char in _structural(pattern, 0):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif char == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
    branches.append(pattern[start:])
    return branches


def _top_level_alternatives(pattern: str) -> int:
    """How many alternatives the pattern has outside any group."""
    return len(_top_level_branches(pattern))


def analyse_pattern(pattern: str) -> tuple[str, int]:
    """Return (required literal, literal character count) of a regex.

    The required literal is the longest run of plain characters that every match must contain, folded to
    lower case; it is empty when none can be proven (alternation at the top level, verbose mode). The
    count of literal characters anywhere in the pattern measures how specific the pattern is.
    """
    literal_count = 0
    best = ""
    run: list[str] = []
    provable = "(?x" not in pattern and _top_level_alternatives(pattern) == 1

    def close_run() -> None:
        nonlocal best
        if len(run) > len(best):
            best = "".join(run)
        run.clear()

    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            i += 2
            if escaped in _SPECIAL_ESCAPES or escaped.isalpha():
                close_run()
            else:
                literal_count += 1
                run.append(escaped)
            continue
        if char == "[":
            close_run()
            i = _skip_class(pattern, i)
            continue
        if char == "(":
            close_run()
            end = _skip_group(pattern, i)
            body = pattern[i + 1 : end - 1]
            inner = re.sub(r"^\?(?:[:=>]|<=|P<\w+>|<\w+>)", "", body)
            if not inner.startswith("?"):  # negative lookarounds, flags and conditionals add nothing
                literal_count += analyse_pattern(inner)[1]
            i = end
            continue
        if char in "*?{":
            if run:
                run.pop()
            close_run()
            if char == "{":
                end = pattern.find("}", i)
                i = len(pattern) if end < 0 else end + 1
            else:
                i += 1
            continue
        if char == "+":
            close_run()
            i += 1
            continue
        if char in ".^$|)":
            close_run()
            i += 1
            continue
        if not char.isascii():
            close_run()
            i += 1
            continue
        literal_count += 1
        run.append(char)
        i += 1
    close_run()
    if not provable:
        literal_count //= _top_level_alternatives(pattern)
    literal = best.lower() if provable and len(best.strip()) >= 2 else ""
    return literal, literal_count


def required_literals(pattern: str) -> tuple[str, ...]:
    """Lower-cased literals one of which every match of ``pattern`` contains: the required literal
    (:func:`analyse_pattern`) of each top-level alternative, looking into a pattern that is one group of
    alternatives (``\\b(?:a|b)``); empty when some alternative has none to prove."""
    if "(?x" in pattern:
        return ()
    literals: list[str] = []
    for branch in _top_level_branches(pattern):
        literal = analyse_pattern(branch)[0]
        if not literal:
            group = _WHOLE_GROUP_RE.fullmatch(branch)
            if group is None or _skip_group(branch, branch.index("(")) != len(branch):
                return ()
            inner = required_literals(group.group(1))
            if not inner:
                return ()
            literals.extend(inner)
            continue
        literals.append(literal)
    return tuple(dict.fromkeys(literals))


def screen_literals(pattern: str) -> tuple[str, ...]:
    """ASCII literals one of which is in ``ignorecase_fold(text)`` whenever ``pattern`` matches ``text``
    case-insensitively; empty when none can be shown. They are the :func:`required_literals` of the pattern,
    or of the first group that must match and has some (a group at the top level with no quantifier after it
    and no alternative beside it): ``(environment variable|env var) \\S+ is not set``,
    ``^(\\w+\\.)*\\w+(Error|Exception):``."""
    literals = required_literals(pattern)
    if not literals and "(?x" not in pattern and _top_level_alternatives(pattern) == 1:
        literals = _mandatory_group_literals(pattern)
    if all(literal.isascii() for literal in literals):
        return literals
    return ()


def _mandatory_group_literals(pattern: str) -> tuple[str, ...]:
    """The :func:`required_literals` of the first top-level group of ``pattern`` (which has no top-level
    alternative) that every match goes through and that has some: no quantifier follows it, and lookarounds,
    named groups, flags and conditionals are not looked into."""
    depth = 0
    for i, char in _structural(pattern, 0):
        if char == ")":
            depth = max(depth - 1, 0)
            continue
        if char != "(":
            continue
        if depth == 0:
            end = _skip_group(pattern, i)
            if end < len(pattern) and pattern[end] not in "?*+{":
                inner = pattern[i + 1 : end - 1].removeprefix("?:")
                if not inner.startswith("?"):
                    literals = required_literals(inner)
                    if literals:
                        return literals
        depth += 1
    return ()


_WHOLE_GROUP_RE = re.compile(r"(?:\\b|\^)?\((?:\?:)?(?!\?)(.*)\)", re.DOTALL)  # plain or (?:...) groups only
# The only characters outside ASCII that re.IGNORECASE equates with an ASCII letter.
_IGNORECASE_ASCII = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def ignorecase_fold(text: str) -> str:
    """Lower-cased text in which every character that re.IGNORECASE equates with an ASCII letter is that
    letter: an ASCII literal that a case-insensitive regex finds is a plain substring of it. (:func:`fold`
    answers a different question: it follows str.casefold, which turns "İ" into two characters.)"""
    if not text.isascii():
        text = text.translate(_IGNORECASE_ASCII)
    return text.lower()


def fold(text: str) -> str:
    """Fold text the way the prefilter compares it with required literals."""
    # Dotless i is the one character outside ASCII that re.IGNORECASE equates with an ASCII letter and
    # str.casefold() leaves alone.
    return text.casefold().replace("ı", "i")


# ---------------------------------------------------------------------------------- compiled form


@dataclass(frozen=True, slots=True)
class _Probe:
    regex: re.Pattern[str]
    literal: str
    question_only: bool
    grams: tuple[_Gram, ...]  # a few 4-byte pieces of the literal, checked before scanning for it


_RefKind = Literal["pattern", "keyword", "exception", "question"]


@dataclass(frozen=True, slots=True)
class _Ref:
    kind: _RefKind
    probe: int
    label: str
    strength: float
    slot: int  # the kind's position in _CAPS
    folded_label: str  # fold(label), for exception types


def _ref(kind: _RefKind, probe: int, label: str, strength: float) -> _Ref:
    return _Ref(kind, probe, label, strength, list(_CAPS).index(kind), fold(label))


@dataclass(frozen=True, slots=True)
class _CompiledSignature:
    signature: Signature
    refs: tuple[_Ref, ...]
    exception_names: tuple[tuple[str, str, bool], ...]  # (folded full name, folded simple name, dotted)
    metrics: tuple[tuple[MetricCondition, tuple[str, ...]], ...]
    tags: tuple[str, ...]
    pattern_refs: tuple[_Ref, ...] = ()  # the refs of kind "pattern", then the others, each in refs order
    other_refs: tuple[_Ref, ...] = ()


@dataclass(slots=True)
class _Hit:
    weight: float = 0.0
    count: int = 0
    counted: bool = False
    best_text: str = ""
    best_weight: float = -1.0
    in_question: bool = False
    mask: int = 0  # bit i set when message i matched; bit len(messages) for the question
    factor: float = 1.0  # how much its evidence counts (_evidence_factor; 1.0 for the question)
    where: str | None = None  # the end of its explanations, written once (see _describe)


@dataclass(slots=True)
class _ProbeTable:
    probes: list[_Probe] = field(default_factory=list)
    index: dict[tuple[str, bool], int] = field(default_factory=dict)

    def add(self, regex: _Regex, literal: str, *, question_only: bool) -> int:
        key = (regex.source, question_only)
        found = self.index.get(key)
        if found is not None:
            return found
        self.probes.append(
            _Probe(_cached_compile(regex.compiled), literal, question_only, _sample_grams(literal))
        )
        self.index[key] = len(self.probes) - 1
        return len(self.probes) - 1


_GRAM = 4
_Gram = int  # 4 bytes of UTF-8 read as one native unsigned int
_GRAM_TYPECODE: Final = "I"
if struct.calcsize(_GRAM_TYPECODE) != _GRAM:  # the byte windows below are read as these machine ints
    raise ImportError(f"core.knowledge_base needs a {_GRAM}-byte C unsigned int")


def _utf8(text: str) -> bytes:
    # Lone surrogates (from undecodable input) get bytes too: a literal's bytes are still a substring of the
    # bytes of any text the literal is a substring of.
    return text.encode("utf-8", "surrogatepass")


def _sample_grams(literal: str) -> tuple[_Gram, ...]:
    data = _utf8(literal)
    if len(data) < _GRAM:
        return ()
    last = len(data) - _GRAM
    return tuple(dict.fromkeys(_gram_at(data, i) for i in (0, last // 2, last)))


def _gram_at(data: bytes, start: int) -> _Gram:
    gram: _Gram = memoryview(data[start : start + _GRAM]).cast(_GRAM_TYPECODE)[0]
    return gram


# From this many bytes on, numpy finds a text's distinct windows faster than a set fed by memoryviews (below it
# numpy's fixed costs dominate; a 1 kB text takes about three quarters of the time, a 40 kB one three fifths).
_NUMPY_GRAMS_FROM = 448


def _grams(text: str) -> set[_Gram]:
    """Every 4-byte window of the text's UTF-8 as an int. Reading the bytes as machine ints at each of the four
    offsets keeps the loop in C and allocates no tuples or strings (nor anything the garbage collector must
    track): about twice as cheap as slicing out 4-character strings."""
    data = _utf8(text)
    if len(data) >= _NUMPY_GRAMS_FROM:
        # The same ints: a native uint32 read at every byte offset (a view whose stride is one byte) is the
        # machine unsigned int that memoryview.cast reads there. Sorted, only the first of each run of equal
        # windows becomes a Python int.
        windows = np.sort(
            np.ndarray(shape=(len(data) - _GRAM + 1,), dtype=np.uint32, buffer=data, strides=(1,))
        )
        distinct: list[_Gram] = windows[1:][windows[1:] != windows[:-1]].tolist()
        found = set(distinct)
        found.add(int(windows[0]))
        return found
    out: set[_Gram] = set()
    for offset in range(_GRAM):
        end = offset + (len(data) - offset) // _GRAM * _GRAM
        if end > offset:
            out.update(memoryview(data[offset:end]).cast(_GRAM_TYPECODE))
    return out


@lru_cache(maxsize=8192)
def _cached_compile(source: str) -> re.Pattern[str]:
    return re.compile(source, re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Regex:
    """A probe's regex as written (which identifies the probe) and the equivalent form that is compiled."""

    source: str
    compiled: str

    @classmethod
    def plain(cls, source: str) -> _Regex:
        return cls(source, source)

    @classmethod
    def bounded(cls, text: str, *, not_after: str, then: str) -> _Regex:
        """``text`` (as is, not a regex) where no character of the class ``not_after`` precedes it, followed by
        the regex ``then``: ``(?<!C)text...``. It is compiled as ``text(?<!Ctext)...``, which matches at the
        same places: the lookbehind re-reads the text just matched, so it only tests the character before it,
        and at the start of the string it does not fit, as the leading one does not. A regex that starts with
        a literal gives up at once at most positions; one that starts with a lookbehind runs it at each."""
        escaped = re.escape(text)
        return cls(
            f"(?<!{not_after}){escaped}{then}",
            f"{escaped}(?<!{not_after}{escaped}){then}",
        )


def _word_regex(word: str) -> _Regex:
    return _Regex.bounded(word, not_after=r"\w", then=r"(?:s|es)?(?!\w)")


def _exception_regex(name: str) -> _Regex:
    return _Regex.bounded(name, not_after=r"[\w.$]", then=r"(?![\w$])")


def _ascii_literal(word: str) -> str:
    return word.lower() if word.isascii() else ""


def _generic_factor(word: str) -> float:
    return _GENERIC_FACTOR if word.lower() in GENERIC_TERMS else 1.0


def _idf(frequency: int) -> float:
    return 1.0 / (1.0 + math.log(max(frequency, 1)))


def _compile_all(signatures: Sequence[Signature]) -> tuple[list[_Probe], list[_CompiledSignature]]:
    table = _ProbeTable()
    keyword_df: dict[str, int] = {}
    question_df: dict[str, int] = {}
    for signature in signatures:
        for word in {w.lower() for w in signature.keywords}:
            keyword_df[word] = keyword_df.get(word, 0) + 1
        for word in {w.lower() for w in signature.question_keywords}:
            question_df[word] = question_df.get(word, 0) + 1

    compiled: list[_CompiledSignature] = []
    for signature in signatures:
        refs: list[_Ref] = []
        for pattern in signature.patterns:
            literal, literal_count = analyse_pattern(pattern)
            strength = _PATTERN_BASE + _PATTERN_SPAN * min(1.0, literal_count / _PATTERN_FULL_LITERAL)
            probe = table.add(_Regex.plain(pattern), literal, question_only=False)
            refs.append(_ref("pattern", probe, pattern, strength))
        for word in signature.keywords:
            probe = table.add(_word_regex(word), _ascii_literal(word), question_only=False)
            strength = _KEYWORD_BASE * _idf(keyword_df[word.lower()]) * _generic_factor(word)
            refs.append(_ref("keyword", probe, word, strength))
        names: list[tuple[str, str, bool]] = []
        for exception in signature.exception_types:
            dotted = "." in exception
            simple = exception.rsplit(".", 1)[-1]
            names.append((fold(exception), fold(simple), dotted))
            strength = _EXCEPTION_QUALIFIED if dotted else _EXCEPTION_SIMPLE
            probe = table.add(_exception_regex(exception), _ascii_literal(exception), question_only=False)
            refs.append(_ref("exception", probe, exception, strength))
        for word in signature.question_keywords:
            probe = table.add(_word_regex(word), _ascii_literal(word), question_only=True)
            strength = _QUESTION_BASE * _idf(question_df[word.lower()]) * _generic_factor(word)
            refs.append(_ref("question", probe, word, strength))
        metrics = tuple(
            (condition, METRIC_SYNONYMS.get(condition.metric.lower(), (condition.metric.lower(),)))
            for condition in signature.metric_conditions
        )
        tags = tuple(tag for tag in signature.tags if len(tag) >= 4)
        compiled.append(
            _CompiledSignature(
                signature,
                tuple(refs),
                tuple(names),
                metrics,
                tags,
                pattern_refs=tuple(ref for ref in refs if ref.kind == "pattern"),
                other_refs=tuple(ref for ref in refs if ref.kind != "pattern"),
            )
        )
    return table.probes, compiled


# --------------------------------------------------------------------------------------- matching


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1] + "…"


def _noisy_or(values: Iterable[float]) -> float:
    remaining = 1.0
    for value in values:
        remaining *= 1.0 - value
    return 1.0 - remaining


def _evidence_factor(weight: float, max_weight: float) -> float:
    if max_weight <= 0.0:
        return 1.0
    return _FACTOR_FLOOR + (1.0 - _FACTOR_FLOOR) * min(1.0, math.sqrt(weight / max_weight))


def _score_text_refs(
    compiled: _CompiledSignature, hits: Sequence[_Hit | None]
) -> tuple[list[list[float]], list[str], AbstractSet[str]]:
    """Strengths per symptom kind (indexed as in _CAPS) from the probes that hit, their explanations, and the
    (folded) exception types found in the text.

    Patterns are taken strongest first; one that only hits lines an earlier pattern explained counts for
    less. A keyword that only hits lines a pattern explained adds nothing: it is the same evidence again.
    """
    parts: list[list[float]] = [[], [], [], [], []]
    matched: list[str] = []
    patterns: list[tuple[float, _Ref, _Hit]] = []
    for ref in compiled.pattern_refs:
        hit = hits[ref.probe]
        if hit is not None:
            patterns.append((ref.strength * hit.factor, ref, hit))
    covered = 0
    if patterns:
        if len(patterns) > 1:
            patterns.sort(key=_minus_strength)  # stable: equal strengths keep the signature's order
        pattern_values = parts[_PATTERN]
        for strength, ref, hit in patterns:
            pattern_values.append(strength if hit.mask & ~covered else strength * _REPEAT_FACTOR)
            covered |= hit.mask
            matched.append(_describe(ref, hit))
    seen_exceptions: set[str] = set()
    for ref in compiled.other_refs:
        hit = hits[ref.probe]
        if hit is None or (ref.slot == _KEYWORD and not hit.mask & ~covered):
            continue
        if ref.slot == _EXCEPTION:
            seen_exceptions.add(ref.folded_label)
        parts[ref.slot].append(ref.strength * hit.factor)
        matched.append(_describe(ref, hit))
    return parts, matched, seen_exceptions


def _minus_strength(item: tuple[float, _Ref, _Hit]) -> float:
    return -item[0]


_NO_EXCEPTIONS: frozenset[str] = frozenset()
_NO_PARTS: list[list[float]] = [
    [],
    [],
    [],
    [],
    [],
]  # the parts of a match without text evidence: never changed


def _describe(ref: _Ref, hit: _Hit) -> str:
    if hit.in_question and hit.best_weight < 0:
        if ref.kind == "question":
            return f"question mentions '{ref.label}'"
        return f"{ref.kind} '{ref.label}' in the question"
    where = hit.where
    if where is None:  # the same for every signature the hit explains: written once
        amount = f"x{hit.count}" if hit.counted else f"weight {hit.weight:.3g}"
        where = hit.where = f"in '{_snippet(hit.best_text)}' ({amount})"
    return f"{ref.kind} '{ref.label}' {where}"


@dataclass(frozen=True, slots=True)
class _Prefilter:
    """Which probes can possibly hit a text, found without visiting every probe.

    A probe whose required literal has 4-grams (4-byte windows of its UTF-8) is filed under the one fewest
    other probes have (so a common piece such as "erro" does not make half the probes candidates): only
    probes filed under a 4-gram of the text are candidates, and those still need all their grams and the
    literal itself in the text. A probe whose literal is shorter than a gram needs the literal in the text;
    one with no literal is always a candidate.
    """

    by_gram: dict[_Gram, tuple[tuple[int, str, tuple[_Gram, ...]], ...]]  # (probe, literal, its grams)
    short: tuple[tuple[int, str], ...]  # probes whose literal is too short for a gram
    always: tuple[int, ...]  # probes with no literal
    keys: frozenset[_Gram]

    @classmethod
    def build(
        cls, probes: Sequence[_Probe], *, which: Literal["all", "log", "question"] = "all"
    ) -> _Prefilter:
        """The prefilter over ``probes``: all, those for log text (not question-only) or the question-only."""
        frequency: dict[_Gram, int] = {}
        for probe in probes:
            for gram in set(probe.grams):
                frequency[gram] = frequency.get(gram, 0) + 1
        by_gram: dict[_Gram, list[tuple[int, str, tuple[_Gram, ...]]]] = {}
        short: list[tuple[int, str]] = []
        always: list[int] = []
        for index, probe in enumerate(probes):
            if (which == "log" and probe.question_only) or (which == "question" and not probe.question_only):
                continue
            if probe.grams:
                rarest = min(probe.grams, key=lambda gram: (frequency[gram], gram))
                by_gram.setdefault(rarest, []).append((index, probe.literal, probe.grams))
            elif probe.literal:
                short.append((index, probe.literal))
            else:
                always.append(index)
        return cls(
            {gram: tuple(entries) for gram, entries in by_gram.items()},
            tuple(short),
            tuple(always),
            frozenset(by_gram),
        )

    def candidates(self, *, text: str, grams: set[_Gram]) -> list[int]:
        """Indexes, in probe order, of the probes whose literal (if any) occurs in ``text``; ``grams`` are
        the text's (:func:`_grams`)."""
        out = list(self.always)
        for index, literal in self.short:
            if literal in text:
                out.append(index)
        by_gram = self.by_gram
        issuperset = grams.issuperset
        for gram in self.keys.intersection(grams):
            for index, literal, needed in by_gram[gram]:
                if issuperset(needed) and literal in text:
                    out.append(index)
        out.sort()
        return out


@dataclass(frozen=True, slots=True)
class _MetricProbe:
    """One metric condition of a signature, ready to score: its synonym group and its strength before the
    signal's own direction and score are taken into account."""

    metric: str
    direction: Literal["up", "down", "any"]
    group: int
    strength: float


_Note = str | tuple[str, "_Signal"]  # an explanation, or a metric condition and the signal that met it


def _note_text(note: _Note) -> str:
    if isinstance(note, str):
        return note
    metric, signal = note
    return f"metric '{metric}' {signal.said}"


def _metrics_met(
    conditions: Sequence[_MetricProbe], named: Sequence[Sequence[_Signal]]
) -> tuple[float | None, list[_Note]]:
    """What a signature's metric conditions leave of its score unexplained (the cap on the noisy-or of the
    strongest signal each condition meets; None when none is met), with notes on the signals that met them.
    ``named`` holds the signals whose names match each synonym group."""
    values: list[float] = []
    notes: list[_Note] = []
    for condition in conditions:
        best: tuple[float, _Signal] | None = None
        for item in named[condition.group]:
            direction = item.signal.direction
            if condition.direction != "any" and direction not in (condition.direction, "none"):
                continue
            strength = condition.strength
            strength *= 0.5 if direction == "none" else 1.0
            strength *= item.factor
            if best is None or strength > best[0]:
                best = (strength, item)
        if best is not None:
            values.append(best[0])
            notes.append((condition.metric, best[1]))
    if not values:
        return None, notes
    return 1.0 - min(_CAP_BY_SLOT[_METRIC], _noisy_or(values)), notes


def _tagged(tag: str, services: Sequence[tuple[str, str]]) -> str | None:
    """The first service whose (folded) name contains the tag."""
    return next((name for name, low in services if tag in low), None)


@dataclass(frozen=True, slots=True)
class _Signal:
    signal: MetricSignal
    folded: str
    factor: float  # the evidence factor of its score against the strongest signal of the call
    said: str  # the end of a note on a condition it meets: direction, name and score

    @classmethod
    def of(cls, signal: MetricSignal, *, max_score: float) -> _Signal:
        said = f"{signal.direction}: '{_snippet(signal.name)}' (score {signal.score:.3g})"
        return cls(signal, fold(signal.name), _evidence_factor(signal.score, max_score), said)


def _metric_index(
    compiled: Sequence[_CompiledSignature],
) -> tuple[list[tuple[str, ...]], list[tuple[int, ...]], list[tuple[_MetricProbe, ...]]]:
    """The distinct synonym groups of all metric conditions, the signatures that use each group, and each
    signature's conditions as :class:`_MetricProbe` (equal condition lists are one tuple, so one match call
    can score them once)."""
    groups: dict[tuple[str, ...], int] = {}
    users: list[list[int]] = []
    conditions: list[tuple[_MetricProbe, ...]] = []
    interned: dict[tuple[_MetricProbe, ...], tuple[_MetricProbe, ...]] = {}
    for index, signature in enumerate(compiled):
        own: list[_MetricProbe] = []
        for position, (condition, synonyms) in enumerate(signature.metrics):
            group = groups.setdefault(synonyms, len(groups))
            if group == len(users):
                users.append([])
            if not users[group] or users[group][-1] != index:
                users[group].append(index)
            strength = _METRIC_BASE * _METRIC_POSITION[min(position, len(_METRIC_POSITION) - 1)]
            home = METRIC_HOME.get(condition.metric.lower())
            if home is not None and home is not signature.signature.category:
                strength *= _METRIC_AWAY_FACTOR
            own.append(_MetricProbe(condition.metric, condition.direction, group, strength))
        conditions.append(interned.setdefault(tuple(own), tuple(own)))
    return list(groups), [tuple(ids) for ids in users], conditions


class KnowledgeBase:
    """The loaded signatures, compiled once for matching."""

    def __init__(self, signatures: Sequence[Signature], *, issues: Sequence[ParseIssue] = ()) -> None:
        seen: set[str] = set()
        for signature in signatures:
            if signature.id in seen:
                raise InputError(f"Knowledge signature id {signature.id!r} appears twice.")
            seen.add(signature.id)
        self.signatures: list[Signature] = list(signatures)
        self.issues: list[ParseIssue] = list(issues)
        self._by_id = {signature.id: signature for signature in self.signatures}
        self._matchers = {signature.id: SignatureMatcher.of(signature) for signature in self.signatures}
        self._probes, self._compiled = _compile_all(self.signatures)
        self._prefilter = _Prefilter.build(self._probes)
        # log messages never hit question-only probes: their own prefilter leaves them out
        self._log_prefilter = _Prefilter.build(self._probes, which="log")
        self._question_only_prefilter = _Prefilter.build(self._probes, which="question")
        # probes without one required literal, screened by any of several (see _run_probes)
        self._screens = {
            index: literals
            for index, probe in enumerate(self._probes)
            if not probe.literal and (literals := screen_literals(probe.regex.pattern))
        }
        by_probe: list[list[int]] = [[] for _ in self._probes]
        for index, compiled in enumerate(self._compiled):
            for probe in sorted({ref.probe for ref in compiled.refs}):
                by_probe[probe].append(index)
        self._signatures_by_probe = [tuple(ids) for ids in by_probe]
        # signatures by the folded full and simple names of their exception types
        self._by_exception: dict[str, set[int]] = {}
        for index, compiled in enumerate(self._compiled):
            for full, simple, _ in compiled.exception_names:
                self._by_exception.setdefault(full, set()).add(index)
                self._by_exception.setdefault(simple, set()).add(index)
        self._synonym_groups, self._signatures_by_group, self._metric_conditions = _metric_index(
            self._compiled
        )

    @classmethod
    def load(cls, *, extra_dirs: Sequence[Path] = ()) -> KnowledgeBase:
        """The built-in signatures plus the team runbooks found in ``extra_dirs``.

        A broken built-in file raises :class:`KnowledgeFileError`. A broken runbook is reported in
        ``issues`` and skipped, keeping every valid entry around it. A runbook whose id equals a built-in
        signature's replaces it; a runbook id seen twice keeps the first (files are read in path order).
        """
        signatures: dict[str, Signature] = {signature.id: signature for signature in _builtin_signatures()}
        builtin_ids = set(signatures)
        issues: list[ParseIssue] = []
        for folder in extra_dirs:
            for signature in _load_runbook_dir(Path(folder), issues):
                if signature.id in signatures and signature.id not in builtin_ids:
                    issues.append(
                        ParseIssue(
                            source=signature.source,
                            message=f"signature id {signature.id!r} is already defined by "
                            f"{signatures[signature.id].source}; this one is skipped",
                        )
                    )
                    continue
                if signature.id in builtin_ids:
                    logger.info(
                        "team runbook %s replaces built-in signature %s", signature.source, signature.id
                    )
                    builtin_ids.discard(signature.id)
                signatures[signature.id] = signature
        for issue in issues:
            logger.warning("knowledge runbook issue: %s", issue)
        return cls(list(signatures.values()), issues=issues)

    def get(self, signature_id: str) -> Signature:
        try:
            return self._by_id[signature_id]
        except KeyError:
            raise NotFoundError(f"There is no knowledge signature named {signature_id!r}.") from None

    def find(self, signature_id: str) -> Signature | None:
        """The signature with this id, or None."""
        return self._by_id.get(signature_id)

    def matcher(self, signature: Signature) -> SignatureMatcher:
        """``SignatureMatcher.of(signature)``, prepared at load time for the signatures of this base."""
        if self._by_id.get(signature.id) is signature:
            return self._matchers[signature.id]
        return SignatureMatcher.of(signature)

    def for_category(self, category: Category) -> list[Signature]:
        return [signature for signature in self.signatures if signature.category is category]

    def match(self, evidence: EvidenceProfile, *, limit: int = 10) -> list[SignatureMatch]:
        """Score every signature against the evidence; the best ``limit`` with a positive score."""
        # validated as one list: a quarter cheaper than one SignatureMatch(...) at a time, the same models
        return _MATCH_LIST.validate_python(
            [
                {"signature": found.signature, "score": found.score, "matched": found.matched}
                for found in self.rank(evidence, limit=limit)
            ]
        )

    def rank(self, evidence: EvidenceProfile, *, limit: int = 10) -> list[RankedSignature]:
        """:meth:`match` without making models: the same signatures, scores and explanations, best first."""
        if limit <= 0:
            return []
        messages = sorted(evidence.messages, key=lambda item: item.weight, reverse=True)[:MAX_MESSAGES]
        texts = [message.text[:MAX_TEXT_CHARS] for message in messages]
        folded = [fold(text) for text in texts]
        max_weight = max((message.weight for message in messages), default=0.0)
        question = evidence.question[:MAX_TEXT_CHARS]

        hits, hit_probes = self._run_probes(
            messages, texts=texts, folded=folded, question=question, max_weight=max_weight
        )

        reported = [
            (name, fold(name), fold(name.rsplit(".", 1)[-1]), "." in name)
            for name in evidence.exception_types
        ]
        max_metric = max((signal.score for signal in evidence.metric_anomalies), default=0.0)
        signals = [_Signal.of(signal, max_score=max_metric) for signal in evidence.metric_anomalies]
        services = [(service, fold(service)) for service in evidence.services]

        # Only signatures that something in the evidence can give a score are visited.
        with_text: set[int] = set()
        for probe in hit_probes:
            with_text.update(self._signatures_by_probe[probe])
        candidates = set(with_text)
        # a superset of the signatures a reported exception can score (one of theirs has the same full or
        # simple name): the exact rule is applied below
        by_reported: set[int] = set()
        for _, name_full, name_simple, _ in reported:
            by_reported.update(self._by_exception.get(name_full, ()))
            by_reported.update(self._by_exception.get(name_simple, ()))
        candidates.update(by_reported)
        named: list[list[_Signal]] = []
        if signals:
            # a piece in one signal's name is in all the names joined: most groups are ruled out at once
            everything = "\n".join(s.folded for s in signals)
            for group, synonyms in enumerate(self._synonym_groups):
                if not any(map(everything.__contains__, synonyms)):
                    named.append([])
                    continue
                found = [s for s in signals if any(map(s.folded.__contains__, synonyms))]
                named.append(found)
                if found:
                    candidates.update(self._signatures_by_group[group])

        # Explanations of metric hits and tags are only written for the matches returned.
        scored: list[tuple[float, int, str, list[str], Sequence[_Note], Signature]] = []
        tagged: dict[str, str | None] = {}
        metrics_met: dict[int, tuple[float | None, list[_Note]]] = {}
        for index in sorted(candidates):
            compiled = self._compiled[index]
            if index in with_text:
                parts, matched, seen_exceptions = _score_text_refs(compiled, hits)
            else:
                parts, matched, seen_exceptions = _NO_PARTS, [], _NO_EXCEPTIONS
            if index in by_reported:
                if parts is _NO_PARTS:
                    parts = [[], [], [], [], []]
                for full, simple, dotted in compiled.exception_names:
                    if full in seen_exceptions:
                        continue  # already counted from the log text; the report names the same exception
                    for name, name_full, name_simple, name_dotted in reported:
                        same = full == name_full or (simple == name_simple and not (dotted and name_dotted))
                        if same:
                            parts[_EXCEPTION].append(_EXCEPTION_QUALIFIED if dotted else _EXCEPTION_SIMPLE)
                            matched.append(f"exception '{_snippet(name)}' reported")
                            break
            notes: Sequence[_Note] = ()
            metric_left: float | None = None
            if named:
                conditions = self._metric_conditions[index]  # interned: equal conditions are one tuple
                met = metrics_met.get(id(conditions))
                if met is None:
                    met = metrics_met[id(conditions)] = _metrics_met(conditions, named)
                metric_left, notes = met
            # 1 - score: what each kind with evidence leaves unexplained, multiplied in the order of _CAPS (a kind
            # without evidence would multiply by exactly 1.0: leaving it out is exact).
            remaining = 1.0
            for slot in (_PATTERN, _EXCEPTION, _KEYWORD):
                if parts[slot]:
                    remaining *= 1.0 - min(_CAP_BY_SLOT[slot], _noisy_or(parts[slot]))
            if metric_left is not None:
                remaining *= metric_left
            if parts[_QUESTION]:
                remaining *= 1.0 - min(_CAP_BY_SLOT[_QUESTION], _noisy_or(parts[_QUESTION]))
            score = 1.0 - remaining
            if score <= 0.0:
                continue
            if services:  # with no services no tag can name one
                for tag in compiled.tags:
                    if tag not in tagged:
                        tagged[tag] = _tagged(tag, services)
                    service = tagged[tag]
                    if service is not None:
                        score = _noisy_or((score, _TAG_BONUS))
                        notes = [*notes, f"service '{service}' matches tag '{tag}'"]
                        break
            signature = compiled.signature
            # best score first, then the match with more explanations, then by id (ids are unique)
            scored.append(
                (-min(1.0, score), -len(matched) - len(notes), signature.id, matched, notes, signature)
            )
        # by (score, explanations, id) as the comments above say: ids are unique, so comparing whole tuples never
        # gets past the id, and it spares a key tuple per item
        scored.sort()
        return [
            RankedSignature(signature, -score, matched, notes)
            for score, _, _, matched, notes, signature in scored[:limit]
        ]

    def _run_probes(
        self,
        messages: Sequence[WeightedText],
        *,
        texts: Sequence[str],
        folded: Sequence[str],
        question: str,
        max_weight: float,
    ) -> tuple[list[_Hit | None], list[int]]:
        """Each probe's hit (None where it missed), and the indexes of the probes that hit."""
        probes = self._probes
        hits: list[_Hit | None] = [None] * len(probes)
        hit_probes: list[int] = []
        corpus = "\n".join(folded)
        corpus_grams = _grams(corpus) if messages else set()
        if messages:
            low_ascii: list[str] | None = None  # ignorecase_fold of each message, made when first needed
            low_corpus: str | None = None  # ignorecase_fold of the messages joined by newlines, likewise
            starts: list[int] = []  # where each folded message begins in the corpus
            start = 0
            for low in folded:
                starts.append(start)
                start += len(low) + 1
            for probe_index in self._log_prefilter.candidates(text=corpus, grams=corpus_grams):
                probe = probes[probe_index]
                regex = probe.regex
                hit: _Hit | None = None
                screen = self._screens.get(probe_index)
                if screen is None:
                    indexes = _containing(probe.literal, folded=folded, corpus=corpus, starts=starts)
                else:  # a regex can only match a message that holds one of its screen literals
                    if low_corpus is None:
                        low_corpus = ignorecase_fold("\n".join(texts))
                    # A screen literal in one message's ignorecase_fold is in that of all of them joined (it
                    # folds character by character): when none is there, no message needs a look.
                    if not any(map(low_corpus.__contains__, screen)):
                        continue
                    if low_ascii is None:
                        low_ascii = [ignorecase_fold(text) for text in texts]
                    indexes = [i for i, low in enumerate(low_ascii) if any(map(low.__contains__, screen))]
                for index in indexes:
                    text = texts[index]
                    if regex.search(text) is None:
                        continue
                    message = messages[index]
                    if hit is None:
                        hit = _Hit()
                    hit.mask |= 1 << index
                    hit.weight += message.weight
                    if message.count is not None:
                        hit.count += message.count
                        hit.counted = True
                    if message.weight > hit.best_weight:
                        hit.best_weight = message.weight
                        hit.best_text = text
                if hit is not None:
                    hit.factor = _evidence_factor(hit.weight, max_weight)
                    hits[probe_index] = hit
                    hit_probes.append(probe_index)
        if question:
            question_mask = 1 << len(messages)
            if len(texts) == 1 and texts[0] == question:
                # The question is the one message (a question matched on its own): every other probe was
                # just run on this very text, so only the question-only ones can still hit.
                candidates = self._question_only_prefilter.candidates(text=corpus, grams=corpus_grams)
            else:
                question_folded = fold(question)
                candidates = self._prefilter.candidates(text=question_folded, grams=_grams(question_folded))
            for probe_index in candidates:
                if hits[probe_index] is None and probes[probe_index].regex.search(question) is not None:
                    hits[probe_index] = _Hit(in_question=True, mask=question_mask)
                    hit_probes.append(probe_index)
        return hits, hit_probes


_MATCH_LIST: Final = TypeAdapter(list[SignatureMatch])


def _containing(literal: str, *, folded: Sequence[str], corpus: str, starts: Sequence[int]) -> Sequence[int]:
    """The indexes, in order, of the folded messages that contain ``literal`` (all of them when it is empty).

    ``corpus`` is the messages joined by newlines and ``starts`` where each begins in it. A literal without a
    newline cannot span two messages, so searching the corpus finds the same messages as testing each one,
    with a search per message that holds the literal instead of one per message.
    """
    if not literal:
        return range(len(folded))
    if "\n" in literal:
        return [index for index, low in enumerate(folded) if literal in low]
    found: list[int] = []
    last = len(starts) - 1
    position = corpus.find(literal)
    while position >= 0:
        index = bisect_right(starts, position) - 1
        found.append(index)
        if index == last:
            break
        position = corpus.find(literal, starts[index + 1])
    return found


# ---------------------------------------------------------------------------------------- loading


class _KnowledgeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int
    area: str | None = None
    description: str | None = None
    signatures: list[Any]

    @field_validator("schema_version")
    @classmethod
    def _check_schema(cls, value: int) -> int:
        if value != FILE_SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not supported (expected {FILE_SCHEMA_VERSION})")
        return value


def _format_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(piece) for piece in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


# The C loader (when PyYAML was built with libyaml) parses the shipped files several times faster.
_YamlLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document, keeping the node tree for line numbers."""
    loader = _YamlLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


def _entry_lines(node: yaml.Node | None, *, key: str | None) -> list[int]:
    """1-based line of each entry of the signature list (under ``key``, or the root sequence)."""
    target: yaml.Node | None = node
    if key is not None and isinstance(node, yaml.MappingNode):
        target = next(
            (value for name, value in node.value if isinstance(name, yaml.ScalarNode) and name.value == key),
            None,
        )
    if isinstance(target, yaml.SequenceNode):
        return [item.start_mark.line + 1 for item in target.value]
    return []


def _entry_label(raw: Any, position: int) -> str:
    label = f"signature #{position + 1}"
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        label += f" ({raw['id']!r})"
    return label


def _parse_entries(
    raw_entries: Sequence[Any],
    *,
    source_name: str,
    source_value: str,
    lines: Sequence[int],
    issues: list[ParseIssue],
    extra: Mapping[str, Any] | None = None,
) -> list[Signature]:
    signatures: list[Signature] = []
    for position, raw in enumerate(raw_entries):
        line = lines[position] if position < len(lines) else None
        label = _entry_label(raw, position)
        if not isinstance(raw, dict):
            issues.append(
                ParseIssue(source=source_name, line=line, level="error", message=f"{label}: not a mapping")
            )
            continue
        data = dict(raw)
        data.pop("source", None)
        data["source"] = source_value
        if extra:
            data.update(extra)
        try:
            signatures.append(Signature.model_validate(data))
        except ValidationError as exc:
            issues.append(
                ParseIssue(
                    source=source_name,
                    line=line,
                    level="error",
                    message=f"{label}: {_format_validation(exc)}",
                )
            )
    return signatures


def _yaml_error_issue(exc: yaml.YAMLError, *, source: str, first_line: int, what: str) -> ParseIssue:
    """The issue for YAML that does not parse: where (``first_line`` is the file line of the YAML's first
    line) and the parser's own words for what is wrong."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + first_line if mark is not None else None
    problem = getattr(exc, "problem", None) or "invalid YAML"
    return ParseIssue(source=source, line=line, level="error", message=f"{what}: {problem}")


def _parse_knowledge_text(
    text: str, *, source_name: str, source_value: str, issues: list[ParseIssue], allow_single: bool
) -> list[Signature]:
    """Signatures of one YAML knowledge file; problems go to ``issues`` (valid entries are kept)."""
    try:
        data, node = _parse_yaml(text)
    except yaml.YAMLError as exc:
        issues.append(_yaml_error_issue(exc, source=source_name, first_line=1, what="not valid YAML"))
        return []
    if allow_single and isinstance(data, dict) and "id" in data:
        return _parse_entries(
            [data],
            source_name=source_name,
            source_value=source_value,
            lines=[1],
            issues=issues,
        )
    if allow_single and isinstance(data, list):
        return _parse_entries(
            data,
            source_name=source_name,
            source_value=source_value,
            lines=_entry_lines(node, key=None),
            issues=issues,
        )
    try:
        document = _KnowledgeFile.model_validate(data)
    except ValidationError as exc:
        issues.append(ParseIssue(source=source_name, level="error", message=_format_validation(exc)))
        return []
    return _parse_entries(
        document.signatures,
        source_name=source_name,
        source_value=source_value,
        lines=_entry_lines(node, key="signatures"),
        issues=issues,
    )


def _split_front_matter(text: str) -> tuple[str, str, int] | None:
    """(front matter, body, line of the body) of a Markdown file, or None when it has no front matter."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :]), index + 2
    return None


def runbook_steps_from_markdown(body: str, *, source_name: str) -> list[NextStepTemplate]:
    """Steps from a runbook body: each heading whose section holds a fenced code block becomes a step.

    The first code block is the command; the first paragraph of prose in the section says why.
    """
    steps: list[NextStepTemplate] = []
    title: str | None = None
    prose: list[str] = []
    paragraph: list[str] = []
    code: list[str] | None = None
    command: str | None = None
    in_fence = False

    def finish() -> None:
        if title is not None and command:
            why = prose[0] if prose else f"Step from the team runbook {source_name}."
            steps.append(NextStepTemplate(title=title, command=command, why=why))

    def end_paragraph() -> None:
        if paragraph:
            prose.append(" ".join(paragraph))
            paragraph.clear()

    for raw_line in body.splitlines():
        line = raw_line.rstrip()
        if in_fence:
            if _FENCE_RE.match(line.strip()):
                in_fence = False
                if command is None and code is not None and "\n".join(code).strip():
                    command = "\n".join(code).strip()
                code = None
            elif code is not None:
                code.append(line)
            continue
        if _FENCE_RE.match(line.strip()):
            end_paragraph()
            in_fence = True
            code = []
            continue
        heading = _HEADING_RE.match(line)
        if heading:
            end_paragraph()
            finish()
            title, prose, command = heading.group(2), [], None
            continue
        if line.strip():
            paragraph.append(line.strip().lstrip("-*> ").strip() or line.strip())
        else:
            end_paragraph()
    end_paragraph()
    finish()
    return steps


def _parse_markdown_runbook(text: str, *, path: Path, issues: list[ParseIssue]) -> list[Signature]:
    source = str(path)
    parts = _split_front_matter(text)
    if parts is None:
        issues.append(
            ParseIssue(
                source=source,
                line=1,
                message="Markdown runbook has no YAML front matter between '---' lines; skipped",
            )
        )
        return []
    front, body, body_line = parts
    try:
        data, _node = _parse_yaml(front)
    except yaml.YAMLError as exc:
        issues.append(
            _yaml_error_issue(exc, source=source, first_line=2, what="front matter is not valid YAML")
        )
        return []
    if not isinstance(data, dict):
        issues.append(
            ParseIssue(
                source=source, line=2, level="error", message="front matter must be a mapping (a signature)"
            )
        )
        return []
    try:
        body_steps = runbook_steps_from_markdown(body, source_name=path.name)
    except ValidationError as exc:
        issues.append(
            ParseIssue(
                source=source,
                line=body_line,
                level="error",
                message=f"runbook body: {_format_validation(exc)}",
            )
        )
        body_steps = []
    raw = dict(data)
    front_steps = raw.get("next_steps") or []
    extra: dict[str, Any] = {"notes": body.strip()}
    if body_steps:
        if not isinstance(front_steps, list):
            front_steps = [front_steps]
        extra["next_steps"] = [*front_steps, *(step.model_dump() for step in body_steps)]
    return _parse_entries(
        [raw], source_name=source, source_value=source, lines=[2], issues=issues, extra=extra
    )


def load_runbook_file(path: Path, issues: list[ParseIssue]) -> list[Signature]:
    """Signatures of one team runbook file; problems are appended to ``issues``."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_RUNBOOK_BYTES:
            issues.append(
                ParseIssue(
                    source=source,
                    level="error",
                    message=f"runbook is {size} bytes, over the {MAX_RUNBOOK_BYTES}-byte limit; skipped",
                )
            )
            return []
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        issues.append(ParseIssue(source=source, level="error", message="runbook is not UTF-8 text; skipped"))
        return []
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        issues.append(ParseIssue(source=source, level="error", message=f"cannot read runbook: {reason}"))
        return []
    if path.suffix.lower() in (".md", ".markdown"):
        return _parse_markdown_runbook(text, path=path, issues=issues)
    return _parse_knowledge_text(
        text, source_name=source, source_value=source, issues=issues, allow_single=True
    )


def _load_runbook_dir(folder: Path, issues: list[ParseIssue]) -> list[Signature]:
    if not folder.is_dir():
        issues.append(
            ParseIssue(
                source=str(folder), level="error", message="runbook folder does not exist or is not a folder"
            )
        )
        return []
    files = sorted(
        path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in RUNBOOK_SUFFIXES
    )
    signatures: list[Signature] = []
    for path in files:
        signatures.extend(load_runbook_file(path, issues))
    return signatures


def _builtin_files() -> list[Traversable]:
    folder = resources.files("core").joinpath("knowledge")
    return sorted(
        (entry for entry in folder.iterdir() if entry.is_file() and entry.name.endswith(".yaml")),
        key=lambda entry: entry.name,
    )


@lru_cache(maxsize=1)
def _builtin_signatures() -> tuple[Signature, ...]:
    """Every shipped signature; raises :class:`KnowledgeFileError` naming each broken file and entry."""
    issues: list[ParseIssue] = []
    signatures: list[Signature] = []
    seen: dict[str, str] = {}
    for entry in _builtin_files():
        name = f"core/knowledge/{entry.name}"
        for signature in _parse_knowledge_text(
            entry.read_text(encoding="utf-8"),
            source_name=name,
            source_value=BUILTIN_SOURCE,
            issues=issues,
            allow_single=False,
        ):
            if signature.id in seen:
                issues.append(
                    ParseIssue(
                        source=name,
                        level="error",
                        message=f"signature id {signature.id!r} is already defined in {seen[signature.id]}",
                    )
                )
                continue
            seen[signature.id] = name
            signatures.append(signature)
    if issues:
        first = str(issues[0])
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise KnowledgeFileError(
            f"The built-in knowledge base is invalid: {first}{more}",
            issues=issues,
            detail="\n".join(str(issue) for issue in issues),
        )
    logger.debug("loaded %d built-in knowledge signatures", len(signatures))
    return tuple(signatures)

"""What a user's question asks about: the signal families it weighs and the services it names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from core.models import Category

# Words in a question → the signal family they point to. Families are matched against metric names and
# used to weigh anomalies and root-cause categories.
_FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "latency": (
        "slow",
        "latency",
        "latencies",
        "p99",
        "p95",
        "response time",
        "sluggish",
        "lag",
        "hang",
        "hanging",
    ),
    "errors": (
        "error",
        "errors",
        "failing",
        "fail",
        "failed",
        "5xx",
        "500",
        "502",
        "503",
        "504",
        "broken",
        "down",
    ),
    "cpu": ("cpu", "load", "throttl", "hot"),
    "memory": ("memory", "oom", "heap", "leak", "rss", "gc"),
    "disk": ("disk", "space", "volume", "inode", "storage"),
    "network": ("network", "unreachable", "connection refused", "packet", "dns", "resolve"),
    "restarts": ("restart", "crash", "crashloop", "crashing", "killed", "reboot"),
    "queue": ("queue", "backlog", "consumer lag", "kafka", "rabbit", "sqs"),
    "database": ("database", "db", "postgres", "mysql", "sql", "query", "deadlock"),
    "auth": ("auth", "login", "401", "403", "token", "permission", "credential"),
    "tls": ("tls", "ssl", "certificate", "cert", "x509", "handshake"),
    "deploy": ("deploy", "release", "rollout", "version", "upgrade", "rollback"),
    "capacity": ("pending", "schedul", "capacity", "quota", "evict"),
}

FAMILY_CATEGORIES: dict[str, tuple[Category, ...]] = {
    "latency": (Category.NETWORK_LATENCY, Category.TIMEOUT, Category.CPU_SATURATION, Category.DATABASE_ERROR),
    "cpu": (Category.CPU_SATURATION,),
    "memory": (Category.MEMORY_EXHAUSTION, Category.CRASH_LOOP),
    "disk": (Category.DISK_EXHAUSTION,),
    "network": (Category.NETWORK_UNREACHABLE, Category.DNS_FAILURE, Category.NETWORK_LATENCY),
    "restarts": (Category.CRASH_LOOP, Category.MEMORY_EXHAUSTION, Category.BAD_DEPLOY),
    "queue": (Category.QUEUE_BACKLOG,),
    "database": (Category.DATABASE_ERROR, Category.CONNECTION_POOL_EXHAUSTION),
    "auth": (Category.AUTH_FAILURE,),
    "tls": (Category.TLS_CERTIFICATE,),
    "deploy": (Category.BAD_DEPLOY, Category.CONFIGURATION_ERROR),
    "capacity": (Category.SCHEDULING_CAPACITY,),
}

# Metric-name fragments per family, used to weigh metric anomalies the question is about.
FAMILY_METRIC_HINTS: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "duration", "response_time", "p99", "p95", "rtt"),
    "errors": ("error", "5xx", "fail"),
    "cpu": ("cpu", "load"),
    "memory": ("mem", "heap", "rss"),
    "disk": ("disk", "fs_", "filesystem", "inode", "volume"),
    "network": ("network", "net_", "packet", "tcp"),
    "queue": ("lag", "queue", "backlog", "depth"),
    "database": ("db_", "connections", "pool"),
}

_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def _is_phrase(word: str) -> bool:
    """Phrases and words with punctuation are looked for as plain substrings, see :func:`_mentions`."""
    return " " in word or not word.isalnum()


def _family_probe(words: Sequence[str]) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """A family's words as :func:`_mentions` checks them, in one go: the phrases, and one regex for the
    other words (each must start where no letter or digit precedes it)."""
    phrases = tuple(word for word in words if _is_phrase(word))
    plain = [re.escape(word) for word in words if not _is_phrase(word)]
    regex = re.compile(rf"(?<![a-z0-9])(?:{'|'.join(plain)})") if plain else None
    return phrases, regex


_FAMILY_PROBES = {family: _family_probe(words) for family, words in _FAMILY_WORDS.items()}


class Focus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    families: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)

    @property
    def categories(self) -> set[Category]:
        out: set[Category] = set()
        for family in self.families:
            out.update(FAMILY_CATEGORIES.get(family, ()))
        return out

    def matches_metric(self, name: str) -> bool:
        lowered = name.lower()
        return any(
            hint in lowered for family in self.families for hint in FAMILY_METRIC_HINTS.get(family, ())
        ) or any(service in lowered for service in self.services)


def parse_focus(question: str, *, known_services: Iterable[str] = ()) -> Focus:
    """Read the signal families and the known services a question mentions."""
    text = question.lower()
    families = [
        family
        for family, (phrases, regex) in _FAMILY_PROBES.items()
        if any(phrase in text for phrase in phrases) or (regex is not None and regex.search(text))
    ]
    words = _WORD.findall(text)
    services: list[str] = []
    for service in known_services:
        name = service.lower()
        if name and (_mentions(text, name) or name.replace("-", " ") in text):
            services.append(service)
    return Focus(families=families, services=services, words=words)


def _mentions(text: str, word: str) -> bool:
    if _is_phrase(word):
        return word in text
    return re.search(rf"(?<![a-z0-9]){re.escape(word)}", text) is not None

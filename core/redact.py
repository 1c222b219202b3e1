"""Secret and personal-data redaction, applied to everything before it can reach an LLM or a log line.

Each finding is replaced by a typed marker, ``[REDACTED:<kind>]``, and the context around it is kept
(``postgres://app:[REDACTED:password]@db:5432/orders``) so the text stays useful for troubleshooting.

The rules are regular expressions compiled once at import; a :class:`Redactor` only holds options, so one
instance can be reused across any number of strings and threads. Redaction is idempotent: markers are never
matched again, and redacting redacted text changes nothing.

What it catches: cloud and SaaS credentials with a recognisable shape (AWS, GitHub, Slack, OpenAI, Stripe,
Google), JWTs, bearer tokens and ``Authorization`` headers, passwords in URLs and connection strings,
PEM private keys, generic ``password=`` / ``"token": ...`` / ``?api_key=`` pairs whose key names a secret,
e-mail addresses, and optionally IPv4/IPv6 addresses. What it cannot catch: a secret with no recognisable
shape written without a telling key name (``connect("hunter2")``).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

MARKER_PREFIX = "[REDACTED:"
_MARKER_RE = re.compile(r"\[REDACTED:[a-z0-9_]+\]")


def marker(kind: str) -> str:
    return f"{MARKER_PREFIX}{kind}]"


class RedactionResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    counts: dict[str, int] = Field(default_factory=dict, description="Findings by kind, e.g. {'email': 2}.")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


_Replacer = Callable[[re.Match[str]], str | None]
"""Returns the replacement for a match, or None to leave the match as it is."""


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    replace: _Replacer
    resume_after: str | None = None
    """When a match is left alone, scanning resumes after this group instead of after the whole match, so a
    harmless pair cannot hide a secret in its value (``msg=token=abc``)."""
    needs: tuple[str, ...] = ()
    """Literals of which every match contains at least one (lower case when ``folded``): a text holding
    none of them is skipped without running the pattern. Empty: always run."""
    folded: bool = False
    """The pattern ignores case: ``needs`` are checked against the lower-cased text, and only when the text
    is ASCII (Unicode case folding has pairs such as the Kelvin sign and ``k`` that ``lower`` does not
    make equal to what the pattern matches)."""


def _whole(kind: str) -> _Replacer:
    def replace(match: re.Match[str]) -> str | None:
        if match.group(0).startswith(MARKER_PREFIX):
            return None
        return marker(kind)

    return replace


def _group(kind: str, group: str) -> _Replacer:
    """Replace only the named group, keeping the rest of the match (scheme, user, header name...)."""

    def replace(match: re.Match[str]) -> str | None:
        value = match.group(group)
        if not value or value.startswith(MARKER_PREFIX):
            return None
        start, end = match.span(group)
        base = match.start()
        whole = match.group(0)
        return whole[: start - base] + marker(kind) + whole[end - base :]

    return replace


# --- generic key/value pairs ---------------------------------------------------------------------------------

_SECRET_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("password", "password"),
    ("passwd", "password"),
    ("passphrase", "password"),
    ("pwd", "password"),
    ("apikey", "api_key"),
    ("accesskey", "api_key"),
    ("secretkey", "secret"),
    ("privatekey", "private_key"),
    ("signingkey", "secret"),
    ("encryptionkey", "secret"),
    ("clientsecret", "secret"),
    ("secret", "secret"),
    ("token", "token"),
    ("credential", "secret"),
    ("credentials", "secret"),
    ("sessionid", "token"),
    ("cookie", "token"),
)
_KEY_SEPARATORS = re.compile(r"[_.\-\s]+")


@lru_cache(maxsize=4096)
def _secret_kind_for_key(key: str) -> str | None:
    """The marker kind for a key that names a secret (``DB_PASSWORD``, ``clientSecret``, ``x-api-key``)."""
    words = [w for w in _KEY_SEPARATORS.split(key.lower()) if w]
    if not words:
        return None
    if words[-1] == "pass":
        return "password"
    joined = "".join(words)
    for suffix, kind in _SECRET_SUFFIXES:
        if joined.endswith(suffix):
            return kind
    return None


_KV_RE = re.compile(
    r"""(?P<key>(?<![A-Za-z0-9_.\-?&])[A-Za-z_][A-Za-z0-9_.\-]{0,80})
        (?P<sep>["']?[ \t]*[:=](?!//)[ \t]*)
        (?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,;"'}\])<>]+)""",
    re.VERBOSE,
)
# In a URL query string '&' and '#' end a value; elsewhere '&' may be part of a password.
_QUERY_KV_RE = re.compile(
    r"(?P<key>(?<=[?&])[A-Za-z_][A-Za-z0-9_.\-]{0,80})(?P<sep>=)(?P<value>[^\s&#\"'<>]+)"
)


def _replace_kv(match: re.Match[str]) -> str | None:
    key = match.group("key")
    kind = _secret_kind_for_key(key)
    if kind is None:
        return None
    value = match.group("value")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    inner = value[1:-1] if quote and len(value) >= 2 else value
    if not inner or inner.startswith(MARKER_PREFIX) or inner.startswith("//"):
        # Empty, already redacted, or a URL scheme ("password_reset_url: https://..."), handled elsewhere.
        return None
    return f"{key}{match.group('sep')}{quote}{marker(kind)}{quote}"


# --- IP addresses ----------------------------------------------------------------------------------------------

_IPV4_RE = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)"
)
_IPV6_CANDIDATE_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?:%[\w.]+)?(?![\w:])"
)


def _replace_ipv6(match: re.Match[str]) -> str | None:
    candidate = match.group(0).split("%", 1)[0]
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return None
    return marker("ipv6")


# --- the rules, in order: multi-line and structural first, generic last -----------------------------------

_RULES: tuple[_Rule, ...] = (
    _Rule(
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
        _whole("private_key"),
        needs=("-----BEGIN ",),
    ),
    _Rule(
        "password",
        # scheme://user:password@host — the user and host stay; RFC 3986 forbids '/', '?', '#' unencoded.
        re.compile(r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)(?P<secret>[^\s@/?#]+)(?=@)"),
        _group("password", "secret"),
        needs=("://",),
    ),
    _Rule(
        "authorization",
        re.compile(
            r"(?i)(?P<name>\b(?:proxy-)?authorization)(?P<sep>[\"']?[ \t]*[:=][ \t]*[\"']?)"
            r"(?P<scheme>(?:bearer|basic|token|digest|negotiate|apikey|sso-key|aws4-hmac-sha256|hmac)[ \t]+)?"
            r"(?P<secret>[^\r\n\"']+)"
        ),
        _group("authorization", "secret"),
        needs=("authorization",),
        folded=True,
    ),
    _Rule(
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]+"),
        _whole("slack_webhook"),
        needs=("https://hooks.slack.com/",),
    ),
    _Rule(
        "jwt",
        re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
        _whole("jwt"),
        needs=(".eyJ",),
    ),
    _Rule(
        "aws_access_key",
        re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}"),
        _whole("aws_access_key"),
        needs=("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "A3T"),
    ),
    _Rule(
        "aws_secret_key",
        re.compile(
            r"(?i)(?P<key>aws_?secret_?(?:access_?)?key|secret_?access_?key)(?P<sep>[\"']?[ \t]*[:=][ \t]*[\"']?)"
            r"(?P<secret>(?-i:[A-Za-z0-9/+=]{40}))"
        ),
        _group("aws_secret_key", "secret"),
        needs=("key",),
        folded=True,
    ),
    _Rule(
        "github_token",
        re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}"),
        _whole("github_token"),
        needs=("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    _Rule(
        "github_token",
        re.compile(r"github_pat_[A-Za-z0-9_]{22,255}"),
        _whole("github_token"),
        needs=("github_pat_",),
    ),
    _Rule(
        "slack_token",
        re.compile(r"xox[abposer]-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,}"),
        _whole("slack_token"),
        needs=("xox", "xapp-"),
    ),
    _Rule(
        "stripe_key",
        re.compile(r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,}"),
        _whole("stripe_key"),
        needs=("sk_", "rk_", "whsec_"),
    ),
    _Rule(
        "openai_key",
        re.compile(r"(?<![A-Za-z0-9])sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}"),
        _whole("openai_key"),
        needs=("sk-",),
    ),
    _Rule(
        "google_api_key",
        re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
        _whole("google_api_key"),
        needs=("AIza",),
    ),
    _Rule(
        "bearer_token",
        re.compile(
            r"(?i)(?P<scheme>\bbearer[ \t]+)(?P<secret>(?=[A-Za-z0-9._~+/\-]*\d)[A-Za-z0-9][A-Za-z0-9._~+/\-]{15,}=*)"
        ),
        _group("bearer_token", "secret"),
        needs=("bearer",),
        folded=True,
    ),
    _Rule(
        "password",
        # Command-line flags with a separate value: `--password hunter2`, `-p hunter2` is too ambiguous.
        re.compile(
            r"(?P<flag>--(?:[a-z]+-)*(?:password|passwd|token|secret|api-key)[ \t]+)(?P<secret>[^\s-][^\s]*)"
        ),
        _group("password", "secret"),
        needs=("--",),
    ),
    _Rule("secret", _QUERY_KV_RE, _replace_kv, resume_after="sep", needs=("=",)),
    _Rule("secret", _KV_RE, _replace_kv, resume_after="sep", needs=(":", "=")),
    _Rule(
        "email",
        re.compile(r"(?<![\w.%+\-/])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"),
        _whole("email"),
        needs=("@",),
    ),
)

_IP_RULES: tuple[_Rule, ...] = (
    _Rule("ipv6", _IPV6_CANDIDATE_RE, _replace_ipv6, needs=(":",)),
    _Rule("ipv4", _IPV4_RE, _whole("ipv4"), needs=(".",)),
)


def _kind_of(replacement: str, rule: _Rule) -> str:
    found: list[str] = _MARKER_RE.findall(replacement)
    if found:
        return found[-1][len(MARKER_PREFIX) : -1]
    return rule.kind


class Redactor:
    """Redacts secrets (and optionally IP addresses) from text. Cheap to build, safe to share."""

    def __init__(self, *, redact_ips: bool = False) -> None:
        self.redact_ips = redact_ips
        self._rules = _RULES + (_IP_RULES if redact_ips else ())

    def redact(self, text: str) -> RedactionResult:
        return RedactionResult(text=text, counts={}) if not text else _redact_with(self._rules, text)

    def clean(self, text: str) -> str:
        """The redacted text alone, for callers that do not need counts."""
        return self.redact(text).text

    @staticmethod
    def _apply(rule: _Rule, text: str, counts: Counter[str]) -> str:
        pieces: list[str] = []
        last = 0
        pos = 0
        # Only markers that were in the text before this rule ran can overlap its matches: replacements go
        # to `pieces`, and the search continues after them.
        check_markers = MARKER_PREFIX in text
        while (match := rule.pattern.search(text, pos)) is not None:
            start, end = match.span()
            replacement = None if check_markers and _inside_marker(text, start, end) else rule.replace(match)
            if replacement is None:
                resume = match.end(rule.resume_after) if rule.resume_after else end
                pos = max(resume, start + 1)
                continue
            pieces.append(text[last:start])
            pieces.append(replacement)
            counts[_kind_of(replacement, rule)] += 1
            last = pos = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)


def _redact_with(rules: tuple[_Rule, ...], text: str, *, screen: bool = True) -> RedactionResult:
    """Apply ``rules`` in order; with ``screen``, a rule whose ``needs`` the current text lacks is skipped
    (the result is the same: such a rule cannot match)."""
    counts: Counter[str] = Counter()
    lowered: str | None = None  # of the current text, when it is ASCII; recomputed after a change
    lowered_of: str | None = None
    for rule in rules:
        if screen and rule.needs:
            haystack: str | None = text
            if rule.folded:
                if lowered_of is not text:
                    lowered_of = text
                    lowered = text.lower() if text.isascii() else None
                haystack = lowered
            if haystack is not None and not any(literal in haystack for literal in rule.needs):
                continue
        text = Redactor._apply(rule, text, counts)
    return RedactionResult(text=text, counts=dict(counts))


def _inside_marker(text: str, start: int, end: int) -> bool:
    """Whether [start, end) overlaps a marker already in the text (markers are never re-redacted)."""
    window_start = max(0, start - 40)
    for found in _MARKER_RE.finditer(text, window_start, min(len(text), end + 40)):
        if found.start() < end and start < found.end():
            return True
    return False


def redact(text: str, *, redact_ips: bool = False) -> RedactionResult:
    """Redact secrets from ``text``; see the module docstring for what is caught."""
    return Redactor(redact_ips=redact_ips).redact(text)

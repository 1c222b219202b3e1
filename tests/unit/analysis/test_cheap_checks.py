"""The cheap checks that stand in front of slower ones must never change an outcome.

* suspects: the substring anchors checked before the case-insensitive alternations (``_VICTIM``,
  ``_NAMED_PEER``) and the other peer regexes must hold on every text the regex matches;
* focus: the per-family combined regex must find exactly the families the word-by-word check finds;
* knowledge base: a signature checked against pre-folded texts decides as it does on each raw text;
* log anomalies: the crash screen (literals first) names the same crash signature as the plain check.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import focus, suspects
from core.anomalies import logs as log_anomalies
from core.knowledge_base import (
    METRIC_SYNONYMS,
    EvidenceProfile,
    FoldedTexts,
    KnowledgeBase,
    WeightedText,
    ignorecase_fold,
    required_literals,
)
from core.stacktraces import _CRASH_PATTERNS, crash_signature

# Characters that re.IGNORECASE treats specially, capitals, and separators the regexes care about.
_TRICKY = [
    "\u0130",
    "\u0131",
    "\u017f",
    "\u212a",
    "I",
    "S",
    "K",
    "T",
    "ẞ",
    "\n",
    " ",
    ":",
    "/",
    "-",
    ".",
    "=",
    "٣",
    "5",
]


def _pieces(regex: re.Pattern[str]) -> list[str]:
    """Literal-ish fragments of a regex's source, to build texts that come near to matching it."""
    parts = [p for p in re.split(r"[\\()\[\]|?*+{}^$]|\(\?:", regex.pattern) if p and len(p) > 1]
    return parts + [p.upper() for p in parts] + [p.title() for p in parts]


def _texts_near(regex: re.Pattern[str]) -> st.SearchStrategy[str]:
    chunk = st.one_of(
        st.sampled_from(_pieces(regex)),
        st.sampled_from(_TRICKY),
        st.text(alphabet=string.ascii_letters + string.digits + " :/._-", max_size=6),
        st.text(max_size=3),
    )
    return st.lists(chunk, max_size=10).map("".join)


def _mangle(text: str) -> str:
    """The same letters as re.IGNORECASE sees them, spelled with the non-ASCII characters it equates."""
    return text.replace("i", "\u0130").replace("s", "\u017f").replace("k", "\u212a")


def test_fold_maps_exactly_the_characters_ignorecase_equates_with_ascii_letters() -> None:
    letter = re.compile("[a-z]", re.IGNORECASE)
    special = [chr(c) for c in range(128, 0x110000) if letter.fullmatch(chr(c))]
    assert sorted(special) == sorted(["\u0130", "\u0131", "\u017f", "\u212a"])
    # one character for one character, so positions in the folded text are positions in the text
    assert all(len(ignorecase_fold(chr(c))) == 1 for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for char in special:
        folded = ignorecase_fold(char)
        assert len(folded) == 1 and folded in string.ascii_lowercase
        assert re.fullmatch(re.escape(folded), char, re.IGNORECASE)


@pytest.mark.parametrize(
    "text",
    [
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        "GET /api/cart 502 Bad Gateway",
        "call to payments TIMED OUT after 5000ms",
        "x509: certificate has expired or is not yet valid",
        "dial tcp 10.0.3.7:5432: i/o timeout",
        "Circuit Breaker OPEN for inventory",
        "SSLHandshakeException: PKIX path building failed",
        "Deadline Exceeded while calling ledger",
        "no healthy upstream",
        "ERROR calling pricing: remote end closed connection without response",
    ],
)
def test_victim_anchors_hold_on_real_victim_messages(text: str) -> None:
    for variant in (text, text.upper(), _mangle(text), _mangle(text.upper())):
        if suspects._VICTIM.search(variant):
            assert suspects._mentions_any(ignorecase_fold(variant), suspects._VICTIM_ANCHORS), variant
    assert suspects._VICTIM.search(text)


def test_victim_anchors_rule_out_plain_messages() -> None:
    text = "java.lang.OutOfMemoryError: Java heap space"
    assert not suspects._mentions_any(ignorecase_fold(text), suspects._VICTIM_ANCHORS)
    assert suspects._VICTIM.search(text) is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts_near(suspects._VICTIM))
def test_victim_anchors_never_reject_a_match(text: str) -> None:
    for variant in (text, _mangle(text)):
        if suspects._VICTIM.search(variant):
            assert suspects._mentions_any(ignorecase_fold(variant), suspects._VICTIM_ANCHORS), variant


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts_near(suspects._NAMED_PEER), st.sampled_from(["", "peer-db.svc", "backend-01", "10.1.2.3:80"]))
def test_peer_prefilters_never_reject_a_match(text: str, tail: str) -> None:
    for variant in (text + tail, _mangle(text) + tail, tail + " " + text):
        for regex in (suspects._URL_HOST, suspects._HOST_PORT, suspects._NAMED_PEER):
            if regex.search(variant):
                assert suspects._may_match(regex, variant), (regex.pattern, variant)


def test_peers_are_still_found_behind_the_prefilters() -> None:
    text = "failed connecting to payments-db.prod:5432; upstream=https://ledger.internal/api; Host: cart-svc"
    assert suspects._peers(text) == {"payments-db.prod", "ledger.internal", "cart"}
    assert suspects._peers("OutOfMemoryError: Java heap space") == set()


def _families_word_by_word(text: str) -> list[str]:
    lowered = text.lower()
    return [
        family
        for family, words in focus._FAMILY_WORDS.items()
        if any(focus._mentions(lowered, word) for word in words)
    ]


_FOCUS_WORDS = sorted({word for words in focus._FAMILY_WORDS.values() for word in words})


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_FOCUS_WORDS),
            st.sampled_from(["x", "re", "9", "_", "-", " ", "İ", "over", "un"]),
            st.text(max_size=4),
        ),
        max_size=8,
    ).map("".join)
)
def test_focus_families_equal_the_word_by_word_check(text: str) -> None:
    assert focus.parse_focus(text).families == _families_word_by_word(text)


def test_focus_families_of_a_real_question() -> None:
    question = "checkout pods keep restarting since the 14:05 deploy, what is going on?"
    assert focus.parse_focus(question).families == ["restarts", "deploy"]
    assert focus.parse_focus("p99 latency and 503s from payments db").families == [
        "latency",
        "errors",
        "database",
    ]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def test_matches_any_agrees_with_matches_text(kb: KnowledgeBase) -> None:
    texts = [
        "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
        "java.lang.OutOfMemoryError: Java heap space",
        "x509: certificate has expired or is not yet valid",
        "GET /api/cart 200 41ms",
        "Back-off restarting failed container checkout in pod checkout-7f9c",
        "",
    ]
    together = FoldedTexts.of(texts)
    for signature in kb.signatures:
        expected = [signature.matches_text(text) for text in texts]
        assert [signature.matches_any(FoldedTexts.of([text])) for text in texts] == expected
        assert signature.matches_any(together) == any(expected)
    assert sum(s.matches_any(together) for s in kb.signatures) >= 3


def test_matches_metric_reads_the_synonyms_of_each_condition(kb: KnowledgeBase) -> None:
    for signature in kb.signatures:
        for condition in signature.metric_conditions:
            metric = condition.metric.lower()
            for piece in METRIC_SYNONYMS.get(metric, (metric,)):
                assert signature.matches_metric(f"node_{piece.upper()}_total")
    assert not any(s.matches_metric("zzz_qqq") for s in kb.signatures)


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("OOMKilled|oom-kill", ("oomkilled", "oom-kill")),
        (r"\b(?:Started \S+ in|Booting worker)", ("started ", "booting worker")),
        ("abc|(?:de|fg)", ("abc", "de", "fg")),
        ("(?:de|fg)h", ()),  # a group followed by more: not looked into
        ("(?=ab)", ()),  # lookarounds match no text of their own
        ("(?!ab)x|cd", ()),
        ("(?:ab|cd)?", ()),
        ("ab|[xy]", ()),
        ("(?x) a b | c d", ()),
    ],
)
def test_required_literals(pattern: str, literals: tuple[str, ...]) -> None:
    assert required_literals(pattern) == literals


_CRASH_TEXTS = [
    "Back-off restarting failed container checkout in pod checkout-7f9c",
    "Last State: Terminated Reason: OOMKilled Exit Code: 137",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "Started CheckoutApplication in 6.2 seconds (JVM running for 7.1)",
    "Received signal SIGTERM; Shutting down gracefully",
    "container exited with exit code 1",
    "java.lang.OutOfMemoryError: Java heap space",
    "",
]


@pytest.mark.parametrize("text", _CRASH_TEXTS)
def test_crash_screen_names_the_same_signature(text: str) -> None:
    for variant in (text, text.upper(), _mangle(text), _mangle(text.upper())):
        assert log_anomalies._crash_kind(variant) == crash_signature(variant), variant


def test_crash_screen_covers_every_pattern() -> None:
    assert [name for name, _, _ in log_anomalies._CRASH_SCREEN] == [name for name, _ in _CRASH_PATTERNS]
    assert all(literals for _, _, literals in log_anomalies._CRASH_SCREEN)


_CRASH_PIECES = [
    piece
    for _, pattern in _CRASH_PATTERNS
    for piece in re.split(r"[\\()\[\]|?*+{}^$]|\(\?:", pattern.pattern)
    if len(piece) > 1
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.sampled_from(_CRASH_PIECES), st.sampled_from(_TRICKY), st.text(max_size=4)), max_size=8
    ).map("".join)
)
def test_crash_screen_agrees_with_crash_signature(text: str) -> None:
    for variant in (text, text.upper(), _mangle(text)):
        assert log_anomalies._crash_kind(variant) == crash_signature(variant)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted({p for s in KnowledgeBase.load().signatures for p in s.patterns})), st.data())
def test_required_literals_hold_on_every_match(pattern: str, data: st.DataObject) -> None:
    literals = required_literals(pattern)
    pieces = [piece for piece in re.split(r"[\\()\[\]|?*+{}^$.]", pattern) if piece]
    chunk = st.one_of(st.sampled_from(pieces or ["x"]), st.text(max_size=5), st.sampled_from(_TRICKY))
    text = data.draw(st.lists(chunk, max_size=8).map("".join))
    for variant in (text, _mangle(text), text.upper()):
        if literals and re.search(pattern, variant, re.IGNORECASE):
            assert any(literal in ignorecase_fold(variant) for literal in literals), (pattern, variant)


_QUESTION_WORDS = sorted(
    {word for s in KnowledgeBase.load().signatures for word in [*s.question_keywords, *s.keywords][:3]}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.sampled_from(_QUESTION_WORDS), st.sampled_from([" ", "? ", "the ", "OOMKilled "])),
        min_size=1,
        max_size=8,
    ).map("".join)
)
def test_question_matched_alone_scores_as_in_the_general_path(question: str) -> None:
    """A question that is also the only message skips re-running the log probes on the question; an empty
    extra message (which nothing can match) forces the general path, which must give the same matches."""
    kb = _KB
    alone = EvidenceProfile(question=question, messages=[WeightedText(text=question)])
    general = EvidenceProfile(
        question=question, messages=[WeightedText(text=question), WeightedText(text="", weight=0.0)]
    )
    assert kb.match(alone, limit=6) == kb.match(general, limit=6)


_KB = KnowledgeBase.load()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts_near(suspects._NAMED_PEER), st.sampled_from(["", " to payments-db.svc", " backend=cart-01 x"]))
def test_named_peer_scan_finds_what_finditer_finds(text: str, tail: str) -> None:
    for variant in (text + tail, _mangle(text + tail), (text + tail).upper()):
        expected = [(m.span(), m.group(1)) for m in suspects._NAMED_PEER.finditer(variant)]
        assert [(m.span(), m.group(1)) for m in suspects._named_peer_matches(variant)] == expected

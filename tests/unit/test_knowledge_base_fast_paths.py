"""The knowledge base's cheap paths agree with the plain checks they stand for: regexes compiled with their
leading lookbehind moved after the literal, the corpus search for the messages holding a literal, matchers
narrowed to what occurs in a batch of texts, and the knowledge base's prepared matchers."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import knowledge_base as kbmod
from core.knowledge_base import (
    EvidenceProfile,
    FoldedTexts,
    KnowledgeBase,
    MetricSignal,
    SignatureMatcher,
    WeightedText,
    fold,
)

_KB = KnowledgeBase.load()
_WORDS = sorted({word for s in _KB.signatures for word in [*s.keywords, *s.question_keywords]})
_EXCEPTIONS = sorted({name for s in _KB.signatures for name in s.exception_types})
# Characters around a word that the lookbehinds and lookaheads care about, and ones re.IGNORECASE treats
# specially.
_EDGES = ["", " ", "x", "_", ".", "$", "-", "s", "es", "9", "\u0130", "\u0131", "\u017f", "\u212a", "\n", "é"]


def _variants(text: str) -> list[str]:
    return [text, text.upper(), text.lower(), text.swapcase()]


# what may stand before or after the word: edge characters and short arbitrary text
_AROUND = st.lists(st.one_of(st.sampled_from(_EDGES), st.text(max_size=3)), max_size=3).map("".join)


def _assert_same_spans(regex: kbmod._Regex, texts: list[str]) -> None:
    """The regex as written and the form that is compiled match at the same places in every text."""
    written = re.compile(regex.source, re.IGNORECASE)
    compiled = re.compile(regex.compiled, re.IGNORECASE)
    for text in texts:
        assert [m.span() for m in written.finditer(text)] == [m.span() for m in compiled.finditer(text)], text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_WORDS),
    _AROUND,
    _AROUND,
)
def test_word_regex_compiled_form_matches_where_the_written_one_does(
    word: str, before: str, after: str
) -> None:
    _assert_same_spans(
        kbmod._word_regex(word), _variants(before + word + after) + _variants(before + after + word)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_EXCEPTIONS),
    _AROUND,
    _AROUND,
)
def test_exception_regex_compiled_form_matches_where_the_written_one_does(
    name: str, before: str, after: str
) -> None:
    texts = _variants(before + name + after) + _variants(f"at {before}{name}{after}: boom")
    _assert_same_spans(kbmod._exception_regex(name), texts)


def test_written_forms_are_the_probe_keys() -> None:
    """The regex as written identifies a probe (so probes dedupe as they always did); the compiled form is
    only how it runs."""
    assert kbmod._word_regex("heap space").source == r"(?<!\w)heap\ space(?:s|es)?(?!\w)"
    assert kbmod._exception_regex("a.B").source == r"(?<![\w.$])a\.B(?![\w$])"
    assert kbmod._word_regex("oom").compiled == r"oom(?<!\woom)(?:s|es)?(?!\w)"


_PIECES = ["oom", "heap", "x\ny", "\n", "", "OOM", "ab", "b", "ba", "é", "İ"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_PIECES), max_size=5).map("".join), max_size=8),
    st.sampled_from(["", "oom", "ab", "a", "x\ny", "\n", "b\nb", "heap", "aba"]),
)
def test_messages_containing_a_literal_are_the_ones_a_per_message_check_finds(
    messages: list[str], literal: str
) -> None:
    folded = [fold(text) for text in messages]
    corpus = "\n".join(folded)
    starts = []
    start = 0
    for low in folded:
        starts.append(start)
        start += len(low) + 1
    expected = [index for index, low in enumerate(folded) if not literal or literal in low]
    assert list(kbmod._containing(literal, folded=folded, corpus=corpus, starts=starts)) == expected


_SAMPLES = [
    "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
    "java.lang.OutOfMemoryError: Java heap space",
    "x509: certificate has expired or is not yet valid",
    "GET /api/cart 200 41ms",
    "Back-off restarting failed container checkout in pod checkout-7f9c",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "FATAL:  sorry, too many clients already",
    "",
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_SAMPLES), min_size=1, max_size=4), st.data())
def test_a_narrowed_matcher_answers_as_the_full_one(batch: list[str], data: st.DataObject) -> None:
    everything = "\n".join(FoldedTexts.of([text]).joined for text in batch)
    subset = data.draw(st.lists(st.sampled_from(batch), max_size=3))
    texts = FoldedTexts.of(subset)
    for signature in _KB.signatures:
        full = SignatureMatcher.of(signature)
        narrowed = full.within(everything)
        assert narrowed.matches_any(texts) == full.matches_any(texts) == signature.matches_any(texts)
        if not narrowed.checks_text:
            assert not any(signature.matches_text(text) for text in batch)


def test_the_prepared_matchers_are_the_signatures_own() -> None:
    for signature in _KB.signatures:
        assert _KB.matcher(signature) == SignatureMatcher.of(signature)
    changed = _KB.signatures[0].model_copy(update={"patterns": ["zzz-never-seen"]})
    assert _KB.matcher(changed).matches_any(FoldedTexts.of(["ZZZ-never-seen here"]))


@pytest.mark.parametrize(
    "names",
    [
        ["memory_usage", "cpu_usage", "error_rate"],
        ["gc_pause_ms", "pool.active_connections"],
        ["zzz"],
        ["disk_io_time\nqueue"],  # a name with a newline cannot pass as two
    ],
)
def test_metric_groups_are_found_per_signal(names: list[str]) -> None:
    """The synonym groups of signals screened together over all names give each signal's own groups."""
    profile = EvidenceProfile(
        metric_anomalies=[MetricSignal(name=name, score=1.0 + i) for i, name in enumerate(names)]
    )
    matches = _KB.match(profile, limit=200)
    for match in matches:
        met = [n for n in match.matched if n.startswith("metric '")]
        assert met, match.signature.id
        for note in met:
            named = note.split("'")[3]  # notes show names with their whitespace flattened
            signal = next(n for n in names if " ".join(n.split()) == named)
            assert SignatureMatcher.of(match.signature).matches_metric(signal)


def test_match_explanations_of_one_hit_are_written_once_and_alike() -> None:
    profile = EvidenceProfile(
        messages=[
            WeightedText(text="java.lang.OutOfMemoryError: Java heap space", weight=4.0, count=7),
            WeightedText(text="GC overhead limit exceeded", weight=1.0),
        ]
    )
    first = _KB.match(profile, limit=25)
    again = _KB.match(profile, limit=25)
    assert first == again
    notes = [n for m in first for n in m.matched if "OutOfMemoryError: Java heap space'" in n]
    assert notes and all(n.endswith("(x7)") for n in notes)


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("UndefinedColumn|UndefinedTable", ("undefinedcolumn", "undefinedtable")),
        (r"(environment variable|env var) \S+ (is )?(not set|missing)", ("environment variable", "env var")),
        (r"(?:env var|setting) \S+ x", ("env var", "setting")),
        (r"(?:env var|setting) \S+ missing", (" missing",)),  # one literal is proof enough
        (r"(environment variable|env var)? \S+ missing", (" missing",)),  # an optional group proves nothing
        (r"(env var|setting)+ \S+", ()),
        (r"(env var|setting) x|y", ()),  # another alternative needs neither
        (r"(?=env var)\S+", ()),
        ("(Überlauf|overflow) x", ("berlauf", "overflow")),  # runs of ASCII between other characters
        # a later group that must match is looked into when the earlier ones prove nothing
        (r"^(?!(java|org)\.)(\w+\.)*\w+(Error|Exception):", ("error", "exception")),
        (r"(\w+\.)*(env var|setting)+ (is|was)\b", ("is", "was")),
        (r"\S+ (env var|setting)", ()),  # a group at the very end is not looked into
        (r"(?i)\S+ (?P<name>env var|setting) x", ()),  # nor are flags or named groups
    ],
)
def test_screen_literals(pattern: str, literals: tuple[str, ...]) -> None:
    assert kbmod.screen_literals(pattern) == literals


_SCREENED = sorted(
    {
        p
        for s in _KB.signatures
        for p in s.patterns
        if not kbmod.analyse_pattern(p)[0] and kbmod.screen_literals(p)
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SCREENED), st.data())
def test_screen_literals_hold_on_every_match(pattern: str, data: st.DataObject) -> None:
    literals = kbmod.screen_literals(pattern)
    pieces = [piece for piece in re.split(r"[\\()\[\]|?*+{}^$.]", pattern) if piece]
    chunk = st.one_of(st.sampled_from(pieces), st.text(max_size=4), st.sampled_from(_EDGES))
    text = data.draw(st.lists(chunk, max_size=8).map("".join))
    for variant in _variants(text):
        if re.search(pattern, variant, re.IGNORECASE):
            assert any(literal in kbmod.ignorecase_fold(variant) for literal in literals), (pattern, variant)


def _windows(text: str) -> set[int]:
    """Every 4-byte window of the text's UTF-8 as a native unsigned int, one at a time."""
    data = text.encode("utf-8", "surrogatepass")
    return {int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(len(data) - 3)}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.integers(min_value=1, max_value=12), st.sampled_from(["", "\ud800", "é東"]))
def test_grams_are_every_window_on_both_sides_of_the_numpy_threshold(
    text: str, repeat: int, odd: str
) -> None:
    # repeated, the text crosses the length from which numpy finds the windows
    for sample in (text, odd + text * repeat, text * repeat + odd):
        assert kbmod._grams(sample) == _windows(sample)


def test_rank_finds_what_match_returns() -> None:
    line = "java.lang.OutOfMemoryError: Java heap space"
    profile = EvidenceProfile(
        question="pods OOMKilled, pool exhausted?",
        messages=[
            WeightedText(text=line, weight=3.0, count=4),
            WeightedText(text="redis timeout", weight=1.0),
        ],
        exception_types=["java.lang.OutOfMemoryError", "SQLException"],
        metric_anomalies=[
            MetricSignal(name="memory_usage", score=4.0),
            MetricSignal(name="db_connections", direction="none", score=1.0),
        ],
        services=["redis-cache"],
    )
    for limit in (0, 1, 6, 25):
        matches = _KB.match(profile, limit=limit)
        ranked = _KB.rank(profile, limit=limit)
        assert [(r.signature, r.score, r.matched) for r in ranked] == [
            (m.signature, m.score, m.matched) for m in matches
        ]
    notes = [
        note for found in _KB.rank(profile, limit=25) for note in found.matched if note.startswith("metric")
    ]
    assert notes  # the metric notes are written when asked for


def test_a_screened_pattern_is_found_behind_characters_that_fold_apart() -> None:
    # "İ" folds (str.casefold) to "i" plus a dot, yet re.IGNORECASE finds "i" in it: the screen of the
    # corpus must use the fold that keeps it one "i"
    line = "config: envİronment variable DATABASE_URL is not set"
    plain = _KB.match(EvidenceProfile(messages=[WeightedText(text=line.replace("İ", "i"))]), limit=5)
    folded = _KB.match(EvidenceProfile(messages=[WeightedText(text=line)]), limit=5)
    assert any("environment variable" in note for m in plain for note in m.matched)
    assert [(m.signature.id, m.score, [n.replace("İ", "i") for n in m.matched]) for m in folded] == [
        (m.signature.id, m.score, m.matched) for m in plain
    ]

"""The miner's text-keyed fast paths and the masker's digit-place cache answer exactly what tokenizing and
masking would: for messages with Kubernetes pod names, hex ids, numbers and "0x" places."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.masking import DIGIT_BEFORE_X, Masker, name_spans, tokenize
from core.templates import _HEX_CLASSES, _HEX_RUN, _HEX_VALUE, TemplateMiner, _hex_stand_in, _hex_stand_ins
from tests.unit.test_masking import check_digit_swaps

_KUBE = "bcdfghjklmnpqrstvwxz2456789"
_HEX = "0123456789abcdef"

# Generated-name suffixes drawn from Kubernetes' alphabet and from outside it (a "3" or a vowel makes the
# name an ordinary word), so the same text position is a <K8S_NAME> in one message and not in another.
_SUFFIX = st.text(alphabet=_KUBE + "013aeiou", min_size=5, max_size=5)
_HASH = st.text(alphabet=_KUBE + "013ae", min_size=5, max_size=10)
_POD = st.builds(
    lambda name, rs, sfx: f"{name}-{rs}-{sfx}", st.sampled_from(["web", "cart", "pay-api"]), _HASH, _SUFFIX
)
_NUMBER = st.integers(0, 10**7).map(str)
_HEXID = st.text(alphabet=_HEX, min_size=8, max_size=16)
_WORD = st.sampled_from(["GET", "took", "order", "x", "ERROR", "upstream", "0x", "(", "]", ":", "-"])
_PIECE = st.one_of(
    _POD,
    _NUMBER,
    _HEXID,
    _WORD,
    st.builds(lambda n: f"{n}ms", _NUMBER),
    st.builds(lambda h: f"trace={h}", _HEXID),
    st.builds(lambda p: f"pod={p}", _POD),
    st.builds(lambda p: f"({p})", _POD),
    st.builds(lambda n: f"0x{n}", _HEXID),
    st.builds(lambda n: f"cart:{n}", _NUMBER),
    st.builds(lambda n: f"/api/cart/{n}/items", _NUMBER),
)
_MESSAGE = st.lists(_PIECE, min_size=1, max_size=8).map(" ".join)


def _slow_miner_cids(messages: list[str]) -> list[int]:
    """Cluster indices with every text-keyed fast path emptied before each message (tokenize and mask)."""
    miner = TemplateMiner()
    out = []
    for message in messages:
        miner._folded_all.clear()
        miner._folded.clear()
        miner._folded_hex.clear()
        miner._named.clear()
        out.append(miner.add(message))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(_MESSAGE, min_size=1, max_size=25), st.data())
def test_fast_paths_give_the_clusters_and_templates_of_the_slow_path(
    messages: list[str], data: st.DataObject
) -> None:
    # repeat messages with their digits and hex values redrawn, so the fast paths are exercised
    variants = [_variant(message, data) for message in messages]
    stream = messages + variants + messages
    fast = TemplateMiner()
    cids = [fast.add(m) for m in stream]
    assert cids == _slow_miner_cids(stream)
    slow = TemplateMiner()
    for message in stream:
        slow.add(message)
        slow._named.clear()
    assert [fast.template(c) for c in fast.clusters()] == [slow.template(c) for c in slow.clusters()]
    assert [fast.count(c) for c in fast.clusters()] == [slow.count(c) for c in slow.clusters()]


def test_pod_name_messages_take_the_named_fast_path() -> None:
    miner = TemplateMiner()
    first = "gateway-6b7d9-m8zrt POST /api/cart/40743/items 200 38ms upstream=cart trace=8c0910743d450d52"
    second = "gateway-6b7d9-m8zrt POST /api/cart/11797/items 503 27ms upstream=cart trace=b005c3e3449d14e2"
    other_pod = "gateway-6b7d9-m4zrt POST /api/cart/11797/items 503 27ms upstream=cart trace=b005c3e3449d14e2"
    cid = miner.add(first)
    assert miner.template(cid) == "<K8S_NAME> POST <PATH> <NUM> <DURATION> upstream=cart trace=<HEX>"
    assert len(miner._named) == 1
    shapes = dict(miner._shapes)
    assert miner.add(second) == cid
    assert miner._shapes == shapes  # answered without tokenizing
    assert miner.add(other_pod) == cid
    assert len(next(iter(miner._named.values()))[1]) == 2  # each pod name is its own entry
    # a "3" is not in the generated-name alphabet: not a pod name, so the message takes the slow path
    entries = miner._named_size
    miner.add("gateway-6b7d9-m3zrt POST /api/cart/1/items 200 3ms upstream=cart trace=0")
    assert miner._named_size == entries


def test_named_entries_go_with_the_shape_cache() -> None:
    miner = TemplateMiner(shape_cache_size=3)
    for index in range(12):
        miner.add(f"web-6b7d9-m8zrt event{index % 6} took {index}ms")
        assert miner._named_size <= 3
        assert sum(len(names) for _, names in miner._named.values()) == miner._named_size


def test_a_0x_place_outside_the_names_keeps_a_message_off_the_named_path() -> None:
    miner = TemplateMiner()
    miner.add("web-6b7d9-m8zrt read 0x1f bytes")
    assert not miner._named
    miner.add("web-6b7d9-m4x2q read 12 bytes")  # "4x" inside the pod name does not count
    assert miner._named


def _variant(message: str, data: st.DataObject) -> str:
    """``message`` with its digits redrawn and, maybe, hex letters swapped (a<->b, c<->d, e<->f)."""
    digits = data.draw(st.lists(st.integers(0, 9), min_size=3, max_size=3))
    cycle = iter(digits * (len(message) + 1))
    out = "".join(str(next(cycle)) if c in "0123456789" else c for c in message)
    if data.draw(st.booleans()):
        out = out.translate(str.maketrans("abcdef", "badcfe"))
    return out


def _named_key(message: str) -> tuple[str, list[str]] | None:
    """The named fast path's key of ``message`` (folded stand-in text and names), or None when the
    message may not take that path (no names, or a "0x" place outside them)."""
    stand_in = _HEX_VALUE.sub(_hex_stand_in, message)
    spans = name_spans(stand_in)
    if not spans:
        return None
    for pair in DIGIT_BEFORE_X.finditer(message):
        if not any(a <= pair.start() < b for a, b in spans):
            return None
    folded = "".join("0" if c in "0123456789" else c for c in stand_in)
    return folded, [message[a:b] for a, b in spans]


# Message layouts: "{pod}" is one pod name for both messages, "{n}" a number and "{h}" a hex id drawn anew.
_LAYOUT = st.lists(
    st.sampled_from(
        [
            "{pod}", "pod={pod}", "({pod})", "{n}", "{n}ms", "cart:{n}", "/api/cart/{n}/items", "{h}",
            "trace={h}", "id={h}-{n}", "0x{h}", "GET", "took", "x", "ERROR", "-", ":",
        ]
    ),
    min_size=1,
    max_size=8,
)  # fmt: skip


def _fill(layout: list[str], pod: str, data: st.DataObject) -> str:
    out = []
    for piece in layout:
        text = piece.replace("{pod}", pod)
        while "{n}" in text:  # numbers and hex ids of one length, so that the two messages can share a key
            text = text.replace("{n}", str(data.draw(st.integers(1000, 9999))), 1)
        while "{h}" in text:
            text = text.replace("{h}", data.draw(st.text(alphabet=_HEX, min_size=12, max_size=12)), 1)
        out.append(text)
    return " ".join(out)


@settings(max_examples=400, deadline=None)
@given(_LAYOUT, _POD, st.data())
def test_same_named_key_means_same_shape(layout: list[str], pod: str, data: st.DataObject) -> None:
    """The premise of the named fast path, checked against masking directly: when the first message's
    shape keeps no digit but those of <K8S_NAME>, every message with its key has its shape."""
    message = _fill(layout, pod, data)
    other = _fill(layout, pod, data)
    key = _named_key(message)
    if key is None or _named_key(other) != key:
        return
    shape = Masker().shape(tokenize(message))
    if any(c.isdigit() for c in " ".join(shape).replace("<K8S_NAME>", "")):
        return
    assert Masker().shape(tokenize(other)) == shape, (message, other)


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        _MESSAGE,
        st.text(max_size=60),
        st.text(alphabet=_HEX + "-é. =x", max_size=60),
        st.text(alphabet=_HEX + "-. =x:gG_", max_size=90),  # ASCII, several runs and near-UUIDs
    )
)
def test_hex_stand_ins_from_the_first_hex_run_equal_the_whole_substitution(message: str) -> None:
    encoded = message.encode("utf-8", "surrogatepass")
    classes = encoded.translate(_HEX_CLASSES)
    first = classes.find(_HEX_RUN)
    expected = _HEX_VALUE.sub(_hex_stand_in, message)
    if first < 0:
        assert expected == message
        return
    if len(encoded) != len(message):
        return  # the run-by-run path is for ASCII messages; the miner substitutes the others whole
    assert _hex_stand_ins(message, classes, first) == expected


def test_hex_stand_ins_try_every_long_run() -> None:
    """Runs that do not match (too short after a letter, followed by a word character) are skipped and
    the scan goes on to the next one; a UUID counts as one value."""
    message = (
        "id=deadbeef01 x1234567890abcdef0g trace=0123456789abcdef "
        "req 0a1b2c3d-0000-1111-2222-333344445555 tail=fedcba9876543210"
    )
    encoded = message.encode()
    classes = encoded.translate(_HEX_CLASSES)
    got = _hex_stand_ins(message, classes, classes.find(_HEX_RUN))
    assert got == _HEX_VALUE.sub(_hex_stand_in, message)
    assert "0123456789abcdef" not in got and "fedcba9876543210" not in got
    assert "x1234567890abcdef0g" in got  # glued to letters: not a value


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECE, min_size=1, max_size=8), st.lists(st.integers(0, 9), min_size=6, max_size=6))
def test_digit_place_cache_answers_lettered_tokens_as_masking_does(
    tokens: list[str], digits: list[int]
) -> None:
    check_digit_swaps(tokens, digits)  # with realistic log tokens: pod names, hex ids, durations


def _reference_stand_in(text: str, following: str) -> str:
    """The stand-in rule written out plainly: letters counted one by one."""
    letters = sum(1 for c in text if c in "abcdef")
    first = "a" if following and following in "=.-+:" and text[0] > "9" else "0"
    if len(text) == 36 and text[8] == "-":
        return text if letters in (0, 32) else f"{first}000000a-0000-0000-0000-000000000000"
    if letters < 2 or len(text) - letters < 2:
        return text
    return f"{first}0a0a{'0' * (len(text) - 5)}"


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.uuids().map(str), _HEXID, st.text(alphabet="0123456789", min_size=8, max_size=12)),
    st.sampled_from(["", " ", "=", ".", ":", "-", "+", ",", "/"]),
    st.sampled_from(["", " ", "(", "=", "/"]),
)
def test_hex_stand_in_follows_the_rule(value: str, following: str, before: str) -> None:
    message = f"{before}{value}{following}tail" if following.strip() else f"{before}{value}{following}"
    match = _HEX_VALUE.search(message)
    if match is None or match.group() != value:
        return
    assert _hex_stand_in(match) == _reference_stand_in(value, message[match.end() : match.end() + 1])

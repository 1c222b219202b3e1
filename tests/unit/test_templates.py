"""The template miner: grouping realistic messages, final templates, params, ids, state, bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.masking import Masker, fill, tokenize
from core.models import TemplateMatch
from core.templates import (
    _FOLD_ALL_DIGITS,
    _HEX_VALUE,
    TemplateMiner,
    _digit_values_matter,
    _hex_stand_in,
    _suffix_runs_with_letters,
    first_line,
    template_id_for,
)

ROOT = Path(__file__).resolve().parents[2]

SSHD = [
    "Failed password for root from 203.0.113.5 port 52144 ssh2",
    "Failed password for admin from 198.51.100.23 port 40110 ssh2",
    "Invalid user oracle from 198.51.100.23 port 40022",
    "Accepted publickey for deploy from 10.0.0.12 port 60312 ssh2",
    "Failed password for ubuntu from 192.0.2.44 port 3321 ssh2",
    "Invalid user test from 203.0.113.77 port 33190",
    "pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)",
    "pam_unix(sshd:session): session closed for user deploy",
    "pam_unix(sshd:session): session closed for user git",
]
APP = [
    "Order 100231 created for customer 4411 with 3 items",
    "Retrying call to http://payments.prod.svc.cluster.local:8080/api/v1/charges (attempt 1 of 5) after 250ms",
    "Order 100232 created for customer 87 with 1 items",
    "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
    "Retrying call to http://payments.prod.svc.cluster.local:8080/api/v1/refunds (attempt 2 of 5) after 500ms",
    "Cache miss for key product:5512, loading from database",
    "HikariPool-1 - Connection is not available, request timed out after 30001ms.",
    "Cache miss for key product:77, loading from database",
    "Pod checkout-7d9f8b6c5-x2x9k in namespace prod was OOMKilled (limit 512Mi)",
    "Pod cart-5c8d7f9b4-qw7rt in namespace staging was OOMKilled (limit 1Gi)",
]


def _mine(messages: list[str], **kwargs: float) -> tuple[TemplateMiner, list[int]]:
    miner = TemplateMiner(**kwargs)  # type: ignore[arg-type]
    return miner, [miner.add(m) for m in messages]


def test_realistic_sshd_messages_group_by_event() -> None:
    miner, clusters = _mine(SSHD)
    templates = [miner.template(c) for c in clusters]
    assert templates[0] == "Failed password for <*> from <IP> port <NUM> ssh2"
    assert clusters[0] == clusters[1] == clusters[4]
    assert clusters[2] == clusters[5]
    assert templates[2] == "Invalid user <*> from <IP> port <NUM>"
    assert clusters[7] == clusters[8]
    assert len({clusters[0], clusters[2], clusters[3], clusters[6], clusters[7]}) == 5


def test_typed_placeholders_make_identical_shapes_join_without_wildcards() -> None:
    miner, clusters = _mine(APP)
    assert len(set(clusters)) == 5
    assert miner.template(clusters[0]) == "Order <NUM> created for customer <NUM> with <NUM> items"
    assert miner.template(clusters[1]) == "Retrying call to <URL> (attempt <NUM> of <NUM>) after <DURATION>"
    assert miner.template(clusters[5]) == "Cache miss for key product:<NUM>, loading from database"
    assert miner.template(clusters[8]) == ("Pod <K8S_NAME> in namespace <*> was OOMKilled (limit <SIZE>)")
    assert miner.count(clusters[0]) == 2


def test_different_events_sharing_a_long_prefix_stay_apart() -> None:
    prefix = "nova.compute.manager [req-3fa85f64-5717-4562-b3fc-2c963f66afa6 - - -] [instance: 9b2c6d1e-88a0-4f5e-a3c1-0d2e4f6a8b10]"
    _, clusters = _mine(
        [
            f"{prefix} Terminating instance",
            f"{prefix} Claim successful",
            f"{prefix} Terminating instance",
        ]
    )
    assert clusters[0] == clusters[2] != clusters[1]


def test_templates_generalise_and_the_final_template_is_read_at_the_end() -> None:
    miner = TemplateMiner()
    first = miner.add("Connected to replica west-1 in zone alpha")
    assert miner.template(first) == "Connected to replica west-<NUM> in zone alpha"
    second = miner.add("Connected to replica west-2 in zone beta")
    assert second == first
    assert miner.template(first) == "Connected to replica west-<NUM> in zone <*>"
    assert miner.count(first) == 2
    assert list(miner.clusters()) == [first]


def test_multi_line_messages_mine_only_the_first_line() -> None:
    trace = (
        "Unhandled exception while processing request 3fa85f64-5717-4562-b3fc-2c963f66afa6\n"
        "java.lang.IllegalStateException: payment client is closed\n"
        "\tat com.shop.payment.PaymentClient.charge(PaymentClient.java:88)"
    )
    miner = TemplateMiner()
    a = miner.add(trace)
    b = miner.add("Unhandled exception while processing request 9b2c6d1e-88a0-4f5e-a3c1-0d2e4f6a8b10")
    assert a == b
    assert miner.template(a) == "Unhandled exception while processing request <UUID>"
    assert miner.params(trace, a) == ["3fa85f64-5717-4562-b3fc-2c963f66afa6"]
    assert first_line(trace).startswith("Unhandled") and "\n" not in first_line(trace)


def test_params_fill_the_final_template_back() -> None:
    miner, clusters = _mine(SSHD + APP)
    for message, cluster in zip(SSHD + APP, clusters, strict=True):
        params = miner.params(message, cluster)
        assert fill(miner.template(cluster), params).split() == message.split()


def test_params_reject_a_message_that_does_not_fit() -> None:
    miner, clusters = _mine(APP[:1])
    with pytest.raises(ValueError, match="does not fit"):
        miner.params("Order 5 deleted for customer 4 with 3 items", clusters[0])
    with pytest.raises(ValueError, match="tokens"):
        miner.params("Order 5", clusters[0])


def test_match_finds_without_learning() -> None:
    miner, clusters = _mine(SSHD)
    before = miner.to_state()
    found = miner.match("Failed password for nobody from 192.0.2.9 port 22 ssh2")
    assert found == TemplateMatch(
        template_id=miner.template_id(clusters[0]),
        template="Failed password for <*> from <IP> port <NUM> ssh2",
        params=["nobody", "192.0.2.9", "22"],
    )
    assert miner.match("Kernel panic - not syncing: Fatal exception") is None
    assert miner.match("Failed password for root from 203.0.113.5 port 52144 ssh3") is None
    assert miner.to_state() == before


def test_template_ids_are_short_stable_hashes_of_the_text() -> None:
    tid = template_id_for("Failed password for <*> from <IP> port <NUM> ssh2")
    assert len(tid) == 12 and int(tid, 16) >= 0
    assert tid == template_id_for("Failed password for <*> from <IP> port <NUM> ssh2")
    assert tid != template_id_for("Failed password for <*> from <IP> port <NUM> ssh1")


def test_template_ids_are_the_same_in_another_process() -> None:
    miner, clusters = _mine(SSHD + APP)
    here = sorted({miner.template_id(c) for c in clusters})
    script = (
        "import json, sys\n"
        "from core.templates import TemplateMiner\n"
        "m = TemplateMiner()\n"
        "clusters = [m.add(line) for line in json.load(sys.stdin)]\n"
        "ids = sorted({m.template_id(c) for c in clusters})\n"
        "print(json.dumps(ids))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(SSHD + APP),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert json.loads(done.stdout) == here


def test_state_round_trip_keeps_clusters_and_learning() -> None:
    miner, clusters = _mine(SSHD + APP)
    restored = TemplateMiner.from_state(miner.to_state())
    assert list(restored.clusters()) == list(miner.clusters())
    for cluster in miner.clusters():
        assert restored.template(cluster) == miner.template(cluster)
        assert restored.count(cluster) == miner.count(cluster)
    # it keeps learning where the original left off
    assert restored.add("Failed password for pi from 192.0.2.1 port 22 ssh2") == clusters[0]
    new = restored.add("Kernel panic - not syncing: Fatal exception")
    assert new not in clusters
    assert restored.similarity == miner.similarity


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"version": 99}', "unsupported"),
        (b'{"version": 1, "config": {}}', "malformed"),
    ],
)
def test_bad_state_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TemplateMiner.from_state(data)


def test_cluster_count_is_bounded_and_old_indices_still_resolve() -> None:
    miner = TemplateMiner(max_clusters=20)
    clusters = [miner.add(f"event{chr(97 + i % 26)}{i // 26} happened") for i in range(200)]
    assert len(miner._clusters) <= 20
    assert len(miner) == 200
    assert miner.template(clusters[0]) == "eventa0 happened"
    assert miner.count(clusters[0]) == 1
    restored = TemplateMiner.from_state(miner.to_state())
    assert restored.template(clusters[0]) == "eventa0 happened"
    assert restored.params("eventa0 happened", clusters[0]) == []
    assert len(restored) == 200
    # a retired cluster takes no new messages: the same text starts a new cluster
    assert miner.add("eventa0 happened") not in clusters[:100]


def test_caches_are_bounded() -> None:
    miner = TemplateMiner(shape_cache_size=50, token_cache_size=50)
    for i in range(500):
        miner.add(f"user u{i}x logged in from host h{i}y")
    assert len(miner._shapes) <= 50
    assert len(miner._folded) <= 50
    assert len(miner._folded_all) <= 50
    assert len(miner._folded_hex) <= 50
    assert len(miner._masker._shapes) <= 50


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="similarity"):
        TemplateMiner(similarity=0)
    with pytest.raises(ValueError, match="max_clusters"):
        TemplateMiner(max_clusters=1)
    with pytest.raises(KeyError):
        TemplateMiner().template(3)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=30))
def test_any_input_keeps_its_own_cluster_consistent(messages: list[str]) -> None:
    miner = TemplateMiner()
    clusters = [miner.add(m) for m in messages]
    for message, cluster in zip(messages, clusters, strict=True):
        # every message fits the final template of its cluster, and fills it back
        params = miner.params(message, cluster)
        assert fill(miner.template(cluster), params).split() == first_line(message).split()
        found = miner.match(message)
        assert found is not None
        assert fill(found.template, found.params).split() == first_line(message).split()
    assert sum(miner.count(c) for c in miner.clusters()) == len(messages)


# Pieces of log text where digit values could matter or not: numbers, addresses, times, hex, UUIDs,
# Kubernetes pod names, key=value pairs, quoted spans and words with digits glued on.
_PIECES = st.sampled_from(
    [
        "10.2.33.4:8080",
        "/10.2.3.4:50010",
        "1.2.3.4",
        "42",
        "-7",
        "3.25",
        "1500ms",
        "2.5s",
        "64KB",
        "0x1f",
        "9x",
        "12:30:05",
        "2024-03-01T10:00:00Z",
        "blk_-1608",
        "sshd[4120]:",
        "ssh2",
        "v1.2",
        "web-7d9f8b6c4-x2kqp",
        "cart-8kz4q",
        "pod-2x4b6-12",
        "7efd9644-d7e1-27e3-54ea-04e4c37607f2",
        "a1b2c3d4e5",
        "deadbeef12",
        "user=u42",
        'msg="took 12 ms"',
        "'x 5'",
        "(12)",
        "[774842.941]",
        "took",
        "failed",
        "from",
        "port",
        "-",
        "=",
        ":",
        '"',
        "abc-12345",
        "ab-1234-56789",
    ]
)
_DIGIT_SWAP = st.lists(st.integers(0, 9), min_size=64, max_size=64)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=10), _DIGIT_SWAP, st.sampled_from([" ", "  ", ",", ""]))
def test_messages_equal_up_to_digit_values_have_one_shape(
    pieces: list[str], digits: list[int], glue: str
) -> None:
    """The premise of the miner's digit-folded cache: when a message's digit values cannot matter and its
    shape keeps no digit, every message that differs only in digit values has the same shape."""
    message = glue.join(pieces)
    swapped = iter(digits * 4)
    other = "".join(str(next(swapped)) if c in "0123456789" else c for c in message)
    masker = Masker()
    shape = masker.shape(tokenize(message))
    if _digit_values_matter(message) or any(c in "0123456789" for c in " ".join(shape)):
        return
    assert masker.shape(tokenize(other)) == shape, (message, other)


def test_digit_values_matter_only_for_hex_prefixes_and_pod_name_suffixes() -> None:
    assert _digit_values_matter("read 0x1f bytes")
    assert _digit_values_matter("pod web-7d9f8b6c4-x2kqp restarted")
    assert _digit_values_matter("pod cart-8kz4q restarted")
    assert not _digit_values_matter("request req-7efd9644-d7e1-27e3-54ea-04e4c37607f2 done")
    assert not _digit_values_matter("block blk_-1608 from /10.2.3.4:50010 size 42")
    assert not _digit_values_matter("2024-03-01 took 1500ms")


_HEX = "0123456789abcdef"
# Templates with hex-valued slots ("{}"): each slot gets a fresh random hex text of the slot's length.
_HEX_TEMPLATES = st.sampled_from(
    [
        "req-{8}-{4}-{4}-{4}-{12} {32} {32} - - -] [instance: {8}-{4}-{4}-{4}-{12}] spawned",
        "podUID={8}-{4}-{4}-{4}-{12} container={12} image=sha256:{16}",
        "{10}={2} {8}.{3}=x {12}://x {8}:{2} {8}_{3} {9}-{5} x.{10} {6}",
        "commit {40} of {8} pushed to {16}.{8}",
        "blob {12}-{5} ok",
        "key {1}{7}e{4} {9}d {8}",
    ]
)


def _fill_hex(template: str, draw: st.DrawFn) -> str:
    out: list[str] = []
    rest = template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        size, _, rest = tail.partition("}")
        out.append(head)
        out.append(draw(st.text(alphabet=_HEX, min_size=int(size), max_size=int(size))))
    out.append(rest)
    return "".join(out)


def _hex_key(message: str) -> bytes:
    return _HEX_VALUE.sub(_hex_stand_in, message).encode("utf-8", "surrogatepass").translate(_FOLD_ALL_DIGITS)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_messages_equal_up_to_hex_values_have_one_shape(data: st.DataObject) -> None:
    """The premise of the miner's hex-folded cache: two messages with the same hex-folded key, the first of
    which passes the guards and has a shape without digits, have the same shape."""
    template = data.draw(_HEX_TEMPLATES)
    message = _fill_hex(template, data.draw)
    other = _fill_hex(template, data.draw)
    if _hex_key(message) != _hex_key(other):
        return
    masker = Masker()
    shape = masker.shape(tokenize(message))
    if (
        _digit_values_matter(message)
        or _suffix_runs_with_letters(message)
        or any(c in "0123456789" for c in " ".join(shape))
    ):
        return
    assert masker.shape(tokenize(other)) == shape, (message, other)


def test_hex_values_share_a_key_only_when_masking_cannot_tell_them_apart() -> None:
    first = "req-7efd9644-d7e1-27e3-54ea-04e4c37607f2 done in 8dea6fe3a28888747de4cbdfcd3a71ef"
    second = "req-c6de6f0b-57ab-317f-7569-40f3eb2966e0 done in 1bc37cd519aef0bd77c015b6e667b855"
    assert _hex_key(first) == _hex_key(second)
    # whether a key starts with a letter counts
    assert _hex_key("ab12cd34ef=1 x") != _hex_key("12abcd34ef=1 x")
    # a run with one letter may be a number with an exponent: kept as it is
    assert _hex_key("x 12345e678 y") != _hex_key("x 12345a678 y")
    # inside a Kubernetes name the letters count too: same key, different shapes, so the guard must hold
    pod, not_pod = "pod x-7d9f8b6c4-xbkqp up", "pod x-7a9e8b6c4-xbkqp up"
    assert _hex_key(pod) == _hex_key(not_pod)
    assert Masker().shape(tokenize(pod)) != Masker().shape(tokenize(not_pod))
    assert _suffix_runs_with_letters(pod)
    miner = TemplateMiner()
    assert miner.add(first) == miner.add(second)
    assert miner.template(miner.add(first)) == "req-<UUID> done in <HEX>"
    miner.add(pod)
    assert _hex_key(pod) not in miner._folded_hex


def test_template_text_and_id_follow_the_cluster_as_it_generalises() -> None:
    """Template text and id are kept per cluster once asked for; a generalisation must replace them."""
    miner = TemplateMiner()
    cid = miner.add("user alice logged in from the office")
    first_text, first_id = miner.template(cid), miner.template_id(cid)
    assert (first_text, first_id) == ("user alice logged in from the office", template_id_for(first_text))
    assert miner.template_id(cid) is first_id  # asked again: the kept one
    assert miner.add("user bob logged in from the office") == cid
    assert miner.template(cid) == "user <*> logged in from the office"
    assert miner.template_id(cid) == template_id_for(miner.template(cid)) != first_id
    restored = TemplateMiner.from_state(miner.to_state())
    assert (restored.template(cid), restored.template_id(cid)) == (
        miner.template(cid),
        miner.template_id(cid),
    )


def test_retired_clusters_keep_their_final_template_and_id() -> None:
    miner = TemplateMiner(max_clusters=10)
    cids = [miner.add(f"event number{n} kind{n} happened") for n in "abcdefghijklmnop"]
    texts = {cid: miner.template(cid) for cid in cids}
    for n in "qrstuvwxyz":
        miner.add(f"other thing{n} kind{n} went off")
    assert any(miner._retired[cid] is not None for cid in cids)
    for cid in cids:
        assert miner.template(cid) == texts[cid]
        assert miner.template_id(cid) == template_id_for(texts[cid])

"""Typed placeholder detection: each type, tokenization rules, and properties over arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import masking
from core.masking import PLACEHOLDER_RE, Masker, fast_mask, fill, mask, mask_token, tokenize


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("10.42.7.19", "<IP>"),
        ("10.42.7.19:8443", "<IP>"),
        ("10.0.0.0/8", "<IP>"),
        ("2001:db8:85a3::8a2e:370:7334", "<IP>"),
        ("[::1]:6379", "<IP>"),
        ("fe80::1ff:fe23:4567:890a%eth0", "<IP>"),
        ("42", "<NUM>"),
        ("-3.25", "<NUM>"),
        ("97%", "<NUM>"),
        ("0x7ffd5c2a", "<HEX>"),
        ("4bf92f3577b34da6a3ce929d0e0e4736", "<HEX>"),
        ("00:1a:2b:3c:4d:5e", "<HEX>"),
        ("3fa85f64-5717-4562-b3fc-2c963f66afa6", "<UUID>"),
        ("/var/lib/kubelet/pods/abc/volumes", "<PATH>"),
        ("./bin/start.sh", "<PATH>"),
        ("~/.kube/config", "<PATH>"),
        ("/api/v1/orders?limit=50&page=2", "<PATH>"),
        ("C:\\Windows\\Temp\\x.log", "<PATH>"),
        ("https://payments.prod.svc.cluster.local:8080/api/v1/charges?id=7", "<URL>"),
        ("s3://backups/db/2024-03-01.tar.gz", "<URL>"),
        ("250ms", "<DURATION>"),
        ("1.5s", "<DURATION>"),
        ("1m30s", "<DURATION>"),
        ("2h45m", "<DURATION>"),
        ("30sec", "<DURATION>"),
        ("oncall+pager@example.com", "<EMAIL>"),
        ('"connection reset by peer"', "<QUOTED>"),
        ("'orders'", "<QUOTED>"),
        ("checkout-7d9f8b6c5-x2x9k", "<K8S_NAME>"),
        ("fluentd-kbx9v", "<K8S_NAME>"),
        ("2024-03-01T10:00:00.123Z", "<TIME>"),
        ("2024-03-01T10:00:00+02:00", "<TIME>"),
        ("2024-03-01", "<TIME>"),
        ("10:00:00,123", "<TIME>"),
        ("01/Mar/2024:10:00:00", "<TIME>"),
        ("512MB", "<SIZE>"),
        ("1.5GiB", "<SIZE>"),
        ("100Mi", "<SIZE>"),
        ("8123456kB", "<SIZE>"),
    ],
)
def test_each_placeholder_type(token: str, masked: str) -> None:
    got, params = mask_token(token)
    assert got == masked
    assert params == (token,)


@pytest.mark.parametrize(
    ("token", "masked", "params"),
    [
        ("(10.1.2.3),", "(<IP>),", ("10.1.2.3",)),
        ("[instance:", "[instance:", ()),
        ("status=500", "status=<NUM>", ("500",)),
        ("latency=250ms,", "latency=<DURATION>,", ("250ms",)),
        ("blk_-1608999687919862906", "blk_-<NUM>", ("1608999687919862906",)),
        ("sshd[4120]:", "sshd[<NUM>]:", ("4120",)),
        ("/10.250.19.102:50010", "/<IP>", ("10.250.19.102:50010",)),
        ("rdd_12_3", "rdd_<NUM>_<NUM>", ("12", "3")),
        (
            "trace_id:4bf92f3577b34da6a3ce929d0e0e4736",
            "trace_id:<HEX>",
            ("4bf92f3577b34da6a3ce929d0e0e4736",),
        ),
        ("HTTP/1.1", "HTTP/<NUM>", ("1.1",)),
        ("req-3fa85f64-5717-4562-b3fc-2c963f66afa6", "req-<UUID>", ("3fa85f64-5717-4562-b3fc-2c963f66afa6",)),
    ],
)
def test_values_inside_tokens(token: str, masked: str, params: tuple[str, ...]) -> None:
    assert mask_token(token) == (masked, params)


@pytest.mark.parametrize(
    "token",
    ["ssh2", "ec2", "v1", "log4j", "Started", "decade", "facade", "user-admin", "-", "[preauth]"],
)
def test_constants_are_left_alone(token: str) -> None:
    assert mask_token(token) == (token, ())


def test_quoted_span_is_one_token_and_apostrophes_are_not_quotes() -> None:
    assert tokenize('user "alice smith" can\'t log in') == ["user", '"alice smith"', "can't", "log", "in"]
    assert mask('reason="connection reset by peer" code=104') == (
        "reason=<QUOTED> code=<NUM>",
        ['"connection reset by peer"', "104"],
    )


def test_leading_quoted_sentence_is_the_template_not_a_value() -> None:
    message = '"Killing container with a grace period" pod="prod/checkout-7d9f8b6c5-x2x9k" gracePeriod=30'
    assert mask(message)[0] == '"Killing container with a grace period" pod=<QUOTED> gracePeriod=<NUM>'


def test_http_request_line_in_quotes_keeps_its_structure() -> None:
    masked, params = mask('10.1.2.3 "GET /api/v1/orders/7 HTTP/1.1" 200 "curl/8.4.0"')
    assert masked == '<IP> "GET <PATH> HTTP/<NUM>" <NUM> <QUOTED>'
    assert params == ["10.1.2.3", "/api/v1/orders/7", "1.1", "200", '"curl/8.4.0"']


def test_logfmt_message_value_is_text() -> None:
    assert (
        mask('msg="cache refreshed" entries=120 took=15ms')[0]
        == 'msg="cache refreshed" entries=<NUM> took=<DURATION>'
    )


def test_existing_placeholders_are_their_own_parameters() -> None:
    assert mask_token("<NUM>") == ("<NUM>", ("<NUM>",))
    assert mask_token("id=<UUID>,") == ("id=<UUID>,", ("<UUID>",))


def test_fill_puts_parameters_back_and_checks_their_number() -> None:
    masked, params = mask("Received block blk_-42 of size 91178 from /10.250.10.6")
    assert fill(masked, params) == "Received block blk_-42 of size 91178 from /10.250.10.6"
    with pytest.raises(ValueError, match="different number"):
        fill(masked, params[:-1])
    with pytest.raises(ValueError, match="different number"):
        fill(masked, [*params, "extra"])


def test_masker_cache_gives_the_same_shape_and_stays_bounded() -> None:
    masker = Masker(cache_size=8)
    tokens = tokenize("Order 100231 created for customer alice@example.com in 12ms at 2024-03-01T10:00:00Z")
    for _ in range(3):
        assert masker.shape(tokens) == tuple(mask_token(t)[0] for t in tokens)
    assert len(masker._shapes) <= 8


def test_classifications_are_shared_between_maskers(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tokenize(
        "job 7731 took 12ms on worker-3 host=10.0.0.7:8080 id=5f0c2a9e web-7d9f8b6c4-x2kqp done"
    )
    expected = tuple(mask_token(t)[0] for t in tokens)
    masking._shared_classified.clear()
    assert Masker().shape(tokens) == expected
    assert "took" in masking._shared_classified and "12ms" in masking._shared_classified
    second = Masker()
    assert second.shape(tokens) == expected  # classified by the first one
    assert second._shapes["took"] == "took"  # and kept in the second one's own caches as well
    assert second.shape(tokens) == expected
    monkeypatch.setattr(masking, "SHARED_CACHE_SIZE", 3)
    masking._shared_classified.clear()
    for _ in range(2):
        assert Masker().shape(tokens) == expected
        assert len(masking._shared_classified) <= 3


# --- properties -------------------------------------------------------------------------------------------

_VALUES = st.one_of(
    st.from_regex(r"\A(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\Z"),
    st.from_regex(r"\A[+-]?\d{1,9}(?:\.\d{1,4})?%?\Z"),
    st.from_regex(r"\A(?:0x[0-9a-f]{2,12}|[0-9a-f]{6,32})\Z"),
    st.uuids().map(str),
    st.from_regex(r"\A\d{1,4}(?:\.\d)?(?:ms|s|m|h|us|ns|KB|MB|GiB|kB|Mi|G|B)\Z"),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z?)?\Z"),
    st.from_regex(r"\A/[a-z0-9_./-]{0,20}\Z"),
    st.from_regex(r"\A[a-z]{2,8}-[bcdfghjklmnpqrstvwxz2456789]{9}-[bcdfghjklmnpqrstvwxz2456789]{5}\Z"),
    st.from_regex(r"\A[a-z]{1,8}(?:[_:]-?\d{1,6}){1,3}\Z"),
)
_WRAPPED = st.tuples(
    st.sampled_from(["", "(", "[", "{", "key=", "(key=", "[x_1=("]),
    _VALUES,
    st.sampled_from(["", ")", "],", ".", ":", ";", ")."]),
).map("".join)
_TOKENS = st.one_of(
    _WRAPPED, st.text(min_size=1, max_size=12).filter(lambda t: not any(c.isspace() for c in t))
)
_MESSAGES = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.one_of(_TOKENS, st.sampled_from(['"a b"', "'x'", "it's", '"GET', 'msg="hi'])), max_size=12
    ).map(" ".join),
)


@settings(max_examples=400, deadline=None)
@given(_MESSAGES)
def test_masking_never_raises_is_idempotent_and_fills_back(message: str) -> None:
    masked, params = mask(message)
    assert mask(masked)[0] == masked
    assert fill(masked, params).split() == message.split()
    assert len(PLACEHOLDER_RE.findall(masked)) == len(params)


@settings(max_examples=400, deadline=None)
@given(_TOKENS)
def test_fast_path_agrees_with_full_classification(token: str) -> None:
    fast = fast_mask(token)
    if fast is not None:
        assert fast == mask_token(token)[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(_TOKENS, max_size=10))
def test_cached_shape_equals_uncached(tokens: list[str]) -> None:
    masker = Masker(cache_size=4)
    expected = tuple(mask_token(t)[0] for t in tokens)
    assert masker.shape(tokens) == expected
    assert masker.shape(tokens) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=8), st.lists(st.integers(0, 9), min_size=8, max_size=8))
def test_tokens_that_differ_only_in_digit_values_are_cached_apart_when_they_mask_apart(
    tokens: list[str], digits: list[int]
) -> None:
    """The digit-place cache answers for a token another token filled in: the answer must be the same."""
    check_digit_swaps(tokens, digits)


def check_digit_swaps(tokens: list[str], digits: list[int]) -> None:
    """Shape ``tokens``, then the same tokens with their digits replaced from ``digits``, through one
    cache: each answer must equal masking the tokens one by one without it."""
    cycle = iter(digits * 40)
    swapped = ["".join(str(next(cycle)) if c in "0123456789" else c for c in t) for t in tokens]
    masking._shared_classified.clear()  # so the swapped tokens go through this Masker's digit-place cache
    masker = Masker(cache_size=64)
    assert masker.shape(tokens) == tuple(mask_token(t)[0] for t in tokens)
    assert masker.shape(swapped) == tuple(mask_token(t)[0] for t in swapped)


def test_digit_place_cache_keeps_letters_and_digit_results_out() -> None:
    masker = Masker()
    assert masker.shape(["10.1.2.3:80", "10.9.8.7:81"]) == ("<IP>", "<IP>")
    assert masker.shape(["0x1f", "9x1f"]) == tuple(mask_token(t)[0] for t in ["0x1f", "9x1f"])
    # "1.2.3.4.5" keeps a digit of its own in the result, so it is cached by its own text only
    assert masker.shape(["1.2.3.4.5", "9.9.9.9.9"]) == (
        mask_token("1.2.3.4.5")[0],
        mask_token("9.9.9.9.9")[0],
    )
    # a "0x" place or a pod name's generated suffix makes digit values count: such tokens keep their own key
    pods = ["web-7d9f8b6c4-x2kqp", "web-7d9f8b6c4-x3kqp"]  # "3" is not in the generated-name alphabet
    assert masker.shape(pods) == ("<K8S_NAME>", mask_token(pods[1])[0]) != ("<K8S_NAME>", "<K8S_NAME>")
    assert not any(b"x" in key.lower() for key in masker._by_digit_places)
    assert not any(key.startswith(b"web-") for key in masker._by_digit_places)
    # letters elsewhere do not: a key=value or a duration of a known shape is one lookup
    assert masker.shape(["order=6232337", "in=140ms"]) == ("order=<NUM>", "in=<DURATION>")
    assert b"order=0000000" in masker._by_digit_places


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("00000d", "<HEX>"),
        ("1234567d,", "<HEX>,"),
        ("123456E", "<HEX>"),
        ("123456e", "<HEX>"),
        ("(key=123456d)", "(key=<HEX>)"),
        ("12345d", "<HEX>"),
        ("1234d", "<DURATION>"),
        ("30d", "<DURATION>"),
        ("5E", "<SIZE>"),
    ],
)
def test_digits_with_a_hex_letter_unit_read_alike_on_both_paths(token: str, masked: str) -> None:
    """Six or more hex characters ending in "d" or "E" are an id to the fast path and to the full one."""
    assert mask_token(token)[0] == masked
    assert fast_mask(token) in (None, masked)
    assert Masker(cache_size=4).shape([token]) == (masked,)

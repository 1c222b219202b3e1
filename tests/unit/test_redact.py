"""Redaction: planted secrets never survive, clean text is untouched, and redaction is idempotent."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.redact import Redactor, redact

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64ISH = ALNUM + "/+"
URL_PASSWORD_CHARS = ALNUM + "!$%^*()_-.~:;,"


def _s(alphabet: str, size: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=max_size if max_size is not None else size)


# (kind, strategy of (planted text, the sensitive part that must not survive))
def _plants() -> st.SearchStrategy[tuple[str, str, str]]:
    def pair(kind: str, body: st.SearchStrategy[str], fmt: str) -> st.SearchStrategy[tuple[str, str, str]]:
        return body.map(lambda b: (kind, fmt.format(b), b))

    return st.one_of(
        pair("aws_access_key", _s(UPPER_DIGITS, 16).map(lambda b: "AKIA" + b), "{}"),
        pair("aws_secret_key", _s(B64ISH, 40), "aws_secret_access_key = {}"),
        pair("github_token", _s(ALNUM, 36, 40).map(lambda b: "ghp_" + b), "{}"),
        pair("github_token", _s(ALNUM + "_", 22, 82).map(lambda b: "github_pat_" + b), "{}"),
        pair("slack_token", _s(ALNUM, 24).map(lambda b: "xoxb-1234567890-" + b), "{}"),
        pair("slack_token", _s(ALNUM, 20).map(lambda b: "xapp-1-A0" + b), "{}"),
        pair("openai_key", _s(ALNUM, 32, 48).map(lambda b: "sk-proj-" + b), "{}"),
        pair("openai_key", _s(ALNUM, 48), "sk-{}"),
        pair("stripe_key", _s(ALNUM, 24), "sk_live_{}"),
        pair("google_api_key", _s(ALNUM + "_-", 35).map(lambda b: "AIza" + b), "{}"),
        pair(
            "jwt",
            st.tuples(_s(ALNUM, 12, 30), _s(ALNUM + "_-", 16, 40)).map(
                lambda t: f"eyJhbGciOiJIUzI1NiJ9.eyJ{t[0]}.{t[1]}"
            ),
            "{}",
        ),
        pair("authorization", _s(ALNUM + "._-", 12, 40), "Authorization: Bearer {}"),
        pair("authorization", _s(ALNUM, 12, 40), '"authorization": "Basic {}"'),
        pair("bearer_token", _s(ALNUM, 16, 40).map(lambda b: b + "9"), "token type Bearer {}"),
        pair("password", _s(URL_PASSWORD_CHARS, 8, 30), "postgres://app_user:{}@db.internal:5432/orders"),
        pair("password", _s(ALNUM, 8, 30), "mongodb+srv://svc:{}@cluster0.abcd.mongodb.net/prod"),
        pair("password", _s(ALNUM, 8, 30), "redis://:{}@cache-1:6379/0"),
        pair("password", _s(ALNUM, 8, 30), "jdbc:sqlserver://sql1:1433;user=sa;password={};encrypt=true"),
        pair("password", _s(ALNUM + "!#%&*", 8, 30), "DB_PASSWORD={}"),
        pair("password", _s(ALNUM + "!%*", 8, 30), "GET /login?user=bob&password={}&next=/home"),
        pair("password", _s(ALNUM + " !#%", 8, 30).filter(lambda b: b.strip() == b), '{{"password": "{}"}}'),
        pair("api_key", _s(ALNUM, 12, 30), "GET /v1/items?api_key={}&page=2"),
        pair("token", _s(ALNUM, 12, 30), "level=warn msg=retry access_token={} attempt=3"),
        pair("secret", _s(ALNUM, 12, 30), "clientSecret: {}"),
        pair(
            "private_key",
            st.lists(_s(B64ISH, 64), min_size=1, max_size=4).map("\n".join),
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
        ),
        pair(
            "private_key",
            _s(B64ISH, 64),
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
        ),
        pair("email", _s(string.ascii_lowercase, 6, 16), "{}@example-corp.com"),
    )


surrounding = st.text(max_size=120)
separator = st.sampled_from([" ", "\n", "\t", "\r\n"])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(plant=_plants(), before=surrounding, after=surrounding, sep1=separator, sep2=separator)
def test_planted_secret_never_survives(
    plant: tuple[str, str, str], before: str, after: str, sep1: str, sep2: str
) -> None:
    kind, planted, sensitive = plant
    context = planted.replace(sensitive, "\x00", 1)  # the non-secret part of the plant
    assume(
        all(sensitive not in part for part in (before + sep1, sep2 + after, context, f"[REDACTED:{kind}]"))
    )
    text = f"{before}{sep1}{planted}{sep2}{after}"
    result = redact(text)
    assert sensitive not in result.text
    assert result.total >= 1


@settings(max_examples=200)
@given(plant=_plants())
def test_planted_secret_reports_its_kind(plant: tuple[str, str, str]) -> None:
    kind, planted, _sensitive = plant
    result = redact(f"2024-05-01T10:00:00Z ERROR worker-3 failed: {planted} (retrying)")
    assert result.counts.get(kind, 0) >= 1, (kind, result.counts, result.text)
    assert f"[REDACTED:{kind}]" in result.text


@settings(max_examples=300)
@given(text=st.text(max_size=300), ips=st.booleans())
def test_redaction_is_idempotent(text: str, ips: bool) -> None:
    once = redact(text, redact_ips=ips)
    twice = redact(once.text, redact_ips=ips)
    assert twice.text == once.text
    assert twice.total == 0


@settings(max_examples=200)
@given(plant=_plants(), before=surrounding, ips=st.booleans())
def test_idempotent_with_secrets(plant: tuple[str, str, str], before: str, ips: bool) -> None:
    once = redact(f"{before} {plant[1]} tail", redact_ips=ips)
    assert redact(once.text, redact_ips=ips).text == once.text


LOG_WORDS = [
    "ERROR", "WARN", "INFO", "connection", "refused", "timeout", "after", "ms", "retrying", "upstream",
    "pool", "exhausted", "GET", "POST", "/api/v1/orders", "status=503", "latency_ms=1234", "user_id=42",
    "max_tokens=512", "token_count=3", "bypass=false", "pod=api-7d9f", "node=ip-10-0-0-1", "(", ")", ":",
    "sk-learn", "std::vector", "worker-3", "v2.14.0-rc1", "12:34:56.789", "v1.2.3", "https://status.example.com/incidents?page=2",
    "Bearer", "of", "bad", "news", "password_reset_url=/reset", "secrets", "tokens", "OOMKilled",
    "exit_code=137", "FATAL:", "sorry,", "too", "many", "clients", "already", "key=orders:123",
]  # fmt: skip


@settings(max_examples=300)
@given(words=st.lists(st.sampled_from(LOG_WORDS), max_size=40), seps=st.lists(separator, max_size=40))
def test_text_without_secrets_is_unchanged(words: list[str], seps: list[str]) -> None:
    text = "".join(w + (seps[i] if i < len(seps) else " ") for i, w in enumerate(words))
    result = redact(text)
    assert result.text == text
    assert result.counts == {}


@settings(max_examples=300)
@given(text=st.text(alphabet=string.ascii_lowercase + string.digits + " .,()!?\n", max_size=300))
def test_plain_prose_is_unchanged(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgres://app:s3cr3t@db:5432/orders",
            "postgres://app:[REDACTED:password]@db:5432/orders",
        ),
        ("redis://:hunter2@cache:6379", "redis://:[REDACTED:password]@cache:6379"),
        ("Authorization: Bearer abc.def123", "Authorization: Bearer [REDACTED:authorization]"),
        ('{"api_key": "abc123xyz"}', '{"api_key": "[REDACTED:api_key]"}'),
        ("msg=token=abc123", "msg=token=[REDACTED:token]"),
        ("PGPASSWORD=Tr0ub&dor x=1", "PGPASSWORD=[REDACTED:password] x=1"),
        ("/cb?code=1&token=ab12&page=2#top", "/cb?code=1&token=[REDACTED:token]&page=2#top"),
        ("login by bob@example.com failed", "login by [REDACTED:email] failed"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED:aws_access_key] used"),
        ("run --db-password hunter2 now", "run --db-password [REDACTED:password] now"),
        ("max_tokens=512 token_count=3", "max_tokens=512 token_count=3"),
    ],
)
def test_examples_keep_context(text: str, expected: str) -> None:
    assert redact(text).text == expected


def test_ips_only_when_asked() -> None:
    text = (
        "connect to 10.12.0.7:5432 from 2001:db8::8a2e:370:7334 at 12:34:56, mac aa:bb:cc:dd:ee:ff v1.2.3.4.5"
    )
    assert redact(text).text == text
    redacted = Redactor(redact_ips=True).redact(text)
    assert redacted.text == (
        "connect to [REDACTED:ipv4]:5432 from [REDACTED:ipv6] at 12:34:56, mac aa:bb:cc:dd:ee:ff v1.2.3.4.5"
    )
    assert redacted.counts == {"ipv4": 1, "ipv6": 1}


def test_unterminated_private_key_is_redacted_to_the_end() -> None:
    text = "loaded key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEvQIBADAN"
    result = redact(text)
    assert result.text == "loaded key:\n[REDACTED:private_key]"


def test_redactor_is_reusable_and_clean_matches_redact() -> None:
    redactor = Redactor()
    texts = ["password=a1b2c3d4", "nothing here", "ghp_" + "a" * 36]
    assert [redactor.clean(t) for t in texts] == [redact(t).text for t in texts]


# --- the literal screen: skipping a rule whose literals are absent never changes the result ---------------

_FRAGMENTS = st.sampled_from(
    [
        "authorization", "AUTHORIZATION", "Authorization: ", "\u212a", "bearer ", "BeArEr ", "key", "KEY=",
        "aws_secret_access_key=", "://", "@", ":", "=", "?", "&", "--password ", "eyJ", ".eyJ", "AKIA", "A3T",
        "ghp_", "github_pat_", "xoxb-", "xapp-1-", "sk_live_", "sk-", "whsec_", "AIza", "-----BEGIN ",
        "[REDACTED:password]", "https://hooks.slack.com/services/", "İ", "ſ", "\u0130", " ", "\n",
    ]
)  # fmt: skip


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(
        st.one_of(_FRAGMENTS, st.text(alphabet=ALNUM + "._-/+", max_size=30), st.text(max_size=8))
    ),
    ips=st.booleans(),
)
def test_literal_screen_gives_the_same_result_as_running_every_rule(parts: list[str], ips: bool) -> None:
    from core.redact import _IP_RULES, _RULES, _redact_with

    text = "".join(parts)
    rules = _RULES + (_IP_RULES if ips else ())
    assert _redact_with(rules, text, screen=True) == _redact_with(rules, text, screen=False)


@given(plant=_plants(), before=surrounding, after=surrounding)
def test_literal_screen_agrees_on_planted_secrets(
    plant: tuple[str, str, str], before: str, after: str
) -> None:
    from core.redact import _IP_RULES, _RULES, _redact_with

    text = f"{before} {plant[1]} {after}"
    rules = _RULES + _IP_RULES
    assert _redact_with(rules, text, screen=True) == _redact_with(rules, text, screen=False)


def test_every_screened_rule_names_literals_its_matches_contain() -> None:
    from core.redact import _IP_RULES, _RULES

    samples = {
        "private_key": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----",
        "slack_webhook": "https://hooks.slack.com/services/T000/B000/XXXX",
        "jwt": "eyJhbGciOi.eyJzdWIiOi.sig",
        "aws_access_key": "AKIAABCDEFGHIJKLMNOP",
        "google_api_key": "AIza" + "a" * 35,
    }
    for rule in _RULES + _IP_RULES:
        sample = samples.get(rule.kind)
        if sample is None or not rule.needs:
            continue
        match = rule.pattern.search(sample)
        assert match is not None, rule.kind
        haystack = match.group(0).lower() if rule.folded else match.group(0)
        assert any(literal in haystack for literal in rule.needs), rule.kind

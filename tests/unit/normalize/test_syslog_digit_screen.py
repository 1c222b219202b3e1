"""parse_rfc3164 answers None without its regex for a line that opens with a digit and has no ":" past the
first 19 characters; the regex must agree there: no match, or the ISO form without a tag (which it rejects)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.normalize.syslog import _RFC3164, parse_rfc3164

_STAMPS = st.sampled_from(
    [
        "2024-05-14T14:05:58Z",
        "2024-05-14 14:05:58.123",
        "2024/05/14 14:05:58,5 +02:00",
        "2024-05-14T14:05:58+0200",
        "٢٠٢٤-05-14T14:05:58 UTC",  # Arabic-Indic digits are digits to the regex too
        "20240514",
        "7",
    ]
)
_WORDS = st.text(alphabet="abcXYZ09-_.[]: =\t", min_size=0, max_size=12)


@settings(max_examples=500, deadline=None)
@given(_STAMPS, st.lists(_WORDS, max_size=6), st.booleans())
def test_screened_lines_are_ones_the_regex_rejects(stamp: str, words: list[str], full: bool) -> None:
    line = " ".join([stamp, *words])
    screened = line[:1].isdigit() and line.find(":", 19) < 0
    if not screened:
        return
    match = _RFC3164.match(line)
    assert match is None or (match["mon"] is None and match["tag"] is None), line
    assert parse_rfc3164(line, full) is None


def test_a_colon_after_the_time_still_goes_to_the_regex() -> None:
    fields = parse_rfc3164("2024-05-14T14:05:58Z web01 sshd[42]: Accepted publickey for deploy")
    assert fields is not None
    assert (fields["host"], fields["service"]) == ("web01", "sshd")
    assert parse_rfc3164("2024-05-14T14:05:58Z INFO checkout started") is None

"""The fast path for the commonest ISO header (``plain_iso_level``) gives exactly what the general regexes
give: on generated header lines near and across the edges of its shape, and through read_logs."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.normalize import read_logs, read_messages, text_formats
from core.normalize.severity import severity_from_text
from core.normalize.text_formats import (
    LEVEL_WORDS,
    PLAIN_LEVELS,
    parse_iso,
    parse_iso_by_regex,
    plain_iso_level,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda number: f"{number:02d}")


def digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=low, max_size=high)


# Each part of a header line: the values the fast path takes, then values at or past the edge of its
# shape. A generated line takes its parts from the first, with zero, one or two of them from the second.
PARTS: dict[str, tuple[st.SearchStrategy[str], st.SearchStrategy[str]]] = {
    "date": (
        st.one_of(
            st.dates().map(lambda day: day.isoformat()),
            st.sampled_from(["2024-02-29", "2000-02-29", "2024-12-31", "0001-01-01", "9999-12-31"]),
        ),
        st.one_of(
            st.sampled_from(
                [
                    *("2023-02-29", "1900-02-29", "2100-02-29", "2024-04-31", "0000-01-01", "2024-13-01"),
                    *("2024-00-10", "2024/02/29", "2024-2-29", "٢٠٢٤-01-01", "２０２４-01-01", "[2024-01-01"),
                ]
            ),
            st.builds(
                lambda y, m, d, sep: f"{y:04d}{sep}{m}{sep}{d}",
                st.integers(0, 9999),
                two(0, 13),
                two(0, 32),
                st.sampled_from("-/"),
            ),
        ),
    ),
    "t": (st.sampled_from(["T", " "]), st.sampled_from(["t", "_", "  ", "", "\t", "T "])),
    "clock": (
        st.times().map(lambda moment: moment.strftime("%H:%M:%S")),
        st.one_of(
            st.sampled_from(["24:00:00", "23:59:60", "23:60:00", "1:00:00", "10:00", "10:00:0", "٣0:00:00"]),
            st.builds(lambda h, m, s: f"{h}:{m}:{s}", two(0, 25), two(0, 61), two(0, 61)),
        ),
    ),
    "frac": (
        st.one_of(st.just(""), st.builds(str.__add__, st.sampled_from([".", ","]), digits(1, 9))),
        st.one_of(
            st.sampled_from([".", ",", "..5", ".٣", ". 5", ".5.5"]),
            st.builds(str.__add__, st.sampled_from([".", ",", ":"]), digits(10, 12)),
            st.builds(str.__add__, st.just(":"), digits(1, 9)),
        ),
    ),
    "zone": (
        st.sampled_from(["", "Z"]),
        st.one_of(
            st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), two(0, 14), two(0, 59)),
            st.sampled_from(["z", " Z", "+0530", "+05", " +01:00", " UTC", "UTC", "GMT", "Zulu", "ZZ"]),
        ),
    ),
    "gap": (st.just(" "), st.sampled_from(["  ", "\t", "", "\xa0", " \u2003", "\x1c"])),
    "level": (
        st.sampled_from(sorted(PLAIN_LEVELS)),
        st.sampled_from(
            [
                *("WARNINGS", "Info:", "ERROR:", "iNfO", "DEBUG1", "[INFO]", "SEVERE", "LOG", "Z", "UTC"),
                *("GMT", "x", "INFOx", "Err", "info\u2003", "ＩＮＦＯ"),
            ]
        ),
    ),
    "after": (
        st.sampled_from([" ", "  ", "   "]),
        st.sampled_from([": ", ":", " :", "\t", " \t", " \u2003", "", " \x1c", "\xa0", " \n"]),
    ),
    "message": (
        st.sampled_from(
            [
                "checkout-7f9c4-q9vbd order 8580488 placed with 5 items in 88ms",
                "com.shop.PaymentService - capture failed",
                "com.shop.PaymentService: capture failed",
                "com.shop.PaymentService : capture failed",
                "com.shop.PaymentService\t- capture failed",
                "pkg.Outer$Inner:\tevent",
                "$proxy - x",
                "main: hello",
                "main:hello",
                "kubelet Back-off restarting failed container",
                "Grüße: café",
                "x",
                "x" * 230 + ": long token",
                "a." * 120 + "B - long dotted logger",
                "a." * 100 + "B: long dotted logger",
                "level=error msg=boom",
            ]
        ),
        st.one_of(
            st.sampled_from(["[main] worker started", "[pool-1] - done", "7 retries", "12345 --- [main] x"]),
            st.sampled_from(
                [
                    *("12 items", "1234 --- [main] o.s.Boot : started", "[main] worker started", "٣ digit"),
                    *("", "   ", "\tindented", "-", ": x", "\u2003x"),
                ]
            ),
            st.text(max_size=40),
        ),
    ),
    "trailing": (st.just(""), st.sampled_from(["  ", "\t", "\u2003", "\n"])),
}


def header_lines(edge_part: str | None) -> st.SearchStrategy[str]:
    """Lines made of the usual parts, but for ``edge_part`` taken from its edge values."""
    return st.tuples(*(edge if name == edge_part else usual for name, (usual, edge) in PARTS.items())).map(
        "".join
    )


@st.composite
def mutated(draw: st.DrawFn, lines: st.SearchStrategy[str]) -> str:
    """A line with one character swapped for a look-alike (non-ASCII digit, letter, separator)."""
    line = draw(lines)
    at = draw(st.integers(0, min(len(line), 34) - 1))
    swap = draw(st.sampled_from(["٣", "３", "x", " ", "\t", "Z", ":", "-", "/", "[", "]", "9", ",", "\xa0"]))
    return line[:at] + swap + line[at + 1 :]


@pytest.mark.parametrize("edge_part", [None, *PARTS])
@SETTINGS
@given(data=st.data(), full=st.booleans())
def test_fast_path_gives_what_the_regexes_give(
    edge_part: str | None, data: st.DataObject, full: bool
) -> None:
    lines = header_lines(edge_part)
    line = data.draw(st.one_of(lines, mutated(lines)), label="line")
    expected = parse_iso_by_regex(line, full)
    fast = plain_iso_level(line, full)
    if fast is not None:
        assert fast == expected
    assert parse_iso(line, full) == expected


@pytest.mark.parametrize(
    "line",
    [
        "2024-05-14T13:55:00.142Z INFO  checkout-7f9c4-q9vbd order 8580488 placed with 5 items in 88ms",
        "2024-02-29 23:59:59,5 warn com.shop.Cart - slow",
        "2000-02-29T00:00:00Z ERROR a.b.C: boom",
        "2024-05-14T13:55:00.123456789 Debug main: not a logger  ",
        "2024-05-14T13:55:00 CRITICAL disk full",
    ],
)
def test_fast_path_takes_the_common_shapes(line: str) -> None:
    fast = plain_iso_level(line)
    assert fast is not None
    assert fast == parse_iso_by_regex(line)


@pytest.mark.parametrize(
    ("line", "header"),
    [
        ("2023-02-29T10:00:00Z INFO no such day", False),
        ("1900-02-29T10:00:00Z INFO not a leap year", False),
        ("2024-05-14T24:00:00Z INFO hour 24", False),
        ("2024-05-14T10:00:00+05:30 INFO offset", True),
        ("2024-05-14T10:00:00.1234567890Z INFO ten digits", False),
        ("2024/05/14 10:00:00 INFO slashes", True),
        ("[2024-05-14 10:00:00] INFO bracketed", True),
        ("2024-05-14T10:00:00Z INFO 1234 --- [main] o.s.Boot : spring", True),
        ("2024-05-14T10:00:00Z [main] INFO thread first", True),
        ("2024-05-14T10:00:00Z INFO", True),
        ("2024-05-14T10:00:00Z INFO [main] thread after the level", True),
        ("2024-05-14T10:00:00Z INFO\t\tcom.shop.Cart - tab after the level", True),
        ("2024-05-14T10:00:00Z INFO \u2003em space then message", True),
        ("2024-05-14t10:00:00Z INFO lowercase t", False),
        ("2024-05-14_10:00:00Z INFO underscore", False),
        ("2024-05-14T10:00:00:123Z INFO colon fraction", False),
        ("2024-05-14T10:00:00Z WARNINGS not a level", True),
        ("2024-05-14T10:00:00Z ERROR: colon after the level", True),
        ("2024-05-14T10:00:00 UTC INFO zone name", True),
        ("٢٠٢٤-05-14T10:00:00Z INFO arabic-indic digits", False),
    ],
)
def test_other_shapes_fall_back_to_the_regexes(line: str, header: bool) -> None:
    assert plain_iso_level(line) is None
    assert parse_iso(line) == parse_iso_by_regex(line)
    assert (parse_iso(line) is not None) is header


def test_plain_levels_are_level_words_with_their_severity() -> None:
    words = re.compile(LEVEL_WORDS)
    for word, severity in PLAIN_LEVELS.items():
        assert words.fullmatch(word), word
        assert severity == severity_from_text(word)


SOURCE_LINES = st.lists(
    st.one_of(
        header_lines(None),
        header_lines("message"),
        st.sampled_from(["\tat a.B.c(B.java:1)", "Caused by: x", "", "plain text"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=SOURCE_LINES)
def test_read_logs_is_the_same_without_the_fast_path(lines: list[str]) -> None:
    for fmt in (None, "iso", "log4j"):
        fast = [record.model_dump() for record in read_logs(lines, name="gen", fmt=fmt)]
        fast_messages = list(read_messages(lines, name="gen", fmt=fmt))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(text_formats, "plain_iso_level", lambda line, full=True: None)
            slow = [record.model_dump() for record in read_logs(lines, name="gen", fmt=fmt)]
            slow_messages = list(read_messages(lines, name="gen", fmt=fmt))
        assert fast == slow
        assert fast_messages == slow_messages

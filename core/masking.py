"""Typed placeholder detection: turns the variable parts of a log message into ``<NAME>`` placeholders.

A message is split into tokens on whitespace, except that a quoted span (``"..."``, or ``'...'`` standing
at a token boundary) stays one token even when it holds spaces. Three kinds of quoted text are structure,
not values, and are split into words: a quoted sentence that opens the message (klog's structured form),
an HTTP request line (``"GET /path HTTP/1.1"``) and the ``msg="..."`` of logfmt. Each token is then
classified:

* the whole token (without wrapping brackets, quotes and trailing punctuation) may be one typed value:
  ``<URL>``, ``<PATH>``, ``<EMAIL>``, ``<TIME>``, ``<UUID>``, ``<IP>``, ``<K8S_NAME>``, ``<DURATION>``,
  ``<SIZE>``, ``<NUM>``, ``<HEX>`` or ``<QUOTED>``;
* ``key=value`` masks the value when the value is typed;
* otherwise numbers, hex runs, IPv4 addresses, UUIDs, durations and sizes embedded in a longer token are
  masked in place (``blk_-1608`` → ``blk_-<NUM>``, ``sshd[4120]:`` → ``sshd[<NUM>]:``), while digits glued
  to letters (``ssh2``, ``ec2``, ``v1``) are left alone.

The parameters of a token are the texts its placeholders replaced, in order, so :func:`fill` puts a masked
message back together. A token that already contains a placeholder is kept as it is, its placeholders
being their own parameters; this makes masking idempotent.

Classification results are cached per token (a bounded cache); tokens with digits are cached by the
places of their digits (every digit read as "0") unless they have one of the two places where masking
looks at which digit stands where ("0x" and a Kubernetes name's generated suffix, see
:func:`digit_values_matter`), so a new number, address, time or ``key=value`` of a known shape costs one
dict lookup. On a cache miss, :func:`fast_mask` tries the common shapes with one combined expression before
the step-by-step classification; the two agree wherever the fast one answers (a property test holds them
together). Classified tokens are also kept in one bounded cache shared by every Masker of the process, so
a new miner (one per analysis) does not classify the tokens earlier ones have seen again. This is the
hot path of mining.
"""

from __future__ import annotations

import logging
import re
from typing import Final

log = logging.getLogger(__name__)

PLACEHOLDER_NAMES: Final[tuple[str, ...]] = (
    "IP",
    "NUM",
    "HEX",
    "UUID",
    "PATH",
    "URL",
    "DURATION",
    "EMAIL",
    "QUOTED",
    "K8S_NAME",
    "TIME",
    "SIZE",
    "*",
)
WILDCARD: Final = "<*>"

PLACEHOLDER_RE: Final = re.compile(
    r"<(?:IP|NUM|HEX|UUID|PATH|URL|DURATION|EMAIL|QUOTED|K8S_NAME|TIME|SIZE|\*)>"
)

_QUOTE_CHARS = "\"'"
# One token: a run of non-space characters and quoted spans. A single quote opens a span only at a token
# boundary and closes only at one, so apostrophes in words ("don't") do not start a span.
_TOKEN_RE: Final = re.compile(r"""(?:"[^"\\\n]*(?:\\.[^"\\\n]*)*"|(?<![\w'])'[^'\n]*'(?![\w'])|[^\s])+""")

# An HTTP request line in quotes ("GET /path HTTP/1.1") is structure, not one opaque value.
_REQUEST_IN_QUOTES: Final = re.compile(r'"(?:GET|POST|PUT|DELETE|HEAD|PATCH|OPTIONS|CONNECT|TRACE) ')
# The quoted value of these keys is the message text itself (logfmt), not a parameter.
_MESSAGE_KEY_QUOTES: Final = ('msg="', 'message="', "msg='", "message='")

_LEAD_STRIP = "([{\"'"
_TRAIL_STRIP = ")]}\"',;:.!?"

_URL: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", re.ASCII)
_PATH: Final = re.compile(r"(?:~|\.{1,2})?/[\w.@%+~/=&?#-]*|[A-Za-z]:\\\S*", re.ASCII)
_EMAIL: Final = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", re.ASCII)
_TIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{4}/\d{2}/\d{2}"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}/[A-Z][a-z]{2}/\d{4}(?::\d{2}:\d{2}:\d{2})?"
    r"|\d{4}\d{2}\d{2}T\d{6}Z?",
    re.ASCII,
)
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII
)
_IPV4: Final = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?::\d{1,5})?", re.ASCII)
_IPV6: Final = re.compile(
    r"\[?(?:[0-9a-fA-F]{0,4}:){2,7}(?:[0-9a-fA-F]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?:%[\w.]+)?\]?(?::\d{1,5})?",
    re.ASCII,
)
_MAC: Final = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}", re.ASCII)
# Kubernetes generated names: <deployment>-<replicaset hash>-<pod suffix>, or <owner>-<5-char suffix>.
# The random parts use Kubernetes' alphabet, which has no vowels.
_K8S: Final = re.compile(
    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-[bcdfghjklmnpqrstvwxz2456789]{5,10}-[bcdfghjklmnpqrstvwxz2456789]{5}"
    r"|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-(?=[bcdfghjklmnpqrstvwxz]*[2456789])[bcdfghjklmnpqrstvwxz2456789]{5}",
    re.ASCII,
)
_DURATION: Final = re.compile(
    r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+|\d+(?:\.\d+)?(?:sec|secs|seconds|min|mins|minutes|hrs|d)",
    re.ASCII,
)
_SIZE: Final = re.compile(r"\d+(?:\.\d+)?(?:[kKMGTPE]i?B|[KMGTPE]i|[kKMGTPE]|B|[kKmMgG]b|bytes)", re.ASCII)
_NUM: Final = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?%?", re.ASCII)
_HEX: Final = re.compile(
    r"0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}", re.ASCII
)
_KEY_VALUE: Final = re.compile(r"([A-Za-z_][\w.-]*=)(.+)", re.ASCII)

# Values embedded in a longer token. Delimited by anything that is not a letter or digit, so digits glued
# to letters (ssh2, v1, ec2) do not match.
_EMBEDDED: Final = re.compile(
    r"(?<![A-Za-z0-9.])(?:"
    r"(?P<UUID>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<IP>(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?)"
    r"|(?P<DURATION>\d+(?:\.\d+)?(?:ms|us|ns|s))"
    r"|(?P<SIZE>\d+(?:\.\d+)?(?:[kKMGT]i?B))"
    r"|(?P<HEX>0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,})"
    r"|(?P<NUM>\d+(?:\.\d+)?)"
    r")(?![A-Za-z0-9])",
    re.ASCII,
)

_DIGITS = frozenset("0123456789")
_BYTE_DIGITS_TO_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")

_ASCII_DIGIT: Final = re.compile(r"[0-9]")
# "0x" starts a hex number. A Kubernetes generated name is a whole run of [a-z0-9-] with a lowercase
# letter whose last segment has five characters (the random suffix) and maybe a 5-10 character one before
# it (the replica set hash); their alphabet has some digits and not others. Masking sees no other digit
# values (a token's core is always a whole such run, as its delimiters are none of these characters).
DIGIT_BEFORE_X: Final = re.compile(r"[0-9][xX]")
_LAST_SEGMENT = re.compile(r"-[a-z0-9]{5}(?![a-z0-9-])")
_RUN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
_LOWER = re.compile(r"[a-z]")
_CORE_OPENERS = frozenset("([{\"'=")
_CORE_CLOSERS = frozenset(")]}\"',;:.!?")


def name_spans(message: str) -> list[tuple[int, int]]:
    """Where the runs of ``message`` are that masking could take for a Kubernetes generated name: a whole
    token core (from the start of a token, a bracket, a quote or "=" to the end of one or trailing
    punctuation) of [a-z0-9-] with a lowercase letter, ending in a dash and five characters.

    Where they are depends only on which characters are digits, lowercase letters, dashes or anything
    else, and on the other characters themselves: the digit-folded text decides it. Replacing hex values
    by the template miner's stand-ins (``core.templates._hex_stand_in``, which keep lengths, dashes and
    whether a value has a letter) moves no run either, so the hex-folded text decides it as well."""
    spans: list[tuple[int, int]] = []
    for suffix in _LAST_SEGMENT.finditer(message):
        start = len(message[: suffix.start()].rstrip(_RUN_CHARS))
        before = message[start - 1] if start else " "
        after = message[suffix.end() : suffix.end() + 1] or " "
        if (
            (before in _CORE_OPENERS or before.isspace())
            and (after in _CORE_CLOSERS or after.isspace())
            and _LOWER.search(message, start, suffix.end()) is not None
        ):
            spans.append((start, suffix.end()))
    return spans


def digit_values_matter(message: str) -> bool:
    """Whether masking ``message`` could depend on which digit stands somewhere, not only on where."""
    if ("x" in message or "X" in message) and DIGIT_BEFORE_X.search(message) is not None:
        return True
    if "-" not in message:
        return False  # every name run has a dash
    for start, end in name_spans(message):
        segments = message[start:end].split("-")
        if _ASCII_DIGIT.search(segments[-1]) is not None:
            return True
        if len(segments) > 2 and 5 <= len(segments[-2]) <= 10 and _ASCII_DIGIT.search(segments[-2]):
            return True
    return False


# The common typed tokens in one pass, for the cache-miss path: [key=][brackets]VALUE[punctuation].
# Whenever it matches, mask_token gives the same answer (a property test holds the two together);
# anything else goes the long way.
_FAST: Final = re.compile(
    r"[(\[{]*(?:[A-Za-z_][\w.-]*=[(\[{]*)?(?:"
    r"(?P<TIME>\d{4}-\d{2}-\d{2}(?:T\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}/[A-Z][a-z]{2}/\d{4}(?::\d{2}:\d{2}:\d{2})?)"
    r"|(?P<IP>(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?::\d{1,5})?)"
    r"|(?P<UUID>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<DURATION>(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+)"
    r"|(?P<SIZE>\d+(?:\.\d+)?(?:[kKMGTPE]i?B|[KMGTPE]i|B))"
    r"|(?P<NUM>[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?%?)"
    r"|(?P<HEX>0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,})"
    r"|(?P<PATH>(?:~|\.{1,2})?/[\w.@%+~/=&?#-]*?)"
    r"|(?P<QUOTED>\"[^\"]*\"|'[^']*')"
    r"|(?P<EMAIL>[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
    r"|(?P<URL>[A-Za-z][A-Za-z0-9+.-]*://\S+?)"
    r")[)\]},;:.!?]*",
    re.ASCII,
)

MaskedToken = tuple[str, tuple[str, ...]]


def tokenize(message: str) -> list[str]:
    """Whitespace tokens of ``message``, keeping each quoted span inside one token."""
    if '"' not in message and "'" not in message:
        return message.split()
    stripped = message.lstrip()
    if stripped[:1] == '"':
        # A message that opens with a quoted sentence (klog's structured form) is that sentence plus
        # key/value pairs: the sentence is the template, not a value.
        end = stripped.find('"', 1)
        if end > 0 and (end + 1 == len(stripped) or stripped[end + 1].isspace()):
            return stripped[: end + 1].split() + tokenize(stripped[end + 1 :])
    tokens: list[str] = _TOKEN_RE.findall(message)
    if " " not in message or len(tokens) == len(message.split()):
        return tokens
    out: list[str] = []
    for token in tokens:
        if " " in token and (token.startswith(_MESSAGE_KEY_QUOTES) or _REQUEST_IN_QUOTES.search(token)):
            out.extend(token.split())
        else:
            out.append(token)
    return out


def _classify_whole(core: str) -> str | None:
    """The placeholder name for ``core`` when all of it is one typed value, else None."""
    has_digit = not _DIGITS.isdisjoint(core)
    first = core[0]
    if first in _QUOTE_CHARS and len(core) >= 2 and core[-1] == first:
        return "QUOTED"
    if "://" in core:
        return "URL" if _URL.fullmatch(core) else None
    looks_like_path = first in "/~" or (first == "." and "/" in core) or (len(core) > 2 and core[1] == ":")
    if looks_like_path and _PATH.fullmatch(core):
        return "PATH"
    if "@" in core:
        return "EMAIL" if _EMAIL.fullmatch(core) else None
    if not has_digit:
        if "-" in core and core.islower() and _K8S.fullmatch(core):
            return "K8S_NAME"
        return None
    if core.isdigit() and core.isascii():
        return "NUM"
    last = core[-1]
    if ":" in core:
        if _TIME.fullmatch(core):
            return "TIME"
        if _IPV4.fullmatch(core):
            return "IP"
        if _MAC.fullmatch(core):
            return "HEX"
        if ("::" in core or core.count(":") >= 7) and _IPV6.fullmatch(core):
            return "IP"
        return None
    if "-" in core or "/" in core or "T" in core:
        if _TIME.fullmatch(core):
            return "TIME"
        if len(core) == 36 and _UUID.fullmatch(core):
            return "UUID"
        if core.islower() and _K8S.fullmatch(core):
            return "K8S_NAME"
    if core.count(".") == 3 and _IPV4.fullmatch(core):
        return "IP"
    if "/" in core and _IPV4.fullmatch(core):
        return "IP"
    if last in "dE" and len(core) >= 6 and core.isascii() and core[:-1].isdigit():
        # Six or more hex characters: an id (as the fast path reads it), not 12345 days or exabytes.
        return "HEX"
    if last.isalpha():
        if _DURATION.fullmatch(core):
            return "DURATION"
        if _SIZE.fullmatch(core):
            return "SIZE"
    if _NUM.fullmatch(core):
        return "NUM"
    if _HEX.fullmatch(core):
        return "HEX"
    return None


def _core_bounds(token: str) -> tuple[int, int]:
    """Where the token's core starts and ends once wrapping brackets and trailing punctuation are off.

    A quote is stripped only when it does not open or close a quoted span inside the token.
    """
    start = 0
    end = len(token)
    while start < end and token[start] in _LEAD_STRIP:
        ch = token[start]
        if ch in _QUOTE_CHARS and token.find(ch, start + 1) > 0:
            break
        start += 1
    while end > start and token[end - 1] in _TRAIL_STRIP:
        ch = token[end - 1]
        if ch in _QUOTE_CHARS and token.count(ch, start, end - 1) % 2 == 1:
            break
        end -= 1
    return start, end


def _embedded(match: re.Match[str], params: list[str]) -> str:
    params.append(match.group(0))
    return f"<{match.lastgroup}>"


def mask_token(token: str) -> MaskedToken:
    """The masked form of one token and the texts its placeholders stand for."""
    if "<" in token and ">" in token:
        inner = PLACEHOLDER_RE.findall(token)
        if inner:
            return token, tuple(inner)
    if token[0] == "[" and "]" in token and ":" in token:
        bracketed = token.rstrip(",;.")
        if ("::" in bracketed or bracketed.count(":") >= 7) and _IPV6.fullmatch(bracketed):
            return f"<IP>{token[len(bracketed) :]}", (bracketed,)
    start, end = _core_bounds(token)
    lead, core, trail = token[:start], token[start:end], token[end:]
    if not core:
        return token, ()
    kind = _classify_whole(core)
    if kind is not None:
        return f"{lead}<{kind}>{trail}", (core,)
    if "=" in core:
        kv = _KEY_VALUE.fullmatch(core)
        if kv is not None:
            value = kv.group(2)
            if token.startswith(_MESSAGE_KEY_QUOTES):
                return token, ()
            value_masked, value_params = mask_token(value)
            if value_params:
                return f"{lead}{kv.group(1)}{value_masked}{trail}", value_params
            return token, ()
    if _DIGITS.isdisjoint(token):
        return token, ()
    params: list[str] = []
    masked = _EMBEDDED.sub(lambda m: _embedded(m, params), token)
    return masked, tuple(params)


# Identifiers made of words and numbers joined by "_" or ":" (blk_-1608, rdd_12_3, Main.scala:55, 812:M),
# and an address with a port behind a slash (/10.1.2.3:50010).
_FAST_ID: Final = re.compile(
    r"[(\[{]*(?:[A-Za-z][A-Za-z.]*(?:[_:]-?\d+)+|\d+:[A-Za-z]+)[)\]},;:.!?]*",
    re.ASCII,
)
_FAST_SLASH_IP: Final = re.compile(r"/((?:\d{1,3}\.){3}\d{1,3}:\d{1,5})[)\]},;:.!?]*", re.ASCII)
_DIGIT_RUN: Final = re.compile(r"\d+", re.ASCII)


def fast_mask(token: str) -> str | None:
    """The masked token when it is one of the common typed shapes, else None (use :func:`mask_token`)."""
    if "<" in token or token.startswith(_MESSAGE_KEY_QUOTES):
        return None
    match = _FAST.fullmatch(token)
    if match is None:
        if _FAST_ID.fullmatch(token):
            return _DIGIT_RUN.sub("<NUM>", token)
        address = _FAST_SLASH_IP.fullmatch(token)
        if address is not None:
            return f"/<IP>{token[address.end(1) :]}"
        return None
    kind = match.lastgroup
    assert kind is not None
    return f"{token[: match.start(kind)]}<{kind}>{token[match.end(kind) :]}"


# Results of _classify shared by every Masker in the process, by token. A Masker lives as long as its
# miner, and an analysis makes a new miner, so without this every request would classify its tokens from
# scratch; a result is a function of the token alone, so sharing it changes nothing but the cost. Bounded,
# and cleared when full (a lost entry is only recomputed); dict reads and writes are atomic under the GIL.
SHARED_CACHE_SIZE: Final = 20_000
_shared_classified: dict[str, tuple[str, bool]] = {}


def _classify(token: str, has_digits: bool) -> tuple[str, bool]:
    """The masked ``token`` and whether the result may be cached by the places of its digits (it has
    digits, the result keeps none and no digit's value matters). ``has_digits``: the token has an ASCII
    digit 1-9 (Masker._miss's test). Remembered in the shared cache."""
    masked = fast_mask(token)
    if masked is None:
        masked = mask_token(token)[0]
    result = (masked, has_digits and _DIGITS.isdisjoint(masked) and not digit_values_matter(token))
    if len(_shared_classified) >= SHARED_CACHE_SIZE:
        _shared_classified.clear()
    _shared_classified[token] = result
    return result


class Masker:
    """Masks token lists, with a bounded cache of token results (the hot path of template mining)."""

    def __init__(self, *, cache_size: int = 200_000) -> None:
        self._shapes: dict[str, str] = {}
        # Results of tokens with digits, by the token's UTF-8 with every digit turned to "0" (bytes.translate
        # costs a tenth of str.translate): masking looks at a digit's value only in "0x" and in a Kubernetes
        # name's generated suffix (see digit_values_matter), so tokens without those mask alike wherever
        # their digits stand alike. Kept only for results with no digit.
        self._by_digit_places: dict[bytes, str] = {}
        self._cache_size = cache_size

    def mask_tokens(self, tokens: list[str]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """Masked tokens and, per token, the parameters its placeholders stand for (not cached)."""
        results = [mask_token(token) for token in tokens]
        return tuple(r[0] for r in results), [r[1] for r in results]

    def shape(self, tokens: list[str]) -> tuple[str, ...]:
        """Masked tokens without parameters."""
        get = self._shapes.get
        miss = self._miss
        return tuple([get(token) or miss(token) for token in tokens])

    def _miss(self, token: str) -> str:
        if token.isdigit() and token.isascii():
            return "<NUM>"  # not cached: every number would take a place in the cache
        known = _shared_classified.get(token)  # (a token another miner of this process has seen)
        if known is None:
            encoded = token.encode("utf-8", "surrogatepass")
            places = encoded.translate(_BYTE_DIGITS_TO_ZERO)
            has_digits = places != encoded
            if has_digits:
                found = self._by_digit_places.get(places)
                if found is not None:
                    return found
            known = _classify(token, has_digits)
        masked, by_places = known
        if by_places:
            # Whether a token has a "0x" or a Kubernetes name suffix with digits depends only on where its
            # digits are, so every token that finds this key passes the same test.
            places = token.encode("utf-8", "surrogatepass").translate(_BYTE_DIGITS_TO_ZERO)
            if len(self._by_digit_places) >= self._cache_size:
                self._by_digit_places.clear()
            self._by_digit_places[places] = masked
            return masked
        if len(self._shapes) >= self._cache_size:
            self._shapes.clear()
        self._shapes[token] = masked
        return masked


def mask(message: str) -> tuple[str, list[str]]:
    """``message`` with typed placeholders, tokens joined by single spaces, and the parameters in order."""
    masked: list[str] = []
    params: list[str] = []
    for token in tokenize(message):
        text, token_params = mask_token(token)
        masked.append(text)
        params.extend(token_params)
    return " ".join(masked), params


def fill(template: str, params: list[str]) -> str:
    """Put ``params`` back into the placeholders of ``template``, in order.

    Raises ValueError when the number of parameters does not match the number of placeholders.
    """
    values = iter(params)
    missing = False

    def put(match: re.Match[str]) -> str:
        nonlocal missing
        value = next(values, None)
        if value is None:
            missing = True
            return match.group(0)
        return value

    out = PLACEHOLDER_RE.sub(put, template)
    if missing or next(values, None) is not None:
        raise ValueError(f"template has a different number of placeholders than the {len(params)} parameters")
    return out

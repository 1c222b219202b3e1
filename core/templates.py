"""A streaming log template miner of the Drain family, over typed placeholders.

How a message is placed:

1. Only its first line is mined (a stack trace's frames are not part of its template).
2. It is tokenized and masked (:mod:`core.masking`): variable parts that have a recognisable type become
   ``<IP>``, ``<NUM>``, ``<DURATION>``…; the result is the message's *shape*.
3. Fast paths: a message goes straight to the cluster an earlier message went to when the two have the
   same text up to digit values, or up to digit values and hex values (UUIDs, hex ids), and the earlier
   one's shape kept no digit and had no place where masking looks at a digit's or a hex letter's value
   ("0x", Kubernetes generated names; see _digit_values_matter). A message with Kubernetes generated
   names (pod names) and no "0x" place is looked up by the same folded text plus the names as they are
   (see _name_spans): digit and hex values elsewhere do not matter, and the names are compared whole.
   Otherwise, a message whose shape was seen before goes to the cluster that shape went to. These maps are
   bounded dicts; the text keys cost one ``bytes.translate`` (and one regex substitution for the hex one)
   instead of tokenizing.
4. Otherwise the candidates are the clusters with the same token count and the same first token (or a
   wildcard first token); first tokens that carry digits or placeholders are treated as a wildcard, as
   Drain does with digits. The similarity of a candidate is the share of its *word* positions (constant
   tokens with a letter and no placeholder) that the shape repeats: words carry a template's identity,
   while placeholders and punctuation would let a long shared prefix swamp a differing verb. A template
   with no words falls back to all its constant positions. The best candidate at or above ``similarity`` absorbs the message,
   and positions that differ become ``<*>``; with none, the message starts a new cluster.

Cluster indices are stable within one miner; template ids are a hash of the template text, stable across
runs and processes. Templates only ever generalise, so a record's final template is read from its cluster
index once all records are in.

State is bounded: past ``max_clusters`` live clusters, the least recently used tenth is retired. A retired
cluster keeps its final template tokens and count (so indices handed out earlier still resolve) but no
longer takes new messages. The shape and token caches are bounded and are cleared when full. A message
with a new shape is compared with at most ``max_candidates`` clusters (the most recently used) of its
bucket, so input that never repeats costs bounded time per line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import operator
import re
from array import array
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, TypeVar

from core.masking import DIGIT_BEFORE_X as _DIGIT_BEFORE_X
from core.masking import WILDCARD, Masker, tokenize
from core.masking import digit_values_matter as _digit_values_matter
from core.masking import name_spans as _name_spans
from core.models import TemplateMatch

log = logging.getLogger(__name__)

STATE_VERSION = 1
_DIGITS = frozenset("0123456789")
# Digits folded into the three classes masking can tell apart: "0" (it starts "0x"), the digits in
# Kubernetes' name alphabet, and the rest. Two messages with the same folded text have the same shape
# whenever that shape keeps no digit of its own (every digit went into a placeholder).
_FOLD_DIGITS = bytes.maketrans(b"0123456789", b"0121222222")
# Every digit folded to "0": two messages with the same text up to digit values have the same shape when
# that shape keeps no digit and the message has neither of the two places where masking looks at a
# digit's value (see _digit_values_matter). Whether those places exist depends only on the non-digit
# characters and on where the digits are, which the folded text keeps, so the test made on the message
# that stored a key holds for every message that finds it.
_FOLD_ALL_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_ASCII_DIGIT = re.compile(r"[0-9]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_K8S_PLACEHOLDER = "<K8S_NAME>"
_K = TypeVar("_K", bytes, str | tuple[str, ...])  # the key of a fast-path cache


def _suffix_runs_with_letters(message: str) -> bool:
    """Whether ``message`` has a run that could be a Kubernetes generated name (its letters matter)."""
    return bool(_name_spans(message))


# Hex values as masking sees them: a UUID, or a run of 8 or more lowercase hex characters, each bounded
# like masking's embedded values (no letter, digit or "." before, no word character after). Masking looks
# at such a value only for its length and for having digits and letters (a run with two or more letters
# cannot be a number with an exponent or a duration in days), except in two places: inside a Kubernetes
# name (_suffix_runs_with_letters rules those messages out), and at the start of a key, URL scheme or
# "name:123" identifier, where whether it starts with a letter counts (kept when one of "=.-+:" follows).
# So each one can stand for all the values like it in the hex-folded cache key.
_HEX_VALUE = re.compile(
    r"(?<![0-9A-Za-z.])(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{8,})(?!\w)"
)
_DIGIT_BYTES = b"0123456789"  # (hex values are ASCII; bytes.translate costs a tenth of str.translate)
# Lowercase hex characters to "h", every other byte to ".": a hex value needs eight of them in a row.
_HEX_CLASSES = bytes(ord("h") if chr(code) in "0123456789abcdef" else ord(".") for code in range(256))
_HEX_RUN = b"h" * 8
_KEY_CONTINUATIONS = frozenset("=.-+:")


def _hex_stand_in(match: re.Match[str]) -> str:
    return _stand_in_at(match.string, match.start(), match.end())


def _stand_in_at(message: str, start: int, end: int) -> str:
    """The stand-in of the hex value ``message[start:end]`` (a ``_HEX_VALUE`` match)."""
    text = message[start:end]
    size = end - start
    if size == 36 and text[8] == "-":
        letters = len(text.encode("ascii").translate(None, _DIGIT_BYTES)) - 4  # four dashes
        if letters in (0, 32):
            return text
        tail = "000000a-0000-0000-0000-000000000000"
    else:
        letters = len(text.encode("ascii").translate(None, _DIGIT_BYTES))  # a run without dashes
        if letters < 2 or size - letters < 2:
            return text
        tail = "0a0a" + "0" * (size - 5)
    # The first character: whether the value starts with a letter counts at the start of a key, URL scheme
    # or identifier (one of "=.-+:" follows).
    following = message[end : end + 1]
    if text[0] > "9" and following and following in _KEY_CONTINUATIONS:
        return "a" + tail
    return "0" + tail


def _hex_stand_ins(message: str, classes: bytes, start: int) -> str:
    """``_HEX_VALUE.sub(_hex_stand_in, message)`` for an ASCII message whose ``_HEX_CLASSES`` translation
    is ``classes`` and whose first eight hex characters in a row start at ``start``.

    A value the regex takes starts where a run of hex characters starts (its look-behind rules out a hex
    character before it) and the run is at least eight long; it ends where the run ends (no word
    character may follow it, and hex characters are word characters). So ``sub``'s left-to-right scan
    can only match at the starts of such runs: only those are tried, with ``match`` at that position
    (the look-behind still sees the character before it), and a run that does not match is skipped whole.
    """
    pieces: list[str] = []
    done = 0
    at = start
    while at >= 0:
        found = _HEX_VALUE.match(message, at)
        if found is None:
            end = classes.find(b".", at)  # where this run ends
            if end < 0:
                break
        else:
            end = found.end()
            pieces.append(message[done:at])
            pieces.append(_stand_in_at(message, at, end))
            done = end
        at = classes.find(_HEX_RUN, end)
    if not pieces:
        return message
    pieces.append(message[done:])
    return "".join(pieces)


def template_id_for(template: str) -> str:
    """A short id for a template text: the same text gives the same id in every run and process."""
    return hashlib.blake2b(template.encode("utf-8"), digest_size=6).hexdigest()


def first_line(message: str) -> str:
    """The part of a (possibly multi-line) message that is mined."""
    if "\n" in message:
        message = message[: message.index("\n")]
    return message


def _is_word(token: str) -> bool:
    """A constant token that carries meaning: it has a letter and no placeholder."""
    if "<" in token:
        return False
    if token.isascii():  # the ASCII letters are the only ASCII characters str.isalpha accepts
        return _ASCII_LETTER.search(token) is not None
    return any(c.isalpha() for c in token)


@lru_cache(maxsize=4096)
def _word_positions(tokens: tuple[str, ...]) -> tuple[int, ...]:
    """Where a template's words are (see _is_word); kept per template, as the same ones come back in
    request after request (each analysis has a new miner)."""
    return tuple(i for i, token in enumerate(tokens) if _is_word(token))


class _Cluster:
    __slots__ = ("count", "last", "text", "tid", "tokens", "words")

    def __init__(self, tokens: tuple[str, ...], *, count: int, last: int) -> None:
        self.retemplate(tokens)
        self.count = count
        self.last = last

    def retemplate(self, tokens: tuple[str, ...]) -> None:
        self.tokens = tokens
        self.words = _word_positions(tokens)
        # The template text and id, made when first asked for (the report and every detector ask for
        # them, often many times per cluster) and dropped with the tokens they were made from.
        self.text: str | None = None
        self.tid: str | None = None

    def template(self) -> str:
        text = self.text
        if text is None:
            text = self.text = " ".join(self.tokens)
        return text


# The texts of a message at some spans: a string for one span, a tuple of strings for several.
_NamesAt = Callable[[str], str | tuple[str, ...]]


def _names_at(spans: list[tuple[int, int]]) -> _NamesAt:
    """The texts of a message at ``spans`` (at least one) in one C call: ``itemgetter`` of slices takes
    ``message[start:end]`` for each. One key type per entry (the spans are fixed per entry)."""
    return operator.itemgetter(*[slice(start, end) for start, end in spans])


def _bucket_key(tokens: tuple[str, ...]) -> tuple[int, str]:
    if not tokens:
        return (0, "")
    first = tokens[0]
    if "<" in first or not _DIGITS.isdisjoint(first):
        first = WILDCARD
    return (len(tokens), first)


class TemplateMiner:
    """Streaming template miner; see the module docstring for the algorithm."""

    def __init__(
        self,
        *,
        similarity: float = 0.6,
        max_clusters: int = 20_000,
        shape_cache_size: int = 200_000,
        token_cache_size: int = 200_000,
        max_candidates: int = 100,
    ) -> None:
        if not 0.0 < similarity <= 1.0:
            raise ValueError(f"similarity must be in (0, 1], got {similarity}")
        if max_clusters < 10:
            raise ValueError(f"max_clusters must be at least 10, got {max_clusters}")
        self.similarity = similarity
        self.max_clusters = max_clusters
        self.shape_cache_size = shape_cache_size
        self.token_cache_size = token_cache_size
        self.max_candidates = max(1, max_candidates)
        self._masker = Masker(cache_size=token_cache_size)
        self._clusters: dict[int, _Cluster] = {}
        # Retired clusters, compactly and indexed by cluster index: tokens joined by "\n" (mined text is one
        # line, so no token holds one) and the final count. Live clusters have None / 0 here.
        self._retired: list[str | None] = []
        self._retired_count: array[int] = array("q")
        self._buckets: dict[tuple[int, str], list[int]] = {}
        self._shapes: dict[tuple[str, ...], int] = {}
        self._folded: dict[bytes, int] = {}
        self._folded_all: dict[bytes, int] = {}
        self._folded_hex: dict[bytes, int] = {}
        # Messages with Kubernetes generated names: folded text -> (where the names are, names -> cluster).
        # (the names as _names_at gives them: a string for one name, a tuple for several)
        self._named: dict[bytes, tuple[_NamesAt, dict[str | tuple[str, ...], int]]] = {}
        self._named_size = 0
        self._next_id = 0
        self._tick = 0

    # --- learning ------------------------------------------------------------------------------------------

    def add(self, message: str) -> int:
        """Mine one message; returns the index of the cluster it joined or started."""
        self._tick += 1
        if "\n" in message:
            message = message[: message.index("\n")]
        encoded = message.encode("utf-8", "surrogatepass")
        folded_all = encoded.translate(_FOLD_ALL_DIGITS)
        # (a membership test first: most messages of a stream with pod names miss here, and a miss then
        # costs no method call; _hit still decides every hit)
        if folded_all in self._folded_all:
            cid = self._hit(self._folded_all, folded_all)
            if cid is not None:
                return cid
        if self._folded:  # (empty unless messages with "0x" places came)
            cid = self._hit(self._folded, encoded.translate(_FOLD_DIGITS))
            if cid is not None:
                return cid
        folded_hex = b""
        stand_in = message
        classes = encoded.translate(_HEX_CLASSES)
        first_hex = classes.find(_HEX_RUN)  # cheap test before the regex
        if first_hex >= 0:
            if len(encoded) == len(message):  # ASCII: byte offsets are character offsets
                stand_in = _hex_stand_ins(message, classes, first_hex)
            else:
                stand_in = _HEX_VALUE.sub(_hex_stand_in, message)
        if stand_in != message:
            folded_hex = stand_in.encode("utf-8", "surrogatepass").translate(_FOLD_ALL_DIGITS)
            if folded_hex in self._folded_hex:
                cid = self._hit(self._folded_hex, folded_hex)
                if cid is not None:
                    return cid
        named = self._named.get(folded_hex or folded_all) if self._named else None
        if named is not None:
            cid = self._hit(named[1], named[0](message))
            if cid is not None:
                return cid
        shape = self._masker.shape(tokenize(message))
        cid = self._shapes.get(shape)
        if cid is None or cid not in self._clusters:
            cid = self._place(shape)
            if len(self._shapes) >= self.shape_cache_size:
                self._shapes.clear()
                self._named.clear()
                self._named_size = 0
            self._shapes[shape] = cid
        else:
            cluster = self._clusters[cid]
            cluster.count += 1
            cluster.last = self._tick
        joined = " ".join(shape)
        if _ASCII_DIGIT.search(joined) is None:
            if _digit_values_matter(message):
                if len(self._folded) >= self.shape_cache_size:
                    self._folded.clear()
                self._folded[encoded.translate(_FOLD_DIGITS)] = cid
            elif folded_hex and not _suffix_runs_with_letters(message):
                if len(self._folded_hex) >= self.shape_cache_size:
                    self._folded_hex.clear()
                self._folded_hex[folded_hex] = cid
            else:
                if len(self._folded_all) >= self.shape_cache_size:
                    self._folded_all.clear()
                self._folded_all[folded_all] = cid
        elif _K8S_PLACEHOLDER in joined and _ASCII_DIGIT.search(joined.replace(_K8S_PLACEHOLDER, "")) is None:
            self._remember_named(message, cid, stand_in=stand_in, key=folded_hex or folded_all)
        return cid

    def _hit(self, cache: dict[_K, int], key: _K) -> int | None:
        """The cluster a fast-path cache holds for ``key``, counted as seen; None on a miss (an entry whose
        cluster was retired is dropped)."""
        cid = cache.get(key)
        if cid is None:
            return None
        cluster = self._clusters.get(cid)
        if cluster is None:
            del cache[key]
            return None
        cluster.count += 1
        cluster.last = self._tick
        return cid

    def _remember_named(self, message: str, cid: int, *, stand_in: str, key: bytes) -> None:
        """Remember a message whose shape keeps no digit but the one of ``<K8S_NAME>``: by its folded text
        (``key``) and its Kubernetes names as they are. Masking reads a name's letters and digits and
        nothing else in the message beyond what the folded text keeps (see _digit_values_matter and
        _HEX_VALUE), so a message with the same key and the same names has the same shape.

        These entries go when the shape cache is cleared: a hit here then always gives what the shape
        cache would (an entry's shape maps to its cluster for as long as the entry lives)."""
        spans = _name_spans(stand_in)
        if not spans:
            return
        for pair in _DIGIT_BEFORE_X.finditer(message):
            # a "0x" place counts only outside the names (no such pair crosses a name's edge)
            if not any(start <= pair.start() < end for start, end in spans):
                return
        if self._named_size >= self.shape_cache_size:
            self._named.clear()
            self._named_size = 0
        named = self._named.get(key)
        if named is None:
            named = self._named[key] = (_names_at(spans), {})
        names = _names_at(spans)(message)
        if names not in named[1]:
            self._named_size += 1
        named[1][names] = cid

    def _place(self, shape: tuple[str, ...]) -> int:
        key = _bucket_key(shape)
        found = self._best(shape, self._buckets.get(key), self.similarity)
        if found is None and key[1] != WILDCARD:
            found = self._best(shape, self._buckets.get((key[0], WILDCARD)), self.similarity)
        if found is not None:
            cid, cluster = found
            cluster.count += 1
            cluster.last = self._tick
            if cluster.tokens != shape:
                self._generalise(cid, cluster, shape)
            bucket = self._buckets[_bucket_key(cluster.tokens)]
            if bucket[-1] != cid:
                bucket.remove(cid)
                bucket.append(cid)
            return cid
        cid = self._next_id
        self._next_id += 1
        self._retired.append(None)
        self._retired_count.append(0)
        self._clusters[cid] = _Cluster(shape, count=1, last=self._tick)
        self._buckets.setdefault(key, []).append(cid)
        if len(self._clusters) > self.max_clusters:
            self._retire_oldest()
        return cid

    def _best(
        self, shape: tuple[str, ...], bucket: list[int] | None, threshold: float
    ) -> tuple[int, _Cluster] | None:
        if not bucket:
            return None
        clusters = self._clusters
        size = len(shape)
        best: tuple[int, _Cluster] | None = None
        best_score = -1.0
        best_constants = -1
        # The most recently used clusters sit at the end of a bucket; look at no more than max_candidates.
        for cid in bucket[-1 : -self.max_candidates - 1 : -1]:
            cluster = clusters[cid]
            tokens = cluster.tokens
            words = cluster.words
            if words:
                # Words carry the template; placeholders and punctuation say little about identity.
                equal = 0
                for i in words:
                    if tokens[i] == shape[i]:
                        equal += 1
                constants = len(words)
            else:
                constants = size - tokens.count(WILDCARD)
                equal = sum(map(operator.eq, tokens, shape))
            score = equal / constants if constants else 1.0
            if score >= threshold and (
                score > best_score or (score == best_score and constants > best_constants)
            ):
                best = (cid, cluster)
                best_score = score
                best_constants = constants
        return best

    def _generalise(self, cid: int, cluster: _Cluster, shape: tuple[str, ...]) -> None:
        old_key = _bucket_key(cluster.tokens)
        merged = tuple(a if a == b else WILDCARD for a, b in zip(cluster.tokens, shape, strict=True))
        cluster.retemplate(merged)
        new_key = _bucket_key(merged)
        if new_key != old_key:
            self._buckets[old_key].remove(cid)
            if not self._buckets[old_key]:
                del self._buckets[old_key]
            self._buckets.setdefault(new_key, []).append(cid)

    def _retire_oldest(self) -> None:
        excess = len(self._clusters) - self.max_clusters
        victims = sorted(self._clusters, key=lambda c: self._clusters[c].last)[
            : max(excess, self.max_clusters // 10)
        ]
        for cid in victims:
            cluster = self._clusters.pop(cid)
            key = _bucket_key(cluster.tokens)
            bucket = self._buckets[key]
            bucket.remove(cid)
            if not bucket:
                del self._buckets[key]
            self._retired[cid] = "\n".join(cluster.tokens)
            self._retired_count[cid] = cluster.count
        log.debug("retired %d least recently used template clusters", len(victims))

    # --- reading -------------------------------------------------------------------------------------------

    def _retired_text(self, cluster: int) -> str:
        joined = self._retired[cluster] if 0 <= cluster < len(self._retired) else None
        if joined is None:
            raise KeyError(f"no template cluster {cluster}")
        return joined

    def _tokens(self, cluster: int) -> tuple[str, ...]:
        live = self._clusters.get(cluster)
        if live is not None:
            return live.tokens
        joined = self._retired_text(cluster)
        return tuple(joined.split("\n")) if joined else ()

    def template(self, cluster: int) -> str:
        """The current template text of ``cluster``, with ``<NAME>`` placeholders."""
        live = self._clusters.get(cluster)
        if live is not None:
            return live.template()
        return self._retired_text(cluster).replace("\n", " ")

    def template_id(self, cluster: int) -> str:
        """The stable id of the current template of ``cluster``."""
        live = self._clusters.get(cluster)
        if live is None:
            return template_id_for(self.template(cluster))
        tid = live.tid
        if tid is None:
            tid = live.tid = template_id_for(live.template())
        return tid

    def count(self, cluster: int) -> int:
        """How many messages ``cluster`` has taken."""
        live = self._clusters.get(cluster)
        if live is not None:
            return live.count
        self._retired_text(cluster)
        return self._retired_count[cluster]

    def clusters(self) -> Iterator[int]:
        """Every cluster index handed out so far (live or retired), in creation order."""
        return iter(range(self._next_id))

    def __len__(self) -> int:
        return self._next_id

    def params(self, message: str, cluster: int) -> list[str]:
        """The texts that fill the placeholders of ``cluster``'s template for ``message``, in order.

        Raises ValueError when the message does not fit the template.
        """
        tokens = tokenize(first_line(message))
        shape, token_params = self._masker.mask_tokens(tokens)
        template = self._tokens(cluster)
        if len(template) != len(shape):
            raise ValueError(f"message has {len(shape)} tokens, template {cluster} has {len(template)}")
        out: list[str] = []
        for position, (expected, got) in enumerate(zip(template, shape, strict=True)):
            if expected == WILDCARD:
                out.append(tokens[position])
            elif expected == got:
                out.extend(token_params[position])
            else:
                raise ValueError(f"message does not fit template {cluster} at token {position + 1}")
        return out

    def match(self, message: str) -> TemplateMatch | None:
        """The template ``message`` fits without changing it, or None; learns nothing."""
        tokens = tokenize(first_line(message))
        shape = self._masker.shape(tokens)
        cid = self._shapes.get(shape)
        if cid is None or cid not in self._clusters:
            cid = self._fitting(shape)
        if cid is None:
            return None
        template = self.template(cid)
        return TemplateMatch(
            template_id=template_id_for(template), template=template, params=self.params(message, cid)
        )

    def _fitting(self, shape: tuple[str, ...]) -> int | None:
        """The most specific live cluster whose template ``shape`` fits as it is (wildcards aside)."""
        key = _bucket_key(shape)
        best: int | None = None
        best_constants = -1
        for bucket_key in (key, (key[0], WILDCARD)):
            for cid in self._buckets.get(bucket_key, ()):
                tokens = self._clusters[cid].tokens
                if all(t in (WILDCARD, s) for t, s in zip(tokens, shape, strict=True)):
                    constants = len(tokens) - tokens.count(WILDCARD)
                    if constants > best_constants:
                        best, best_constants = cid, constants
            if key[1] == WILDCARD:
                break
        return best

    # --- persistence ---------------------------------------------------------------------------------------

    def to_state(self) -> bytes:
        """The miner's learned state as JSON bytes (caches are not saved; they refill as messages come)."""
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "config": {
                "similarity": self.similarity,
                "max_clusters": self.max_clusters,
                "shape_cache_size": self.shape_cache_size,
                "token_cache_size": self.token_cache_size,
                "max_candidates": self.max_candidates,
            },
            "next_id": self._next_id,
            "tick": self._tick,
            "clusters": [[cid, list(c.tokens), c.count, c.last] for cid, c in self._clusters.items()],
            "retired": [
                [cid, joined.split("\n") if joined else [], self._retired_count[cid]]
                for cid, joined in enumerate(self._retired)
                if joined is not None
            ],
        }
        return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_state(cls, data: bytes) -> TemplateMiner:
        """A miner restored from :meth:`to_state` output. Raises ValueError on state it cannot read."""
        try:
            state = json.loads(data)
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"unsupported template miner state version {state.get('version')!r}")
            config = state["config"]
            miner = cls(
                similarity=float(config["similarity"]),
                max_clusters=int(config["max_clusters"]),
                shape_cache_size=int(config["shape_cache_size"]),
                token_cache_size=int(config["token_cache_size"]),
                max_candidates=int(config.get("max_candidates", 100)),
            )
            for cid, tokens, count, last in state["clusters"]:
                cluster = _Cluster(tuple(str(t) for t in tokens), count=int(count), last=int(last))
                miner._clusters[int(cid)] = cluster
                miner._buckets.setdefault(_bucket_key(cluster.tokens), []).append(int(cid))
            miner._next_id = int(state["next_id"])
            miner._retired = [None] * miner._next_id
            miner._retired_count = array("q", bytes(8 * miner._next_id))
            for cid, tokens, count in state["retired"]:
                miner._retired[int(cid)] = "\n".join(str(t) for t in tokens)
                miner._retired_count[int(cid)] = int(count)
            miner._tick = int(state["tick"])
            unknown = [cid for cid in miner._clusters if not 0 <= cid < miner._next_id]
            if unknown or any(
                miner._retired[cid] is None and cid not in miner._clusters for cid in range(miner._next_id)
            ):
                raise ValueError("template miner state is malformed: cluster indices do not add up")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ValueError(f"template miner state is malformed: {type(exc).__name__} {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"template miner state is not JSON: {exc.msg} at position {exc.pos}") from exc
        return miner

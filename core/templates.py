"""A streaming log template miner of the Drain family, over typed placeholders.

How a message is placed:

1. Only its first line is mined (a stack trace's frames are not part of its template).
2. It is tokenized and masked (:mod:`core.masking`): variable parts that have a recognisable type become
   ``<IP>``, ``<NUM>``, ``<DURATION>``…; the result is the message's *shape*.
3. Fast path: a shape seen before goes straight to the cluster it went to last time (a bounded dict).
4. Otherwise the candidates are the clusters with the same token count and the same first token (or a
   wildcard first token); first tokens that carry digits are treated as a wildcard, as Drain does. The
   similarity of a candidate is the share of its constant positions (typed placeholders count as
   constants) that the shape repeats. The best candidate at or above ``similarity`` absorbs the message,
   and positions that differ become ``<*>``; with none, the message starts a new cluster.

Cluster indices are stable within one miner; template ids are a hash of the template text, stable across
runs and processes. Templates only ever generalise, so a record's final template is read from its cluster
index once all records are in.

State is bounded: past ``max_clusters`` live clusters, the least recently used tenth is retired. A retired
cluster keeps its final template tokens and count (so indices handed out earlier still resolve) but no
longer takes new messages. The shape and token caches are bounded and are cleared when full.
"""

from __future__ import annotations

import hashlib
import json
import logging
import operator
from collections.abc import Iterator
from typing import Any

from core.masking import WILDCARD, Masker, tokenize
from core.models import TemplateMatch

log = logging.getLogger(__name__)

STATE_VERSION = 1
_DIGITS = frozenset("0123456789")


def template_id_for(template: str) -> str:
    """A short id for a template text: the same text gives the same id in every run and process."""
    return hashlib.blake2b(template.encode("utf-8"), digest_size=6).hexdigest()


def first_line(message: str) -> str:
    """The part of a (possibly multi-line) message that is mined."""
    if "\n" in message:
        message = message[: message.index("\n")]
    return message


class _Cluster:
    __slots__ = ("count", "last", "tokens", "wild")

    def __init__(self, tokens: tuple[str, ...], *, count: int, last: int) -> None:
        self.tokens = tokens
        self.wild = tokens.count(WILDCARD)
        self.count = count
        self.last = last


def _bucket_key(tokens: tuple[str, ...]) -> tuple[int, str]:
    if not tokens:
        return (0, "")
    first = tokens[0]
    if not _DIGITS.isdisjoint(first):
        first = WILDCARD
    return (len(tokens), first)


class TemplateMiner:
    """Streaming template miner; see the module docstring for the algorithm."""

    def __init__(
        self,
        *,
        similarity: float = 0.5,
        max_clusters: int = 20_000,
        shape_cache_size: int = 200_000,
        token_cache_size: int = 100_000,
    ) -> None:
        if not 0.0 < similarity <= 1.0:
            raise ValueError(f"similarity must be in (0, 1], got {similarity}")
        if max_clusters < 10:
            raise ValueError(f"max_clusters must be at least 10, got {max_clusters}")
        self.similarity = similarity
        self.max_clusters = max_clusters
        self.shape_cache_size = shape_cache_size
        self.token_cache_size = token_cache_size
        self._masker = Masker(cache_size=token_cache_size)
        self._clusters: dict[int, _Cluster] = {}
        self._retired: dict[int, tuple[tuple[str, ...], int]] = {}
        self._buckets: dict[tuple[int, str], list[int]] = {}
        self._shapes: dict[tuple[str, ...], int] = {}
        self._next_id = 0
        self._tick = 0

    # --- learning ------------------------------------------------------------------------------------------

    def add(self, message: str) -> int:
        """Mine one message; returns the index of the cluster it joined or started."""
        self._tick += 1
        if "\n" in message:
            message = message[: message.index("\n")]
        shape = self._masker.masked_only(tokenize(message))
        cid = self._shapes.get(shape)
        if cid is not None:
            cluster = self._clusters.get(cid)
            if cluster is not None:
                cluster.count += 1
                cluster.last = self._tick
                return cid
            del self._shapes[shape]
        cid = self._place(shape)
        if len(self._shapes) >= self.shape_cache_size:
            self._shapes.clear()
        self._shapes[shape] = cid
        return cid

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
            return cid
        cid = self._next_id
        self._next_id += 1
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
        for cid in bucket:
            cluster = clusters[cid]
            tokens = cluster.tokens
            constants = size - cluster.wild
            if constants == 0:
                score = 1.0
            else:
                equal = sum(map(operator.eq, tokens, shape))
                score = equal / constants
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
        cluster.tokens = merged
        cluster.wild = merged.count(WILDCARD)
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
            self._retired[cid] = (cluster.tokens, cluster.count)
        log.debug("retired %d least recently used template clusters", len(victims))

    # --- reading -------------------------------------------------------------------------------------------

    def _tokens(self, cluster: int) -> tuple[str, ...]:
        live = self._clusters.get(cluster)
        if live is not None:
            return live.tokens
        retired = self._retired.get(cluster)
        if retired is None:
            raise KeyError(f"no template cluster {cluster}")
        return retired[0]

    def template(self, cluster: int) -> str:
        """The current template text of ``cluster``, with ``<NAME>`` placeholders."""
        return " ".join(self._tokens(cluster))

    def template_id(self, cluster: int) -> str:
        """The stable id of the current template of ``cluster``."""
        return template_id_for(self.template(cluster))

    def count(self, cluster: int) -> int:
        """How many messages ``cluster`` has taken."""
        live = self._clusters.get(cluster)
        if live is not None:
            return live.count
        retired = self._retired.get(cluster)
        if retired is None:
            raise KeyError(f"no template cluster {cluster}")
        return retired[1]

    def clusters(self) -> Iterator[int]:
        """Every cluster index handed out so far (live or retired), in creation order."""
        return iter(sorted([*self._clusters, *self._retired]))

    def __len__(self) -> int:
        return len(self._clusters) + len(self._retired)

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
        shape = self._masker.masked_only(tokens)
        cid = self._shapes.get(shape)
        if cid is None or cid not in self._clusters:
            cid = None
            key = _bucket_key(shape)
            for bucket_key in (key, (key[0], WILDCARD)):
                found = self._best(shape, self._buckets.get(bucket_key), 1.0)
                if found is not None:
                    cid = found[0]
                    break
        if cid is None:
            return None
        template = self.template(cid)
        return TemplateMatch(
            template_id=template_id_for(template), template=template, params=self.params(message, cid)
        )

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
            },
            "next_id": self._next_id,
            "tick": self._tick,
            "clusters": [[cid, list(c.tokens), c.count, c.last] for cid, c in self._clusters.items()],
            "retired": [[cid, list(tokens), count] for cid, (tokens, count) in self._retired.items()],
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
            )
            for cid, tokens, count, last in state["clusters"]:
                cluster = _Cluster(tuple(str(t) for t in tokens), count=int(count), last=int(last))
                miner._clusters[int(cid)] = cluster
                miner._buckets.setdefault(_bucket_key(cluster.tokens), []).append(int(cid))
            for cid, tokens, count in state["retired"]:
                miner._retired[int(cid)] = (tuple(str(t) for t in tokens), int(count))
            miner._next_id = int(state["next_id"])
            miner._tick = int(state["tick"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"template miner state is malformed: {type(exc).__name__} {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"template miner state is not JSON: {exc.msg} at position {exc.pos}") from exc
        return miner

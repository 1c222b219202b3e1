"""Retrieval: text embedders and vector indexes behind small protocols, with embedded defaults.

* :class:`HashedEmbedder` needs no model download. It turns text into signed, feature-hashed vectors of
  word unigrams and bigrams, infrastructure "concepts" (a small synonym table: ``clients`` and
  ``connections`` share the concept ``connection``; ``ECONNREFUSED`` carries ``connection`` and
  ``refused``), and character n-grams of identifier-like tokens (``OOMKilled``, ``too_many_connections``).
  It is lexical, not semantic: two texts are close when they share words, stems, concepts or identifier
  fragments. A sentence-transformers or API embedder (``faultmaven.embedders``) does better on paraphrase.
* :class:`ExactIndex` is exact cosine search over a numpy matrix held in memory (so bounded by memory:
  ``n × dimension × 4`` bytes, about 4 KB per item at 1024 dimensions), optionally persisted to a
  directory and loaded again on open.

The :class:`VectorIndex` protocol is async so that remote indexes (Pinecone) and the embedded one fit the
same interface; the embedded index never awaits anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.answers import IncidentCase, SimilarIncident
from core.errors import InputError
from core.models import Category

logger = logging.getLogger(__name__)

FloatMatrix = npt.NDArray[np.float32]
ItemKind = Literal["incident", "runbook", "signature"]


# --- protocols and records ---------------------------------------------------------------------------------


@runtime_checkable
class Embedder(Protocol):
    dimension: int
    name: str

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Vectors for ``texts``: shape ``(len(texts), dimension)``, float32, each row of unit length (a row
        is all zeros only when its text carries no usable token)."""
        ...


class VectorItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=512)
    kind: ItemKind
    namespace: str = Field(min_length=1, max_length=200)
    text: str
    metadata: dict[str, str] = Field(default_factory=dict)


class SearchHit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: ItemKind
    score: float = Field(description="Cosine similarity in [-1, 1]; higher is closer.")
    metadata: dict[str, str] = Field(default_factory=dict)


class VectorIndex(Protocol):
    async def upsert(self, items: Sequence[VectorItem], vectors: FloatMatrix) -> None:
        """Insert or replace ``items`` (keyed by namespace and id); row i of ``vectors`` belongs to item i."""
        ...

    async def query(
        self, vector: FloatMatrix, *, namespace: str, top_k: int = 5, kind: str | None = None
    ) -> list[SearchHit]:
        """The ``top_k`` items of ``namespace`` closest to ``vector`` (optionally of one kind), best first."""
        ...

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        """Remove ``ids`` from ``namespace``; ids that are not there are ignored."""
        ...


def normalize_rows(matrix: npt.NDArray[np.floating]) -> FloatMatrix:
    """Rows scaled to unit L2 length (all-zero rows stay zero), as float32."""
    out = np.asarray(matrix, dtype=np.float32)
    if out.ndim != 2:
        raise InputError(f"expected a 2-D matrix of vectors, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)


# --- the hashed embedder -----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_HEXISH_RE = re.compile(r"^(?:0x)?[0-9a-f]{6,}$|^\d+$|^[0-9a-f]{8}-[0-9a-f]{4}-")

_STOP_WORDS = frozenset(
    """a an the of to in on at by for from with and or but if then than this that these those is are was were
    be been being it its as into over under about after before while during has have had do does did can
    could should would will shall may might must i we you he she they them our your their there here so
    such via per also just only very please""".split()  # noqa: SIM905
)


def stem(word: str) -> str:
    """A deliberately small English suffix stripper: plurals, -ing, -ed (``connections`` → ``connection``)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4:
        return word[:-2]
    return word


# Words that name the same infrastructure concept. A token contributes its own feature AND its concept's.
_CONCEPTS: dict[str, tuple[str, ...]] = {
    "connection": (
        "connection", "connect", "conn", "client", "socket", "session", "econnrefused", "econnreset",
        "backend", "pgbouncer",
    ),
    "database": (
        "database", "db", "postgres", "postgresql", "pg", "psql", "mysql", "mariadb", "sql", "rds",
        "aurora", "mongodb", "mongo", "redis", "cassandra", "query",
    ),
    "postgres": ("postgres", "postgresql", "pg", "psql", "pgbouncer"),
    "limit": (
        "many", "exhausted", "exhaustion", "limit", "maximum", "max", "saturated", "saturation",
        "capacity", "full", "exceeded", "pool", "quota",
    ),
    "memory": ("memory", "oom", "oomkilled", "heap", "rss", "outofmemoryerror", "malloc", "swap", "ram", "137"),
    "disk": ("disk", "space", "enospc", "filesystem", "volume", "inode", "storage", "pvc"),
    "cpu": ("cpu", "throttling", "throttled", "load", "steal"),
    "timeout": ("timeout", "timed", "deadline", "etimedout", "slow", "latency", "hang", "hung"),
    "refused": ("refused", "econnrefused", "unreachable", "reset", "econnreset", "ehostunreach", "broken"),
    "dns": ("dns", "resolve", "resolution", "nxdomain", "lookup", "servfail", "coredns", "hostname"),
    "tls": ("tls", "ssl", "certificate", "cert", "x509", "handshake", "expired", "ca"),
    "auth": (
        "auth", "authentication", "unauthorized", "forbidden", "denied", "permission", "credential",
        "password", "login", "401", "403", "iam", "token",
    ),
    "ratelimit": ("ratelimit", "throttle", "throttled", "429", "quota", "backoff"),
    "crash": ("crash", "crashloopbackoff", "crashloop", "restart", "restarted", "killed", "exit", "panic"),
    "deploy": ("deploy", "deployment", "rollout", "release", "version", "upgrade", "rollback"),
    "queue": ("queue", "backlog", "lag", "consumer", "kafka", "rabbitmq", "sqs", "partition"),
    "upstream": (
        "upstream", "502", "503", "504", "gateway", "unavailable", "dependency", "downstream", "balancer",
        "lb", "ingress", "nginx", "haproxy", "envoy", "proxy",
    ),
    "scheduling": (
        "unschedulable", "pending", "insufficient", "scheduling", "schedule", "evicted", "eviction", "node",
    ),
    "config": ("config", "configuration", "misconfigured", "invalid", "missing", "env", "setting"),
}  # fmt: skip

_CONCEPTS_OF: dict[str, tuple[str, ...]] = {}
for _concept, _words in _CONCEPTS.items():
    for _word in _words:
        for _form in {_word, stem(_word)}:  # "refused" and "refusing" both stem to "refus"
            _CONCEPTS_OF[_form] = (*_CONCEPTS_OF.get(_form, ()), _concept)

_UNIGRAM_WEIGHT = 1.0
_BIGRAM_WEIGHT = 0.8
_CONCEPT_WEIGHT = 1.0
_CHARGRAM_WEIGHT = 0.25


def _is_identifier(token: str) -> bool:
    if len(token) < 5 or sum(c.isalpha() for c in token) * 2 < len(token):
        return False  # short, or mostly digits and punctuation (IPs, versions, timestamps): n-grams are noise
    has_separator = any(c in token for c in "_.-")
    has_mixed_case = any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
    has_digit_and_alpha = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    return has_separator or has_mixed_case or has_digit_and_alpha or token.isupper()


def _words_of(token: str) -> list[str]:
    parts: list[str] = []
    for piece in re.split(r"[_.\-]+", token):
        parts.extend(_CAMEL_RE.findall(piece))
    return [p.lower() for p in parts if p]


@lru_cache(maxsize=65536)
def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return (value >> 1) % dimension, (1.0 if value & 1 else -1.0)


@lru_cache(maxsize=65536)
def _token_parts(token: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A token's identifier features (``i:`` and its ``c:`` n-grams, in order) and its words, hex-ish ones
    dropped. A pure function of the token, memoised: the same tokens recur in every log and question."""
    features: list[str] = []
    if _is_identifier(token):
        lowered = token.lower()
        features.append("i:" + lowered)
        for n in (3, 4, 5):
            features.extend("c:" + lowered[i : i + n] for i in range(len(lowered) - n + 1))
    words = tuple(
        word for word in _words_of(token) if not (_HEXISH_RE.match(word) and word not in _CONCEPTS_OF)
    )
    return tuple(features), words


@lru_cache(maxsize=65536)
def _word_features(word: str) -> tuple[str, tuple[str, ...]]:
    """A (non-stop) word's stem and the ``w:``/``k:`` features it contributes, in order."""
    stemmed = stem(word)
    concepts = _CONCEPTS_OF.get(word, ()) or _CONCEPTS_OF.get(stemmed, ())
    return stemmed, ("w:" + stemmed, *("k:" + concept for concept in concepts))


@lru_cache(maxsize=65536)
def _token_features(token: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Everything one token contributes to :func:`text_features`, memoised as a whole: its identifier
    features, the ``w:``/``k:`` features of its words (in order), and the stem of each of its words with
    ``""`` for a stop word (the bigram chain runs across tokens, so bigrams are formed per text)."""
    identifier, words = _token_parts(token)
    word_features: list[str] = []
    stems: list[str] = []
    for word in words:
        if word in _STOP_WORDS:
            stems.append("")  # a stop word breaks a bigram
            continue
        stemmed, features = _word_features(word)
        stems.append(stemmed)
        word_features.extend(features)
    return identifier, tuple(word_features), tuple(stems)


_FEATURE_TABLE_SIZE = 200_000


def _signed_bucket(feature: str, dimension: int) -> tuple[int, float]:
    """The feature's bucket and its weight, signed by the hash."""
    index, sign = _bucket(feature, dimension)
    return index, sign * _weight(feature)


# 1 + ln(tf) for the usual counts, computed with math.log: numpy's log may differ from it in the last bit
_TF_FACTORS = np.array([math.nan, 1.0, *(1.0 + math.log(tf) for tf in range(2, 256))])


def _tf_factors(counts: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    """``1 + ln(tf)`` for each count (all at least 2), exactly as ``1.0 + math.log(tf)`` gives it."""
    if int(counts.max()) < len(_TF_FACTORS):
        return _TF_FACTORS[counts]
    return np.array([1.0 + math.log(tf) for tf in counts.tolist()])


class _FeatureTable:
    """Each feature seen, numbered in order of arrival, with its bucket and signed weight in numpy arrays at
    that number, so that a text's features become bucket and weight arrays by one fancy index each instead
    of a Python step per feature. Bounded: it starts afresh past ``_FEATURE_TABLE_SIZE`` features.

    An embedder may be used from several threads at once (inline on the event loop and in worker threads),
    so :meth:`lookup` holds a lock: the numbering, the arrays and a reset must be seen together."""

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension
        self._lock = threading.Lock()
        self._numbers: dict[str, int] = {}
        self._buckets = np.zeros(1024, dtype=np.intp)
        self._weights = np.zeros(1024, dtype=np.float64)

    def lookup(self, features: Iterable[str]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The bucket and the signed weight of each of ``features`` (new arrays, in order)."""
        with self._lock:
            if len(self._numbers) > _FEATURE_TABLE_SIZE:
                self._numbers.clear()
            try:  # usually every feature is known already: one dict lookup each, in C
                numbers = list(map(self._numbers.__getitem__, features))
            except KeyError:
                numbers = [self._number(feature) for feature in features]
            positions = np.array(numbers, dtype=np.intp)
            return self._buckets[positions], self._weights[positions]

    def _number(self, feature: str) -> int:
        number = self._numbers.get(feature)
        if number is None:
            number = len(self._numbers)
            if number == len(self._buckets):
                self._buckets = np.concatenate([self._buckets, np.zeros_like(self._buckets)])
                self._weights = np.concatenate([self._weights, np.zeros_like(self._weights)])
            self._buckets[number], self._weights[number] = _signed_bucket(feature, self._dimension)
            self._numbers[feature] = number
        return number


def text_features(text: str) -> Counter[str]:
    """The features of a text with their counts (exposed so tests and tools can see why two texts are close).

    Prefixes: ``w:`` stemmed word, ``b:`` bigram of stemmed words, ``k:`` concept, ``i:`` whole identifier,
    ``c:`` character n-gram of an identifier.
    """
    return Counter(_feature_sequence(text))


def _feature_sequence(text: str) -> list[str]:
    """Every feature occurrence of ``text`` in a fixed order: the identifier features of each token, then the
    word features of each word, then the bigrams. The order is part of the embedding: the first occurrences
    order the features of :func:`text_features`, and features that share a bucket are summed in that order,
    which decides the last bit of the float sum."""
    identifiers: list[str] = []
    words: list[str] = []
    stems: list[str] = []
    for token in _TOKEN_RE.findall(text):
        token_identifiers, token_words, token_stems = _token_features(token)
        identifiers += token_identifiers
        words += token_words
        stems += token_stems
    identifiers += words
    identifiers += [f"b:{first} {second}" for first, second in itertools.pairwise(stems) if first and second]
    return identifiers


def _weight(feature: str) -> float:
    prefix = feature[:2]
    if prefix in {"w:", "i:"}:
        return _UNIGRAM_WEIGHT
    if prefix == "b:":
        return _BIGRAM_WEIGHT
    if prefix == "k:":
        return _CONCEPT_WEIGHT
    return _CHARGRAM_WEIGHT


class HashedEmbedder:
    """Lexical feature-hashing embedder (no model, no network, deterministic across processes)."""

    def __init__(self, *, dimension: int = 1024) -> None:
        if dimension < 16:
            raise InputError(f"HashedEmbedder dimension must be at least 16, got {dimension}")
        self.dimension = dimension
        self.name = f"hashed-v1-{dimension}"
        self._features = _FeatureTable(dimension)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            occurrences = _feature_sequence(text)
            features = Counter(occurrences)  # as text_features(text), without building the sequence twice
            if not features:
                continue
            buckets, values = self._features.lookup(features)
            if len(occurrences) != len(features):  # some features occur more than once
                counts = np.fromiter(features.values(), dtype=np.intp, count=len(features))
                repeated = np.flatnonzero(counts != 1)
                # the weight of a feature seen tf times is scaled by 1 + ln(tf) (one float64 product each)
                values[repeated] *= _tf_factors(counts[repeated])
            # one vectorised scatter-add (features that share a bucket add up, in feature order) instead of a
            # numpy item update per feature
            out[row] = np.bincount(buckets, weights=values, minlength=self.dimension)
        return normalize_rows(out)


# --- the embedded exact index ------------------------------------------------------------------------------

_MANIFEST = "index.json"
_FORMAT_VERSION = 1


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    dimension: int
    generation: int
    count: int
    vectors: str
    items: str


class ExactIndex:
    """Exact cosine search in numpy over every item in memory; persisted to ``directory`` when given.

    On disk: ``index.json`` (a manifest) names one generation of ``vectors-<n>.npy`` (float32 matrix) and
    ``items-<n>.jsonl`` (one :class:`VectorItem` per line, same order). A write creates the next generation
    with temporary files and ``os.replace``, then swaps the manifest, so a crash leaves the previous
    generation intact. One process should own a directory: writes from two processes are not merged.
    """

    def __init__(self, *, dimension: int, directory: Path | None = None) -> None:
        if dimension < 1:
            raise InputError(f"index dimension must be positive, got {dimension}")
        self.dimension = dimension
        self.directory = directory
        self._items: list[VectorItem] = []
        self._vectors: FloatMatrix = np.zeros((0, dimension), dtype=np.float32)
        self._positions: dict[tuple[str, str], int] = {}
        self._row_cache: dict[tuple[str, str | None], npt.NDArray[np.int64]] = {}
        self._generation = 0
        if directory is not None:
            self._load(directory)

    def __len__(self) -> int:
        return len(self._items)

    # -- the VectorIndex protocol --

    async def upsert(self, items: Sequence[VectorItem], vectors: FloatMatrix) -> None:
        self._upsert(items, vectors)
        self._save()

    async def query(
        self, vector: FloatMatrix, *, namespace: str, top_k: int = 5, kind: str | None = None
    ) -> list[SearchHit]:
        if top_k < 1:
            raise InputError(f"top_k must be at least 1, got {top_k}")
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dimension:
            raise InputError(f"query vector has {query.shape[0]} dimensions, the index has {self.dimension}")
        norm = float(np.linalg.norm(query))
        if norm == 0.0 or not self._items:
            return []
        rows = self._rows(namespace, kind)
        if rows.size == 0:
            return []
        scores = (self._vectors @ (query / norm))[rows]  # a full mat-vec is cheaper than copying rows out
        take = min(top_k, rows.size)
        best = np.argpartition(-scores, take - 1)[:take]
        best = best[np.argsort(-scores[best], kind="stable")]
        items = self._items
        # tolist() turns the rows and float32 scores into Python ints and floats at once, as int() and float()
        # would one by one
        hits: list[SearchHit] = []
        for row, score in zip(rows[best].tolist(), scores[best].tolist(), strict=True):
            item = items[row]
            hits.append(SearchHit(id=item.id, kind=item.kind, score=score, metadata=item.metadata))
        return hits

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        doomed = {self._positions[(namespace, i)] for i in ids if (namespace, i) in self._positions}
        if not doomed:
            return
        keep = [i for i in range(len(self._items)) if i not in doomed]
        self._items = [self._items[i] for i in keep]
        self._vectors = np.ascontiguousarray(self._vectors[keep])
        self._reindex()
        self._save()

    # -- extras for the embedded store --

    def get(self, item_id: str, *, namespace: str) -> VectorItem | None:
        position = self._positions.get((namespace, item_id))
        return None if position is None else self._items[position]

    def items(self, *, namespace: str | None = None) -> list[VectorItem]:
        return [item for item in self._items if namespace is None or item.namespace == namespace]

    # -- internals --

    def _upsert(self, items: Sequence[VectorItem], vectors: FloatMatrix) -> None:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise InputError(
                f"vectors must have shape (n, {self.dimension}), got {matrix.shape}",
            )
        if matrix.shape[0] != len(items):
            raise InputError(f"{len(items)} items but {matrix.shape[0]} vectors: they must pair one to one")
        if not np.all(np.isfinite(matrix)):
            bad = [items[int(i)].id for i in np.flatnonzero(~np.all(np.isfinite(matrix), axis=1))]
            raise InputError(f"vectors contain NaN or infinity for item(s): {', '.join(bad[:5])}")
        matrix = normalize_rows(matrix)
        last_row: dict[tuple[str, str], int] = {}
        for row, item in enumerate(items):
            last_row[(item.namespace, item.id)] = row  # a later duplicate in the batch wins
        appended_rows: list[int] = []
        for key, row in last_row.items():
            position = self._positions.get(key)
            if position is None:
                appended_rows.append(row)
            else:
                self._items[position] = items[row]
                self._vectors[position] = matrix[row]
                self._row_cache.clear()  # the item's kind may have changed
        if appended_rows:
            self._items.extend(items[row] for row in appended_rows)
            self._vectors = np.concatenate([self._vectors, matrix[appended_rows]], axis=0)
            self._reindex()

    def _reindex(self) -> None:
        self._positions = {(item.namespace, item.id): i for i, item in enumerate(self._items)}
        self._row_cache.clear()

    def _rows(self, namespace: str, kind: str | None) -> npt.NDArray[np.int64]:
        key = (namespace, kind)
        rows = self._row_cache.get(key)
        if rows is None:
            rows = np.array(
                [
                    i
                    for i, item in enumerate(self._items)
                    if item.namespace == namespace and (kind is None or item.kind == kind)
                ],
                dtype=np.int64,
            )
            self._row_cache[key] = rows
        return rows

    def _load(self, directory: Path) -> None:
        manifest_path = directory / _MANIFEST
        if not manifest_path.exists():
            return
        try:
            manifest = _Manifest.model_validate_json(manifest_path.read_bytes())
        except (ValidationError, OSError) as exc:
            raise InputError(f"vector index manifest {manifest_path} is unreadable", detail=str(exc)) from exc
        if manifest.dimension != self.dimension:
            raise InputError(
                f"vector index at {directory} has dimension {manifest.dimension}, "
                f"but the embedder produces {self.dimension}; rebuild the index or change the embedder"
            )
        vectors = np.load(directory / manifest.vectors, allow_pickle=False)
        items: list[VectorItem] = []
        with (directory / manifest.items).open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    items.append(VectorItem.model_validate_json(line))
                except ValidationError as exc:
                    raise InputError(
                        f"{directory / manifest.items}:{number}: not a valid index item", detail=str(exc)
                    ) from exc
        if vectors.shape != (manifest.count, self.dimension) or len(items) != manifest.count:
            raise InputError(
                f"vector index at {directory} is inconsistent: manifest says {manifest.count} items, "
                f"found {len(items)} items and vectors of shape {vectors.shape}"
            )
        self._items = items
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._generation = manifest.generation
        self._reindex()
        logger.info("vector index loaded", extra={"items": len(items), "dimension": self.dimension})

    def _save(self) -> None:
        if self.directory is None:
            return
        directory = self.directory
        directory.mkdir(parents=True, exist_ok=True)
        previous = self._generation
        generation = previous + 1
        vectors_name = f"vectors-{generation}.npy"
        items_name = f"items-{generation}.jsonl"
        _atomic_write(directory / vectors_name, lambda handle: np.save(handle, self._vectors))
        _atomic_write(
            directory / items_name,
            lambda handle: handle.writelines(
                (item.model_dump_json() + "\n").encode("utf-8") for item in self._items
            ),
        )
        manifest = _Manifest(
            version=_FORMAT_VERSION,
            dimension=self.dimension,
            generation=generation,
            count=len(self._items),
            vectors=vectors_name,
            items=items_name,
        )
        _atomic_write(directory / _MANIFEST, lambda handle: handle.write(manifest.model_dump_json().encode()))
        self._generation = generation
        for stale in (f"vectors-{previous}.npy", f"items-{previous}.jsonl"):
            (directory / stale).unlink(missing_ok=True)


def _atomic_write(path: Path, write: _Writer) -> None:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


class _Writer(Protocol):
    def __call__(self, handle: _BinaryHandle, /) -> object: ...


class _BinaryHandle(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def writelines(self, lines: Iterable[bytes], /) -> None: ...

    def flush(self) -> None: ...

    def fileno(self) -> int: ...


# --- incident cases in and out of an index -----------------------------------------------------------------


def incident_item(case: IncidentCase, *, namespace: str | None = None) -> VectorItem:
    """The index item for a resolved incident (namespace defaults to the case's team)."""
    return VectorItem(
        id=case.id,
        kind="incident",
        namespace=namespace or case.team,
        text=case.search_text(),
        metadata={
            "title": case.title,
            "category": case.category.value,
            "root_cause": case.root_cause[:1000],
            "fix": case.fix[:1000],
            "resolved_at": case.created_at.isoformat(),
        },
    )


_CATEGORY_VALUES = frozenset(c.value for c in Category)


def similar_incident(hit: SearchHit) -> SimilarIncident:
    """A search hit as the engine's :class:`SimilarIncident` (score clipped to [0, 1])."""
    category_value = hit.metadata.get("category")
    category = Category(category_value) if category_value in _CATEGORY_VALUES else None
    resolved_at: datetime | None = None
    with contextlib.suppress(ValueError):
        resolved_at = datetime.fromisoformat(hit.metadata.get("resolved_at", ""))
    return SimilarIncident(
        id=hit.id,
        title=hit.metadata.get("title", hit.id),
        score=min(1.0, max(0.0, hit.score)),
        category=category,
        root_cause=hit.metadata.get("root_cause", ""),
        fix=hit.metadata.get("fix", ""),
        kind=hit.kind,
        resolved_at=resolved_at,
    )

"""A :class:`core.retrieval.VectorIndex` backed by Pinecone (the ``pinecone`` package's asyncio client).

The Pinecone index must be a dense vector index created with top-level ``dimension`` (the embedder's) and
``metric="cosine"``. Each team gets its own namespace. An item's kind and (truncated) text travel in the
vector's metadata under ``fm_kind`` and ``fm_text``; the kind filter is a metadata filter.

Every call runs with a deadline; Pinecone errors, timeouts and connection problems surface as
:class:`core.errors.DependencyError` with a user-safe message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import numpy as np
from pinecone import AsyncPinecone
from pinecone.errors import PineconeError

from core.errors import DependencyError, InputError
from core.retrieval import FloatMatrix, ItemKind, SearchHit, VectorItem
from faultmaven.settings import Settings

logger = logging.getLogger(__name__)

KIND_KEY = "fm_kind"
TEXT_KEY = "fm_text"
MAX_TEXT_CHARS = 2000  # Pinecone allows 40 KB of metadata per vector; the text is only a preview
UPSERT_BATCH = 100
_KINDS: frozenset[str] = frozenset({"incident", "runbook", "signature"})

T = TypeVar("T")


class PineconeIndex:
    """Pinecone through ``AsyncPinecone``; ``host`` skips the control-plane lookup of ``index_name``."""

    def __init__(
        self, *, api_key: str, index_name: str, host: str | None = None, timeout_s: float = 10.0
    ) -> None:
        if not api_key:
            raise InputError("the Pinecone vector index needs FAULTMAVEN_PINECONE_API_KEY")
        self.index_name = index_name
        self.timeout_s = timeout_s
        self._host = host
        self._client = AsyncPinecone(api_key=api_key, timeout=timeout_s)
        self._index: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, host: str | None = None) -> PineconeIndex:
        if settings.pinecone_api_key is None:
            raise InputError("vector_index 'pinecone' needs FAULTMAVEN_PINECONE_API_KEY")
        return cls(
            api_key=settings.pinecone_api_key.get_secret_value(),
            index_name=settings.pinecone_index,
            host=host or settings.pinecone_host,
            timeout_s=settings.outbound_timeout_seconds,
        )

    async def close(self) -> None:
        if self._index is not None:
            await self._index.close()
            self._index = None
        await self._client.close()

    # -- the VectorIndex protocol --

    async def upsert(self, items: Sequence[VectorItem], vectors: FloatMatrix) -> None:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(items):
            raise InputError(
                f"{len(items)} items need an (n, dimension) matrix of {len(items)} rows, got {matrix.shape}"
            )
        if not np.all(np.isfinite(matrix)):
            raise InputError("vectors contain NaN or infinity")
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item, row in zip(items, matrix, strict=True):
            metadata: dict[str, Any] = dict(item.metadata)
            metadata[KIND_KEY] = item.kind
            metadata[TEXT_KEY] = item.text[:MAX_TEXT_CHARS]
            by_namespace[item.namespace].append({"id": item.id, "values": row.tolist(), "metadata": metadata})
        index = await self._get_index()
        for namespace, records in by_namespace.items():
            for start in range(0, len(records), UPSERT_BATCH):
                batch = records[start : start + UPSERT_BATCH]
                await self._call(
                    "upsert", index.upsert(vectors=batch, namespace=namespace, timeout=self.timeout_s)
                )

    async def query(
        self, vector: FloatMatrix, *, namespace: str, top_k: int = 5, kind: str | None = None
    ) -> list[SearchHit]:
        if top_k < 1:
            raise InputError(f"top_k must be at least 1, got {top_k}")
        values = np.asarray(vector, dtype=np.float32).reshape(-1)
        if not np.any(values):
            return []
        index = await self._get_index()
        response = await self._call(
            "query",
            index.query(
                vector=values.tolist(),
                top_k=top_k,
                namespace=namespace,
                include_metadata=True,
                filter={KIND_KEY: {"$eq": kind}} if kind is not None else None,
                timeout=self.timeout_s,
            ),
        )
        hits: list[SearchHit] = []
        for match in response.matches:
            metadata = dict(match.metadata or {})
            found_kind = str(metadata.pop(KIND_KEY, "incident"))
            metadata.pop(TEXT_KEY, None)
            hit_kind: ItemKind = found_kind if found_kind in _KINDS else "incident"  # type: ignore[assignment]
            hits.append(
                SearchHit(
                    id=match.id,
                    kind=hit_kind,
                    score=float(match.score),
                    metadata={str(k): _as_text(v) for k, v in metadata.items()},
                )
            )
        return hits

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        if not ids:
            return
        index = await self._get_index()
        await self._call("delete", index.delete(ids=list(ids), namespace=namespace, timeout=self.timeout_s))

    # -- internals --

    async def _get_index(self) -> Any:
        async with self._lock:
            if self._index is None:
                if self._host:
                    opening = self._client.index(host=self._host)
                else:
                    opening = self._client.index(name=self.index_name)
                self._index = await self._call("open index", opening)
            return self._index

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout_s + 1.0)
        except TimeoutError as exc:
            logger.warning("pinecone call timed out", extra={"operation": what, "timeout_s": self.timeout_s})
            raise DependencyError(
                "The vector index (Pinecone) did not answer in time.", detail=f"{what} timed out"
            ) from exc
        except PineconeError as exc:
            status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
            detail = f"{what} failed: {type(exc).__name__}" + (f" (HTTP {status})" if status else "")
            logger.warning("pinecone call failed", extra={"operation": what, "detail": detail})
            raise DependencyError("The vector index (Pinecone) is unavailable.", detail=detail) from exc


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)

"""Embedders beyond the core's hashed default: an OpenAI-compatible embeddings API, and sentence-transformers
(an optional extra, ``pip install faultmaven[embeddings]``, imported only when chosen).

Both satisfy :class:`core.retrieval.Embedder`, whose ``embed`` is synchronous: they block while the model
runs or the HTTP call is made, so async callers run them with ``await asyncio.to_thread(embedder.embed,
texts)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import openai

from core.errors import DependencyError, InputError
from core.retrieval import Embedder, FloatMatrix, HashedEmbedder, normalize_rows
from faultmaven.settings import Settings

logger = logging.getLogger(__name__)

# Output sizes of well-known embedding models, so that no probe request is needed for them.
KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "all-MiniLM-L6-v2": 384,
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
}
BATCH_SIZE = 128


class OpenAIEmbedder:
    """Embeddings from ``POST {base_url}/embeddings`` (OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM...).

    When the model's dimension is neither given nor in :data:`KNOWN_DIMENSIONS`, the constructor makes one
    probe request to learn it.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        dimension: int | None = None,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self._client = openai.OpenAI(
            base_url=base_url or None,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=1,
        )
        known = dimension or KNOWN_DIMENSIONS.get(model)
        self.dimension = known if known is not None else int(self._request(["dimension probe"]).shape[1])

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        return cls(
            model=settings.embedding_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout_s=settings.outbound_timeout_seconds,
        )

    def close(self) -> None:
        self._client.close()

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [self._request(list(texts[i : i + BATCH_SIZE])) for i in range(0, len(texts), BATCH_SIZE)]
        matrix = np.concatenate(parts, axis=0)
        if matrix.shape[1] != self.dimension:
            raise DependencyError(
                "The embedding service returned vectors of an unexpected size.",
                detail=f"expected {self.dimension} dimensions from {self.model}, got {matrix.shape[1]}",
            )
        return matrix

    def _request(self, texts: list[str]) -> FloatMatrix:
        # An empty string is rejected by some servers; a single space embeds to "nothing" everywhere.
        inputs = [t if t.strip() else " " for t in texts]
        try:
            response = self._client.embeddings.create(model=self.model, input=inputs)
        except openai.APITimeoutError as exc:
            raise DependencyError("The embedding service timed out.", detail=self.model) from exc
        except openai.APIStatusError as exc:
            raise DependencyError(
                "The embedding service returned an error.", detail=f"HTTP {exc.status_code} from {self.model}"
            ) from exc
        except openai.APIConnectionError as exc:
            raise DependencyError("The embedding service is unreachable.", detail=self.model) from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(inputs):
            raise DependencyError(
                "The embedding service returned the wrong number of vectors.",
                detail=f"sent {len(inputs)} texts, got {len(rows)} vectors",
            )
        return normalize_rows(np.asarray([row.embedding for row in rows], dtype=np.float32))


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (optional extra; the model downloads on first use)."""

    def __init__(self, *, model: str, device: str | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise InputError(
                "embedder 'sentence-transformers' needs the optional extra: pip install 'faultmaven[embeddings]'"
            ) from exc
        self._model: Any = SentenceTransformer(model, device=device)
        dimension = self._model.get_sentence_embedding_dimension()
        if not isinstance(dimension, int):
            raise InputError(f"sentence-transformers model {model!r} does not report its embedding size")
        self.dimension = dimension
        self.name = f"sentence-transformers:{model}"

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return normalize_rows(np.asarray(vectors, dtype=np.float32))


def make_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.embedder`` names."""
    if settings.embedder == "hashed":
        return HashedEmbedder()
    if settings.embedder == "sentence-transformers":
        return SentenceTransformerEmbedder(model=settings.embedding_model)
    if not settings.llm_base_url and settings.llm_api_key is None:
        raise InputError("embedder 'openai' needs FAULTMAVEN_LLM_BASE_URL or FAULTMAVEN_LLM_API_KEY")
    return OpenAIEmbedder.from_settings(settings)

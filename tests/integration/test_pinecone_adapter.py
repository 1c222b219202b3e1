"""The Pinecone adapter through the real ``pinecone`` asyncio client, against a small fake of the Pinecone
data plane (real HTTP on 127.0.0.1: ``/vectors/upsert``, ``/query``, ``/vectors/delete``).

The fake implements the documented request/response shapes and exact cosine ranking; it does not model
Pinecone's approximate search, consistency delays or limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from core.errors import DependencyError, InputError
from core.retrieval import HashedEmbedder, VectorItem
from faultmaven.settings import Settings
from faultmaven.vector_pinecone import PineconeIndex

API_KEY = "pcsk_fake_test_key_123456"


@dataclass
class FakePinecone:
    namespaces: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delay_s: float = 0.0
    runner: web.AppRunner | None = None
    host: str = ""
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/vectors/upsert", self._upsert)
        app.router.add_post("/query", self._query)
        app.router.add_post("/vectors/delete", self._delete)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        address, port = self.runner.addresses[0][:2]
        self.host = f"http://{address}:{port}"

    async def stop(self) -> None:
        self.closing.set()
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Api-Key") != API_KEY:
            return web.json_response({"error": {"code": "UNAUTHENTICATED", "message": "bad key"}}, status=401)
        body = await request.json()
        self.requests.append((request.path, body))
        if self.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.delay_s)
        return await handler(request)  # type: ignore[no-any-return]

    async def _upsert(self, request: web.Request) -> web.Response:
        body = await request.json()
        space = self.namespaces.setdefault(body.get("namespace", ""), {})
        for vector in body["vectors"]:
            space[vector["id"]] = vector
        return web.json_response({"upsertedCount": len(body["vectors"])})

    async def _query(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace = body.get("namespace", "")
        query = np.asarray(body["vector"], dtype=np.float64)
        wanted = body.get("filter") or {}
        scored = []
        for vector in self.namespaces.get(namespace, {}).values():
            metadata = vector.get("metadata", {})
            if not all(_matches(metadata.get(key), condition) for key, condition in wanted.items()):
                continue
            values = np.asarray(vector["values"], dtype=np.float64)
            score = float(values @ query / (np.linalg.norm(values) * np.linalg.norm(query)))
            scored.append((score, vector))
        scored.sort(key=lambda pair: -pair[0])
        matches = [
            {
                "id": vector["id"],
                "score": score,
                "values": [],
                **({"metadata": vector.get("metadata", {})} if body.get("includeMetadata") else {}),
            }
            for score, vector in scored[: body["topK"]]
        ]
        return web.json_response({"matches": matches, "namespace": namespace, "usage": {"readUnits": 1}})

    async def _delete(self, request: web.Request) -> web.Response:
        body = await request.json()
        space = self.namespaces.get(body.get("namespace", ""), {})
        for vector_id in body.get("ids", []):
            space.pop(vector_id, None)
        return web.json_response({})


def _matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, dict):
        if "$eq" in condition:
            return bool(value == condition["$eq"])
        raise AssertionError(f"the fake does not implement filter {condition}")
    return bool(value == condition)


@pytest.fixture
async def fake_pinecone() -> AsyncIterator[FakePinecone]:
    server = FakePinecone()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def index(fake_pinecone: FakePinecone) -> AsyncIterator[PineconeIndex]:
    adapter = PineconeIndex(api_key=API_KEY, index_name="faultmaven", host=fake_pinecone.host, timeout_s=2.0)
    try:
        yield adapter
    finally:
        await adapter.close()


CASES = [
    ("inc-1", "incident", "FATAL: sorry, too many clients already on orders-db"),
    ("inc-2", "incident", "OOMKilled: payments container exceeded memory limit"),
    (
        "rb-1",
        "runbook",
        "Runbook: PostgreSQL connection exhaustion — check pg_stat_activity, raise pool size",
    ),
    ("inc-3", "incident", "x509: certificate has expired for api.example.com"),
]


async def _load(index: PineconeIndex, namespace: str = "team-sre") -> HashedEmbedder:
    embedder = HashedEmbedder(dimension=128)
    items = [
        VectorItem(id=i, kind=k, namespace=namespace, text=t, metadata={"title": t[:40]})  # type: ignore[arg-type]
        for i, k, t in CASES
    ]
    await index.upsert(items, embedder.embed([item.text for item in items]))
    return embedder


async def test_upsert_then_query_round_trip(index: PineconeIndex, fake_pinecone: FakePinecone) -> None:
    embedder = await _load(index)
    query = embedder.embed(["postgres too many connections"])[0]
    hits = await index.query(query, namespace="team-sre", top_k=2)
    assert {h.id for h in hits} == {"inc-1", "rb-1"}  # the two about PostgreSQL connections
    by_id = {h.id: h for h in hits}
    assert by_id["inc-1"].kind == "incident"
    assert by_id["rb-1"].kind == "runbook"
    assert by_id["inc-1"].metadata == {"title": CASES[0][2][:40]}  # fm_kind / fm_text stay out of hits
    assert 0.0 < hits[1].score <= hits[0].score <= 1.0
    stored = fake_pinecone.namespaces["team-sre"]["inc-1"]
    assert stored["metadata"]["fm_kind"] == "incident"
    assert stored["metadata"]["fm_text"] == CASES[0][2]
    assert len(stored["values"]) == 128
    assert math.isclose(float(np.linalg.norm(stored["values"])), 1.0, rel_tol=1e-5)


async def test_kind_filter_and_namespaces(index: PineconeIndex, fake_pinecone: FakePinecone) -> None:
    embedder = await _load(index)
    await _load(index, namespace="team-web")
    query = embedder.embed(["postgres too many connections"])[0]
    runbooks = await index.query(query, namespace="team-sre", top_k=5, kind="runbook")
    assert [h.id for h in runbooks] == ["rb-1"]
    path, body = fake_pinecone.requests[-1]
    assert path == "/query"
    assert body["filter"] == {"fm_kind": {"$eq": "runbook"}}
    assert body["namespace"] == "team-sre"
    assert await index.query(query, namespace="team-nobody") == []


async def test_delete(index: PineconeIndex, fake_pinecone: FakePinecone) -> None:
    embedder = await _load(index)
    await index.delete(["inc-1", "never-there"], namespace="team-sre")
    await index.delete([], namespace="team-sre")  # no request for nothing
    hits = await index.query(embedder.embed(["too many clients"])[0], namespace="team-sre", top_k=5)
    assert "inc-1" not in [h.id for h in hits]
    assert [p for p, _ in fake_pinecone.requests].count("/vectors/delete") == 1


async def test_large_upserts_are_batched(index: PineconeIndex, fake_pinecone: FakePinecone) -> None:
    embedder = HashedEmbedder(dimension=32)
    items = [
        VectorItem(id=f"sig-{i}", kind="signature", namespace="t", text=f"signature {i}") for i in range(250)
    ]
    await index.upsert(items, embedder.embed([i.text for i in items]))
    sizes = [len(body["vectors"]) for path, body in fake_pinecone.requests if path == "/vectors/upsert"]
    assert sizes == [100, 100, 50]
    assert len(fake_pinecone.namespaces["t"]) == 250


async def test_bad_key_is_a_dependency_error(fake_pinecone: FakePinecone) -> None:
    adapter = PineconeIndex(
        api_key="wrong-key", index_name="faultmaven", host=fake_pinecone.host, timeout_s=2.0
    )
    try:
        with pytest.raises(DependencyError, match="Pinecone") as caught:
            await adapter.query(np.ones(8, dtype=np.float32), namespace="team-sre")
    finally:
        await adapter.close()
    assert "wrong-key" not in (caught.value.detail or "")
    assert "query failed" in (caught.value.detail or "")


async def test_slow_pinecone_times_out(fake_pinecone: FakePinecone) -> None:
    fake_pinecone.delay_s = 10.0
    adapter = PineconeIndex(api_key=API_KEY, index_name="faultmaven", host=fake_pinecone.host, timeout_s=0.3)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(DependencyError, match="Pinecone"):
            await adapter.query(np.ones(8, dtype=np.float32), namespace="team-sre")
        assert asyncio.get_running_loop().time() - started < 8.0
    finally:
        await adapter.close()


async def test_input_is_checked_before_any_request(index: PineconeIndex, fake_pinecone: FakePinecone) -> None:
    item = VectorItem(id="a", kind="incident", namespace="t", text="x")
    with pytest.raises(InputError, match="1 items need"):
        await index.upsert([item], np.ones((2, 4), dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        await index.upsert([item], np.array([[np.nan, 1.0]], dtype=np.float32))
    assert await index.query(np.zeros(4, dtype=np.float32), namespace="t") == []
    assert fake_pinecone.requests == []


def test_settings_without_a_key_are_refused() -> None:
    with pytest.raises(InputError, match="PINECONE_API_KEY"):
        PineconeIndex.from_settings(Settings(_env_file=None, vector_index="pinecone"))  # type: ignore[call-arg]

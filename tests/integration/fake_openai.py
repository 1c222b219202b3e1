"""A fake OpenAI-compatible server for tests: real HTTP on 127.0.0.1, a script of replies, every request
recorded.

It speaks ``POST /v1/chat/completions`` (the chat completions response shape) and ``POST /v1/embeddings``
(vectors from the hashed embedder, so they are deterministic). Each chat request takes the next scripted
:class:`Reply`; when the script is empty it answers with :data:`VALID_ANSWER`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from core.retrieval import HashedEmbedder

VALID_ANSWER: dict[str, Any] = {
    "summary": "orders-db refuses new connections: max_connections was reached at 10:02.",
    "root_causes": [
        {
            "title": "orders-db connection limit reached",
            "category": "connection_pool_exhaustion",
            "confidence": 0.8,
            "evidence": ["1832× FATAL: sorry, too many clients already"],
        }
    ],
    "next_steps": [
        {
            "title": "Count connections by client",
            "command": "SELECT usename, count(*) FROM pg_stat_activity GROUP BY 1",
            "why": "shows which service holds the connections",
            "root_cause_index": 0,
        }
    ],
    "insights": ["The burst began two minutes after the deploy."],
}


@dataclass
class Reply:
    """One scripted reply to a chat completions request."""

    content: str | None = None
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error_body: dict[str, Any] | None = None
    finish_reason: str = "stop"
    raw_body: str | None = None  # sent as-is with status 200 (e.g. an HTML page from a misconfigured proxy)

    @classmethod
    def answer(cls, data: dict[str, Any] | None = None, *, fenced: bool = False) -> Reply:
        text = json.dumps(data if data is not None else VALID_ANSWER)
        if fenced:
            text = f"Here is my analysis.\n```json\n{text}\n```\nLet me know if you need more."
        return cls(content=text)

    @classmethod
    def text(cls, content: str, *, finish_reason: str = "stop") -> Reply:
        return cls(content=content, finish_reason=finish_reason)

    @classmethod
    def slow(cls, delay_s: float) -> Reply:
        return cls(content=json.dumps(VALID_ANSWER), delay_s=delay_s)

    @classmethod
    def http_error(
        cls, status: int, *, code: str = "server_error", headers: dict[str, str] | None = None
    ) -> Reply:
        body = {"error": {"message": f"scripted failure {status}", "type": code, "code": code}}
        return cls(status=status, error_body=body, headers=headers or {})


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: str


class FakeOpenAI:
    def __init__(self, *, embedding_dimension: int = 64) -> None:
        self.requests: list[RecordedRequest] = []
        self.script: deque[Reply] = deque()
        self.embedder = HashedEmbedder(dimension=embedding_dimension)
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def play(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def raw_bodies(self) -> str:
        return "\n".join(r.raw for r in self.requests)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        body = json.loads(raw)
        self.requests.append(
            RecordedRequest(path=request.path, headers=dict(request.headers), body=body, raw=raw)
        )
        return body  # type: ignore[no-any-return]

    async def _chat(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        reply = self.script.popleft() if self.script else Reply.answer()
        if reply.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay_s)
        if reply.status != 200:
            return web.json_response(reply.error_body or {}, status=reply.status, headers=reply.headers)
        if reply.raw_body is not None:
            return web.Response(text=reply.raw_body, content_type="text/html")
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        completion = reply.content or ""
        return web.json_response(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_chars // 4,
                    "completion_tokens": len(completion) // 4,
                    "total_tokens": prompt_chars // 4 + len(completion) // 4,
                },
            },
            headers=reply.headers,
        )

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if not texts or not all(isinstance(t, str) for t in texts):
            return web.json_response(
                {
                    "error": {
                        "message": "input must be a string or a list of strings",
                        "type": "invalid_request",
                    }
                },
                status=400,
            )
        vectors = self.embedder.embed(texts)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": [float(x) for x in vectors[i]]}
                    for i in range(len(texts))
                ],
                "model": body.get("model", "fake-embed"),
                "usage": {"prompt_tokens": sum(len(t) // 4 for t in texts), "total_tokens": 0},
            }
        )

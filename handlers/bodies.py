"""Reading request bodies and query strings into pydantic models, and writing model responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


async def read_model(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model``. aiohttp enforces the size limit while reading (413); malformed JSON and
    schema errors surface as pydantic ``ValidationError`` and become 400 / 422 problem documents."""
    raw = await request.read()
    return model.model_validate_json(raw)


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model`` (the last value wins for repeated keys)."""
    params: Mapping[str, str] = {key: request.query.getall(key)[-1] for key in request.query}
    return model.model_validate(params)


def model_response(model: BaseModel, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=model.model_dump_json(),
        content_type="application/json",
        charset="utf-8",
    )

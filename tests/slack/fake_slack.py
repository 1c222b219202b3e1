"""A Slack Web API stand-in on 127.0.0.1 for the bot's tests.

It speaks the parts of the Web API the bot uses (form, query or JSON arguments; ``{"ok": …}`` answers),
keeps channels' messages so threads and ``conversations.replies`` behave, serves private file downloads
(Bearer token checked, as Slack does), accepts ``files.uploadV2``'s three steps (the upload URL points back
here), collects ``response_url`` posts, can answer HTTP 429 + ``Retry-After`` once for a method, and hosts
the Socket Mode WebSocket that ``apps.connections.open`` hands out. Every call is recorded."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
TEAM_ID = "T0TEST001"
BOT_USER_ID = "U0BOT0001"
BOT_ID = "B0BOT0001"


@dataclass
class ApiCall:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float


@dataclass
class StoredFile:
    id: str
    name: str
    content: bytes
    mimetype: str
    filetype: str


@dataclass
class Upload:
    file_id: str
    filename: str
    content: bytes = b""
    channel: str | None = None
    thread_ts: str | None = None
    title: str | None = None
    completed: bool = False


@dataclass
class FakeSlack:
    bot_token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    calls: list[ApiCall] = field(default_factory=list)
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate_limit_once: dict[str, int] = field(default_factory=dict)
    rate_limited: list[tuple[str, float]] = field(default_factory=list)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    download_auth: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self._changed = asyncio.Condition()

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files/{file_id}/{name}", self._download)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"{self.base_url}/response/{key}"

    # --- test set-up ---------------------------------------------------------------------------------------

    def next_ts(self) -> str:
        return f"{1_780_000_000 + next(self._ts)}.{next(self._ids):06d}"

    def add_file(
        self, name: str, content: bytes, *, mimetype: str = "text/plain", filetype: str = "text"
    ) -> dict[str, Any]:
        """Store a file and return its Slack file object (as events and conversations.replies carry it)."""
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = StoredFile(file_id, name, content, mimetype, filetype)
        url = f"{self.base_url}/files/{file_id}/{name}"
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "size": len(content),
            "mode": "hosted",
            "url_private": url,
            "url_private_download": url + "?download=1",
        }

    def add_message(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A human message in a channel (what the user typed before the event reaches the bot)."""
        ts = self.next_ts()
        message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if files:
            message["files"] = files
        self.channels.setdefault(channel, []).append(message)
        return message

    # --- queries -------------------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.channels.get(channel, [])
            if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
        ]

    def bot_replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.thread(channel, thread_ts) if m.get("bot_id") == BOT_ID]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        for m in self.channels.get(channel, []):
            if m["ts"] == ts:
                return m
        raise KeyError(ts)

    async def wait_for(self, predicate: Any, *, wait_seconds: float = 15.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), wait_seconds)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- the Web API ---------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                args.update(body if isinstance(body, dict) else {})
            else:
                args.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or args.pop("token", None)
        self.calls.append(ApiCall(method, args, token, time.monotonic()))
        if self.rate_limit_once.get(method):
            retry_after = self.rate_limit_once.pop(method)
            self.rate_limited.append((method, time.monotonic()))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
            )
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if method != "oauth.v2.access" and token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(args)
        await self._notify()
        return web.json_response(result)

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "team_id": TEAM_ID,
            "team": "Test",
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "user": "faultmaven",
            "url": "https://test.slack.example/",
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel.startswith("CNOTIN"):
            return {"ok": False, "error": "not_in_channel"}
        ts = self.next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "ts": ts,
            "bot_id": BOT_ID,
            "user": BOT_USER_ID,
            "text": args.get("text", ""),
            "blocks": _json_arg(args.get("blocks")) or [],
        }
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
        self.channels.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        try:
            message = self.message(channel, str(args.get("ts")))
        except KeyError:
            return {"ok": False, "error": "message_not_found"}
        message["text"] = args.get("text", "")
        message["blocks"] = _json_arg(args.get("blocks")) or []
        message["edited"] = {"user": BOT_USER_ID, "ts": self.next_ts()}
        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"]}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self.next_ts()}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        messages = sorted(self.thread(channel, str(args.get("ts"))), key=lambda m: m["ts"])
        return {"ok": True, "messages": messages, "has_more": False}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"FUP{next(self._ids):06d}"
        self.uploads[file_id] = Upload(file_id=file_id, filename=str(args["filename"]))
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.base_url}/upload/{file_id}"}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        items = _json_arg(args.get("files")) or []
        done = []
        for item in items:
            upload = self.uploads.get(item.get("id"))
            if upload is None or not upload.content:
                return {"ok": False, "error": "file_not_found"}
            upload.completed = True
            upload.title = item.get("title")
            upload.channel = args.get("channel_id")
            upload.thread_ts = args.get("thread_ts")
            done.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        return {"ok": True, "files": done}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup") or "")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        profile = {
            "id": user,
            "name": user.lower(),
            "deleted": False,
            "is_bot": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
        }
        profile.update(self.users.get(user, {}))
        return {"ok": True, "user": profile}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = _json_arg(args.get("view")) or {}
        self.views.append({"trigger_id": args["trigger_id"], "view": view})
        return {"ok": True, "view": {"id": f"V{next(self._ids):06d}", **view}}

    def _m_oauth_v2_access(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("code") != "oauth-code-1":
            return {"ok": False, "error": "invalid_code"}
        return {
            "ok": True,
            "app_id": "A0TEST",
            "authed_user": {"id": "U0INSTALL1"},
            "scope": "chat:write,commands",
            "token_type": "bot",
            "access_token": self.bot_token,
            "bot_user_id": BOT_USER_ID,
            "team": {"id": TEAM_ID, "name": "Test"},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}

    # --- files, response_url, Socket Mode --------------------------------------------------------------------

    async def _download(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        self.download_auth.append(auth)
        stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404)
        if auth != f"Bearer {self.bot_token}":
            # Slack serves its sign-in page, not an error, when the token cannot read the file.
            return web.Response(text="<html><body>Sign in to Slack</body></html>", content_type="text/html")
        return web.Response(body=stored.content, content_type="application/octet-stream")

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload.content = await request.read()
        return web.Response(text=f"OK - {len(upload.content)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append({"key": request.match_info["key"], **body})
        await self._notify()
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"}})
        self._socket_ready.set()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(message.data))
                await self._notify()
        self._sockets.remove(ws)
        return ws

    async def socket_send(self, envelope: dict[str, Any]) -> None:
        await asyncio.wait_for(self._socket_ready.wait(), 10)
        await self._sockets[-1].send_json(envelope)


def _json_arg(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)

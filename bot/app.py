"""The Slack bot: a slack-bolt ``AsyncApp`` over the shared troubleshooter.

A mention in a channel (or a DM) is answered in its thread, and the thread is the session. Listeners only
acknowledge, check idempotency and roles, and hand the work to tracked tasks (so Bolt may process them
before responding and the ack still comes in well under 3 s): an interim "analyzing…" reply is
posted in the thread and then replaced (``chat.update``) with the answer in Block Kit. Files shared in the
thread are downloaded with the bot token and analyzed. Feedback buttons and the "Mark resolved" modal feed
the engine's session learning and the incident history.

Modes: single workspace (``SLACK_BOT_TOKEN`` + ``SLACK_SIGNING_SECRET``) or multi-workspace OAuth installs
(``slack_client_id`` + ``slack_client_secret``, installations in the service's database). Served over HTTP
by the shared aiohttp server (``bot.http``) or over Socket Mode (``bot.socket``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks
from bot.access import SlackAccess, can_act
from bot.charts import anomaly_to_chart, render_anomaly_chart
from bot.files import Attachments, collect_files, gather_attachments
from bot.scopes import required_scopes
from bot.store import SlackStore
from bot.tasks import TaskTracker
from core.answers import Answer, Feedback, IncidentCase, Question, ResolveRequest, Session
from core.errors import FaultMavenError, NotFoundError
from faultmaven.logconfig import session_id_var
from faultmaven.services import Services
from faultmaven.settings import Settings
from faultmaven.stores.base import AuditEvent
from faultmaven.troubleshooter import Troubleshooter

log = logging.getLogger(__name__)

COMMAND = "/faultmaven"
EVENTS = ("app_mention", "message.im")
BOT_SCOPES = tuple(sorted(required_scopes()))
IDEMPOTENCY_TTL_SECONDS = 3600
RATE_LIMIT_RETRIES = 2
MAX_THREAD_MESSAGES = 200
MAX_RESOLVE_SCAN_PAGES = 5
MAX_CONTEXT_CHARS = 4000
MAX_QUERY_CHARS = 19_000
INTERIM_TEXT = ":hourglass_flowing_sand: Analyzing…"
HELP_TEXT = (
    "*FaultMaven* — troubleshooting help for on-call.\n"
    "• Mention me in a channel (or DM me) with a question, and attach log or metric files (.log, .jsonl, "
    ".csv, Prometheus JSON, .gz): I answer in the thread, and the thread is the session.\n"
    "• Use ✅ / ❌ on next steps to steer the next answer; *Mark resolved* stores the incident for next time.\n"
    f"• `{COMMAND} ask <question>` — start a new thread with a question\n"
    f"• `{COMMAND} status` — the latest session in this channel\n"
    f"• `{COMMAND} resolve <what fixed it>` — resolve the latest session (responders)\n"
    f"• `{COMMAND} forget` — drop the latest session's state (responders)\n"
    f"• `{COMMAND} help` — this message"
)
NOT_ALLOWED = (
    "Only responders can give feedback or resolve incidents. Ask an admin to map your Slack user or "
    "user group to the responder role (slack_role_map)."
)
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_FEEDBACK_ACTION = re.compile(r"^(fm_accept|fm_reject):")


class _RedactBodies(logging.Filter):
    """Bolt logs the raw request body when a signature is invalid; request bodies carry users' messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cut = message.find("body:")
        if cut >= 0:
            record.msg = message[:cut] + "body: <redacted>)"
            record.args = ()
        return True


def _redact_bolt_logs() -> None:
    for name in ("slack_bolt.RequestVerification", "slack_bolt.AsyncRequestVerification"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _RedactBodies) for f in target.filters):
            target.addFilter(_RedactBodies())


def session_id_for(team_id: str, channel_id: str, thread_ts: str) -> str:
    """The session of a Slack thread: stable for team + channel + thread."""
    digest = hashlib.blake2b(f"{team_id}:{channel_id}:{thread_ts}".encode(), digest_size=12).hexdigest()
    return f"slack-{digest}"


def strip_mentions(text: str) -> str:
    return _MENTION.sub("", text or "").strip()


def slack_configured(settings: Settings) -> bool:
    return oauth_mode(settings) or settings.slack_bot_token is not None


def oauth_mode(settings: Settings) -> bool:
    return bool(settings.slack_client_id) and settings.slack_client_secret is not None


@dataclass(frozen=True, slots=True)
class _ReplyTo:
    """Where a failure is told: the thread (replacing ``replace_ts`` when set), or the user through the
    command's ``response_url`` when there is no channel."""

    client: AsyncWebClient
    channel: str | None
    thread_ts: str | None
    replace_ts: str | None = None
    respond: AsyncRespond | None = None


class SlackBot:
    """The Bolt app, its listeners and what they share. ``close`` waits for answers in flight."""

    def __init__(self, settings: Settings, services: Services, *, store: SlackStore | None = None) -> None:
        self.settings = settings
        self.services = services
        self.store = store or SlackStore(settings)
        self.access = SlackAccess(settings.slack_role_map)
        self.tasks = TaskTracker()
        self._http: aiohttp.ClientSession | None = None
        # One turn at a time per thread, so two quick mentions do not overwrite each other's turn.
        self._turn_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None,
            base_url=settings.slack_api_url,
            timeout=int(max(1, settings.outbound_timeout_seconds * 3)),
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
        )
        _redact_bolt_logs()
        self.app = self._build_app()
        self._register()

    # --- construction --------------------------------------------------------------------------------------

    def _build_app(self) -> AsyncApp:
        settings = self.settings
        signing_secret = (
            settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        )
        if oauth_mode(settings):
            assert settings.slack_client_secret is not None
            oauth = AsyncOAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                scopes=list(BOT_SCOPES),
                installation_store=self.store,
                state_store=self.store,
                install_path="/slack/install",
                redirect_uri_path="/slack/oauth_redirect",
            )
            return AsyncApp(
                signing_secret=signing_secret,
                client=self.client,
                oauth_settings=oauth,
                installation_store=self.store,
                raise_error_for_unhandled_request=False,
                process_before_response=True,
            )
        if settings.slack_bot_token is None:
            raise FaultMavenError(
                "Slack is not configured: set SLACK_BOT_TOKEN (one workspace) or FAULTMAVEN_SLACK_CLIENT_ID and "
                "FAULTMAVEN_SLACK_CLIENT_SECRET (OAuth installs)."
            )
        return AsyncApp(
            signing_secret=signing_secret,
            client=self.client,
            raise_error_for_unhandled_request=False,
            process_before_response=True,
        )

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_direct_message)
        app.command(COMMAND)(self._on_command)
        app.action(_FEEDBACK_ACTION)(self._on_feedback)
        app.action(blocks.ACTION_RESOLVE)(self._on_resolve_button)
        app.view(blocks.RESOLVE_CALLBACK)(self._on_resolve_submit)
        app.error(self._on_error)

    async def _audit(
        self, action: str, *, actor: str, session_id: str | None, detail: dict[str, str]
    ) -> None:
        """Every question, verdict, resolution and forget from Slack lands in the audit log (as the HTTP
        edge's do); a failed write is logged and counted, never shown to the user."""
        await self.services.audit.record(
            AuditEvent(actor=f"slack:{actor}", action=action, session_id=session_id, detail=detail)
        )

    async def _store_resolution(self, session_id: str, request: ResolveRequest) -> IncidentCase:
        """Resolve the session into an incident case, and audit it."""
        case = await self.troubleshooter.resolve(session_id, request)
        await self._audit(
            "resolve",
            actor=request.user_id,
            session_id=session_id,
            detail={"edge": "slack", "incident_id": case.id},
        )
        return case

    @property
    def troubleshooter(self) -> Troubleshooter:
        return self.services.troubleshooter

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self, *, grace_seconds: float = 30.0) -> None:
        await self.tasks.close(grace_seconds=grace_seconds)
        if self._http is not None:
            await self._http.close()
        await self.store.close()

    async def _claim(self, key: str) -> bool:
        return await self.services.stores.sessions.claim_idempotency_key(
            f"slack:{key}", ttl_seconds=IDEMPOTENCY_TTL_SECONDS
        )

    def _spawn(self, work: Callable[[], Awaitable[None]], *, name: str, reply_to: _ReplyTo) -> None:
        async def run() -> None:
            try:
                await work()
            except Exception as exc:
                await self._report_failure(exc, reply_to)

        self.tasks.spawn(run(), name=name)

    async def _may_act(self, client: AsyncWebClient, *, user_id: str, team_id: str) -> bool:
        """Whether the user's role lets them give feedback, resolve or forget."""
        return can_act(await self.access.role_of(client, user_id=user_id, team_id=team_id))

    # --- errors --------------------------------------------------------------------------------------------

    async def _report_failure(self, exc: BaseException, reply_to: _ReplyTo) -> str:
        """Log with the traceback under a new error id and tell the thread, or the user through the
        command's ``response_url`` (never ``str(exc)``)."""
        client, channel, thread_ts = reply_to.client, reply_to.channel, reply_to.thread_ts
        replace_ts, respond = reply_to.replace_ts, reply_to.respond
        error_id = uuid.uuid4().hex[:12]
        if isinstance(exc, FaultMavenError):
            message = exc.user_message
            log.warning("Slack request failed", extra={"error_id": error_id, "error": type(exc).__name__})
        else:
            message = None
            log.error("Slack request failed", exc_info=exc, extra={"error_id": error_id})
        text = blocks.render_error(error_id, message)
        if channel is None:
            if respond is not None:
                try:
                    await respond(text=text, response_type="ephemeral", replace_original=False)
                except Exception:
                    log.warning("could not tell the user about a failure", extra={"error_id": error_id})
            return error_id
        try:
            if replace_ts is not None:
                await client.chat_update(channel=channel, ts=replace_ts, text=text, blocks=[])
            else:
                await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        except SlackApiError as post_error:
            log.warning(
                "could not tell Slack about a failure",
                extra={"error_id": error_id, "slack_error": post_error.response.get("error", "unknown")},
            )
        return error_id

    async def _on_error(self, error: Exception, body: dict[str, Any], client: AsyncWebClient) -> None:
        channel, thread_ts = _where(body)
        await self._report_failure(error, _ReplyTo(client, channel, thread_ts))

    # --- conversations -------------------------------------------------------------------------------------
    # Bolt injects listener arguments by parameter name and only for positional-or-keyword parameters, so
    # the ``_on_*`` listeners cannot make them keyword-only.

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("channel_type") == "im":
            return  # the message.im listener answers DMs
        await self._on_message(event, body, client)

    async def _on_direct_message(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if event.get("channel_type") != "im":
            return  # channel messages arrive as app_mention when they are meant for the bot
        if event.get("bot_id") or event.get("subtype") not in (None, "file_share", "thread_broadcast"):
            return  # the bot's own replies, edits, deletions
        await self._on_message(event, body, client)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
        if not await self._claim(f"event:{event_id}"):
            log.info("duplicate Slack event ignored", extra={"event_id": event_id})
            return
        team_id = str(body.get("team_id") or event.get("team") or "")
        channel = str(event["channel"])
        thread_ts = str(event.get("thread_ts") or event["ts"])
        user_id = str(event.get("user") or "unknown")
        text = strip_mentions(str(event.get("text") or ""))
        self._spawn(
            lambda: self._turn(
                client,
                team_id=team_id,
                channel=channel,
                thread_ts=thread_ts,
                event=event,
                user_id=user_id,
                text=text,
            ),
            name=f"slack-answer-{event_id}",
            reply_to=_ReplyTo(client, channel, thread_ts),
        )

    async def _turn(
        self,
        client: AsyncWebClient,
        *,
        team_id: str,
        channel: str,
        thread_ts: str,
        event: Mapping[str, Any],
        user_id: str,
        text: str,
    ) -> None:
        """One turn in a thread: the interim reply, then the answer in its place (or an error id)."""
        word = text.split(maxsplit=1)[0].lower() if text else ""
        if word == "help" and not event.get("files"):
            await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=HELP_TEXT)
            return
        interim = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=INTERIM_TEXT)
        interim_ts = str(interim["ts"])
        try:
            session_id = session_id_for(team_id, channel, thread_ts)
            async with self._one_turn_at_a_time(session_id):
                await self._answer(
                    client,
                    token=str(client.token or ""),
                    team_id=team_id,
                    channel=channel,
                    thread_ts=thread_ts,
                    event=event,
                    user_id=user_id,
                    text=text,
                    interim_ts=interim_ts,
                    session_id=session_id,
                )
        except Exception as exc:
            await self._report_failure(exc, _ReplyTo(client, channel, thread_ts, replace_ts=interim_ts))

    async def _thread_messages(
        self, client: AsyncWebClient, *, channel: str, thread_ts: str
    ) -> list[dict[str, Any]]:
        try:
            response = await client.conversations_replies(
                channel=channel, ts=thread_ts, limit=MAX_THREAD_MESSAGES
            )
        except SlackApiError as exc:
            log.warning(
                "conversations.replies failed; using the event alone",
                extra={"slack_error": exc.response.get("error", "unknown")},
            )
            return []
        return [m for m in response.get("messages") or [] if isinstance(m, dict)]

    @asynccontextmanager
    async def _one_turn_at_a_time(self, session_id: str) -> AsyncIterator[None]:
        """Hold the thread's turn lock, with the session id in the log context."""
        lock = self._turn_locks.setdefault(session_id, asyncio.Lock())
        marker = session_id_var.set(session_id)
        try:
            async with lock:
                yield
        finally:
            session_id_var.reset(marker)

    async def _answer(
        self,
        client: AsyncWebClient,
        *,
        token: str,
        team_id: str,
        channel: str,
        thread_ts: str,
        event: Mapping[str, Any],
        user_id: str,
        text: str,
        interim_ts: str,
        session_id: str,
    ) -> None:
        messages = await self._thread_messages(client, channel=channel, thread_ts=thread_ts)
        files = collect_files([*messages, event])
        attachments = await gather_attachments(
            self._session(),
            files,
            token=token,
            max_bytes=self.settings.slack_max_file_bytes,
            timeout_seconds=self.settings.outbound_timeout_seconds * 3,
        )
        query = text
        if not await self._session_exists(session_id):
            query = _with_thread_context(text, messages, before_ts=str(event.get("ts") or ""))
        has_data = bool(attachments.logs or attachments.metrics)
        if not query.strip() and not has_data:
            reply = HELP_TEXT
            if attachments.skipped:
                reply = _skipped_text(attachments) + "\n\n" + HELP_TEXT
            await client.chat_update(channel=channel, ts=interim_ts, text=reply, blocks=[])
            return
        question = Question(
            user_id=user_id,
            query=query[:MAX_QUERY_CHARS],
            logs=attachments.logs,
            metrics=attachments.metrics,
            session_id=session_id,
            channel=channel,
        )
        answer = await self.troubleshooter.ask(question)
        await self._audit(
            "query",
            actor=user_id,
            session_id=session_id,
            detail={"edge": "slack", "channel": channel, "kind": answer.kind.value, "engine": answer.engine},
        )
        session = await self._get_session(session_id)
        await self.store.remember_thread(team_id, channel, session_id=session_id, thread_ts=thread_ts)
        await self._publish(
            client,
            answer,
            session=session,
            attachments=attachments,
            channel=channel,
            thread_ts=thread_ts,
            message_ts=interim_ts,
        )

    async def _session_exists(self, session_id: str) -> bool:
        return await self._get_session(session_id) is not None

    async def _get_session(self, session_id: str) -> Session | None:
        try:
            return await self.troubleshooter.get_session(session_id)
        except NotFoundError:
            return None

    async def _publish(
        self,
        client: AsyncWebClient,
        answer: Answer,
        *,
        session: Session | None,
        attachments: Attachments,
        channel: str,
        thread_ts: str,
        message_ts: str,
    ) -> None:
        rendered = blocks.render_answer(
            answer, session=session, skipped=attachments.skipped, analyzed=attachments.analyzed_names
        )
        await client.chat_update(channel=channel, ts=message_ts, text=rendered.text, blocks=rendered.blocks)
        if rendered.truncated:
            await client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=blocks.render_full_report(answer),
                filename=f"faultmaven-report-turn{answer.turn}.md",
                title=f"FaultMaven full report (turn {answer.turn})",
            )
        chosen = anomaly_to_chart(answer, attachments.metrics)
        if chosen is not None:
            anomaly, series = chosen
            png = await asyncio.to_thread(render_anomaly_chart, series, anomaly)
            await client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                file=png,
                filename="anomaly.png",
                title=f"{series.key} — {anomaly.kind}"[:200],
                alt_txt=f"Chart of {series.key} with the anomaly window shaded"[:1000],
            )

    # --- slash command -------------------------------------------------------------------------------------

    async def _on_command(
        self, ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        text = str(command.get("text") or "").strip()
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        rest = rest.strip()
        team_id = str(command.get("team_id") or "")
        channel = str(command.get("channel_id") or "")
        user_id = str(command.get("user_id") or "unknown")
        if sub in ("", "help"):
            await ack(text=HELP_TEXT)
            return
        to_user = _ReplyTo(client, channel=None, thread_ts=None, respond=respond)
        if sub == "ask":
            if not rest:
                await ack(text=f"Usage: `{COMMAND} ask <question>`")
                return
            await ack()
            if not await self._claim(f"command:{command.get('trigger_id')}"):
                return
            self._spawn(
                lambda: self._ask_from_command(
                    client, respond, team_id=team_id, channel=channel, user_id=user_id, question=rest
                ),
                name="slack-command-ask",
                reply_to=to_user,
            )
            return
        if sub in ("status", "forget", "resolve"):
            await ack()
            self._spawn(
                lambda: self._session_command(
                    sub,
                    client,
                    respond=respond,
                    team_id=team_id,
                    channel=channel,
                    user_id=user_id,
                    rest=rest,
                    trigger_id=str(command.get("trigger_id") or ""),
                ),
                name=f"slack-command-{sub}",
                reply_to=to_user,
            )
            return
        await ack(text=f"Unknown subcommand `{blocks.escape(sub[:40])}`.\n\n{HELP_TEXT}")

    async def _ask_from_command(
        self,
        client: AsyncWebClient,
        respond: AsyncRespond,
        *,
        team_id: str,
        channel: str,
        user_id: str,
        question: str,
    ) -> None:
        try:
            root = await client.chat_postMessage(
                channel=channel, text=f"<@{user_id}> asked: {blocks.escape(question[:2500])}"
            )
        except SlackApiError as exc:
            if exc.response.get("error") in {"not_in_channel", "channel_not_found"}:
                await respond(
                    text="I can't post in this channel: invite me first (`/invite @FaultMaven`).",
                    response_type="ephemeral",
                )
                return
            raise
        thread_ts = str(root["ts"])
        await self._turn(
            client,
            team_id=team_id,
            channel=channel,
            thread_ts=thread_ts,
            event={"ts": thread_ts},
            user_id=user_id,
            text=question,
        )

    async def _session_command(
        self,
        sub: str,
        client: AsyncWebClient,
        *,
        respond: AsyncRespond,
        team_id: str,
        channel: str,
        user_id: str,
        rest: str,
        trigger_id: str,
    ) -> None:
        latest = await self.store.latest_thread(team_id, channel)
        session = await self._get_session(latest[0]) if latest else None
        if latest is None or session is None:
            await respond(
                text="There is no FaultMaven session in this channel yet: mention me with a question.",
                response_type="ephemeral",
            )
            return
        session_id, thread_ts = latest
        if sub == "status":
            await respond(text=blocks.render_status(session), response_type="ephemeral")
            return
        if not await self._may_act(client, user_id=user_id, team_id=team_id):
            await respond(text=NOT_ALLOWED, response_type="ephemeral")
            return
        if sub == "forget":
            await self.troubleshooter.forget(session_id)
            await self._audit("forget", actor=user_id, session_id=session_id, detail={"edge": "slack"})
            await respond(
                text=f"Forgot session `{session_id}`: the next mention in that thread starts afresh.",
                response_type="ephemeral",
            )
            return
        # resolve
        if session.resolved is not None:
            await respond(text=blocks.already_resolved_text(session.resolved), response_type="ephemeral")
            return
        if not rest:
            view = blocks.resolve_modal(
                session_id,
                channel=channel,
                message_ts=None,
                thread_ts=thread_ts,
                root_cause_hint=_root_cause_hint(session),
            )
            await client.views_open(trigger_id=trigger_id, view=view)
            return
        request = ResolveRequest(
            user_id=user_id,
            root_cause=_root_cause_hint(session) or "Not identified",
            fix=rest[:5000],
            category=blocks.category_hint(session.last_answer),
        )
        case = await self._resolve_once(session_id, request)
        if isinstance(case, _AlreadyResolved):
            await respond(text=blocks.already_resolved_text(case.case), response_type="ephemeral")
            return
        await client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=f"✅ Resolved by <@{user_id}>: {blocks.escape(case.fix[:2000])} — stored as incident `{case.id}`.",
        )
        await self._mark_answers_resolved(
            client, channel=channel, thread_ts=thread_ts, case=case, session_id=session_id
        )
        await respond(text=f"Resolved; stored as incident `{case.id}`.", response_type="ephemeral")

    # --- interactivity -------------------------------------------------------------------------------------

    async def _on_feedback(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        channel, thread_ts = _where(body)
        self._spawn(
            lambda: self._feedback(client, body=body, action=action, respond=respond),
            name="slack-feedback",
            reply_to=_ReplyTo(client, channel, thread_ts),
        )

    async def _feedback(
        self,
        client: AsyncWebClient,
        *,
        body: Mapping[str, Any],
        action: Mapping[str, Any],
        respond: AsyncRespond,
    ) -> None:
        user_id, team_id = _actor(body)
        value = blocks.ButtonValue.decode(str(action.get("value") or ""))
        action_id = str(action.get("action_id") or "")
        if value is None:
            await respond(
                text="That button is from an older message and no longer works.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        if not await self._may_act(client, user_id=user_id, team_id=team_id):
            await respond(text=NOT_ALLOWED, response_type="ephemeral", replace_original=False)
            return
        verdict: blocks.Verdict = "accept" if action_id.startswith(blocks.ACTION_ACCEPT) else "reject"
        try:
            await self.troubleshooter.feedback(
                Feedback(
                    session_id=value.s, item_id=value.i, item_kind=value.k, verdict=verdict, user_id=user_id
                )
            )
        except NotFoundError as exc:
            await respond(text=exc.user_message, response_type="ephemeral", replace_original=False)
            return
        await self._audit(
            "feedback",
            actor=user_id,
            session_id=value.s,
            detail={"edge": "slack", "item_id": value.i, "item_kind": value.k, "verdict": verdict},
        )
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or "")
        if message.get("ts") and channel:
            updated = blocks.mark_feedback(
                message.get("blocks") or [], item_id=value.i, verdict=verdict, user_id=user_id
            )
            await client.chat_update(
                channel=channel,
                ts=str(message["ts"]),
                text=str(message.get("text") or "FaultMaven"),
                blocks=updated,
            )

    async def _on_resolve_button(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        user_id, team_id = _actor(body)
        session_id = str(action.get("value") or "")
        channel, _ = _where(body)
        if not await self._may_act(client, user_id=user_id, team_id=team_id):
            await respond(text=NOT_ALLOWED, response_type="ephemeral", replace_original=False)
            return
        session = await self._get_session(session_id)
        if session is None:
            await respond(
                text="This session has expired or was forgotten.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        message = body.get("message") or {}
        if session.resolved is not None:
            case = session.resolved
            await respond(
                text=blocks.already_resolved_text(case), response_type="ephemeral", replace_original=False
            )
            if channel is not None:
                # The button should not have been there: a missed edit, or a message Slack re-rendered.
                await self._mark_message_resolved(
                    client, channel=channel, message=message, case=case, session_id=session_id
                )
            return
        message_ts = str(message.get("ts") or "") or None
        view = blocks.resolve_modal(
            session_id,
            channel=channel or "",
            message_ts=message_ts,
            thread_ts=str(message.get("thread_ts") or "") or message_ts,
            root_cause_hint=_root_cause_hint(session),
        )
        # trigger_id expires after 3 s: open the modal now, inside the listener.
        await client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=view)

    async def _on_resolve_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        user_id, team_id = _actor(body)
        values = blocks.modal_values(view)
        errors: dict[str, str] = {}
        if not values.get("root_cause"):
            errors["root_cause"] = "Say what the root cause was."
        if not values.get("fix"):
            errors["fix"] = "Say what fixed it."
        if not await self._may_act(client, user_id=user_id, team_id=team_id):
            errors["fix"] = NOT_ALLOWED[:150]
        meta = blocks.ResolveMetadata.decode(str(view.get("private_metadata") or ""))
        session_id = meta.session_id
        session = await self._get_session(session_id) if session_id else None
        if session is not None and session.resolved is not None:
            errors["fix"] = f"Already resolved as incident {session.resolved.id}: nothing to do."[:150]
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        channel = meta.channel or None
        thread_ts = meta.thread_ts
        if thread_ts is None and session is not None and channel is not None:
            # A modal opened before the metadata carried the thread.
            latest = await self.store.latest_thread(team_id, channel)
            thread_ts = latest[1] if latest and latest[0] == session_id else meta.message_ts
        self._spawn(
            lambda: self._resolve(
                client,
                session_id=session_id,
                user_id=user_id,
                values=values,
                channel=channel,
                thread_ts=thread_ts,
                message_ts=meta.message_ts,
                session=session,
            ),
            name="slack-resolve",
            reply_to=_ReplyTo(client, channel, thread_ts),
        )

    async def _resolve(
        self,
        client: AsyncWebClient,
        *,
        session_id: str,
        user_id: str,
        values: Mapping[str, str],
        channel: str | None,
        thread_ts: str | None,
        message_ts: str | None,
        session: Session | None,
    ) -> None:
        if session is None:
            raise NotFoundError("This session has expired or was forgotten, so it cannot be resolved.")
        request = ResolveRequest(
            user_id=user_id,
            title=(values.get("title") or None),
            root_cause=values["root_cause"][:5000],
            fix=values["fix"][:5000],
            category=blocks.category_hint(session.last_answer),
        )
        case = await self._resolve_once(session_id, request)
        if isinstance(case, _AlreadyResolved):
            # Another responder's resolution landed between this modal's check and now.
            if channel is not None:
                await client.chat_postEphemeral(
                    channel=channel, user=user_id, text=blocks.already_resolved_text(case.case)
                )
            return
        if channel is None:
            return
        await client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=(
                f"✅ Resolved by <@{user_id}>: {blocks.escape(case.fix[:2000])} — stored as incident "
                f"`{case.id}`; similar incidents will find it."
            ),
        )
        await self._mark_answers_resolved(
            client,
            channel=channel,
            thread_ts=thread_ts or message_ts,
            case=case,
            session_id=session_id,
            message_ts=message_ts,
        )

    async def _resolve_once(
        self, session_id: str, request: ResolveRequest
    ) -> IncidentCase | _AlreadyResolved:
        """Resolve the session unless it already is: the check and the write hold the thread's turn lock, so
        two resolutions racing in this process cannot both store (and overwrite) the incident."""
        async with self._one_turn_at_a_time(session_id):
            session = await self._get_session(session_id)
            if session is None:
                raise NotFoundError("This session has expired or was forgotten, so it cannot be resolved.")
            if session.resolved is not None:
                log.info("session already resolved", extra={"incident_id": session.resolved.id})
                return _AlreadyResolved(session.resolved)
            return await self._store_resolution(session_id, request)

    async def _mark_answers_resolved(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str | None,
        case: IncidentCase,
        session_id: str,
        message_ts: str | None = None,
    ) -> None:
        """Replace the "Mark resolved" button of the session's answers in the thread with who resolved it.
        The thread is read back (``conversations.replies``) because an edit needs the message's blocks; a
        failure here is logged, never reported: the incident is stored and the thread was told."""
        if thread_ts is None:
            log.info("resolved answers not updated: the thread is unknown", extra={"incident_id": case.id})
            return
        try:
            messages = await self._answers_in_thread(client, channel=channel, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.warning(
                "resolved answers not updated: cannot read the thread",
                extra={"incident_id": case.id, "slack_error": exc.response.get("error", "unknown")},
            )
            return
        marked: set[str] = set()
        for message in messages:
            if await self._mark_message_resolved(
                client, channel=channel, message=message, case=case, session_id=session_id
            ):
                marked.add(str(message.get("ts")))
        if message_ts is not None and message_ts not in marked:
            log.info(
                "the answer the modal was opened from was not updated (not found in its thread)",
                extra={"incident_id": case.id},
            )
        if not marked:
            log.info("no answer with a Mark resolved button in the thread", extra={"incident_id": case.id})

    async def _answers_in_thread(
        self, client: AsyncWebClient, *, channel: str, thread_ts: str
    ) -> list[dict[str, Any]]:
        """The thread's messages, every page of it (up to ``MAX_RESOLVE_SCAN_PAGES`` pages)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_RESOLVE_SCAN_PAGES):
            response = await client.conversations_replies(
                channel=channel, ts=thread_ts, limit=MAX_THREAD_MESSAGES, cursor=cursor
            )
            out += [m for m in response.get("messages") or [] if isinstance(m, dict)]
            cursor = str((response.get("response_metadata") or {}).get("next_cursor") or "") or None
            if not response.get("has_more") or cursor is None:
                break
        return out

    async def _mark_message_resolved(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        message: Mapping[str, Any],
        case: IncidentCase,
        session_id: str,
    ) -> bool:
        """Edit one answer so its "Mark resolved" button reads as resolved; False when it has no such button
        or Slack refused the edit."""
        updated = blocks.mark_resolved(message.get("blocks") or [], case, session_id=session_id)
        ts = str(message.get("ts") or "")
        if updated is None or not ts:
            return False
        try:
            await client.chat_update(
                channel=channel, ts=ts, text=str(message.get("text") or "FaultMaven"), blocks=updated
            )
        except SlackApiError as exc:
            log.warning(
                "could not mark an answer resolved",
                extra={"incident_id": case.id, "slack_error": exc.response.get("error", "unknown")},
            )
            return False
        return True


@dataclass(frozen=True, slots=True)
class _AlreadyResolved:
    """A resolution refused because the session already has its incident."""

    case: IncidentCase


def _where(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The channel and thread a request came from, for error replies."""
    event = body.get("event")
    if isinstance(event, Mapping) and event.get("channel"):
        return str(event["channel"]), str(event.get("thread_ts") or event.get("ts") or "") or None
    channel = body.get("channel")
    if isinstance(channel, Mapping) and channel.get("id"):
        message = body.get("message") or {}
        thread = message.get("thread_ts") or message.get("ts") if isinstance(message, Mapping) else None
        return str(channel["id"]), str(thread) if thread else None
    if body.get("channel_id"):
        return str(body["channel_id"]), None
    return None, None


def _actor(body: Mapping[str, Any]) -> tuple[str, str]:
    """The user and team of an interaction payload (button, modal)."""
    user_id = str((body.get("user") or {}).get("id") or "unknown")
    team_id = str((body.get("team") or {}).get("id") or "")
    return user_id, team_id


def _with_thread_context(text: str, messages: Sequence[Mapping[str, Any]], *, before_ts: str) -> str:
    """The question, preceded by what people said earlier in the thread (first turn of a session only)."""
    earlier: list[str] = []
    for message in messages:
        if message.get("bot_id") or str(message.get("ts") or "") >= before_ts:
            continue
        said = strip_mentions(str(message.get("text") or ""))
        if said:
            earlier.append(said)
    if not earlier:
        return text
    context = "\n".join(earlier)[-MAX_CONTEXT_CHARS:]
    return f"{text}\n\nEarlier in the thread:\n{context}" if text else f"Earlier in the thread:\n{context}"


def _skipped_text(attachments: Attachments) -> str:
    lines = [f"• *{blocks.escape(s.name)}*: {blocks.escape(s.reason)}" for s in attachments.skipped[:10]]
    return (
        "I couldn't analyze the attached files — I read text logs (plain, JSON lines, syslog, nginx, k8s…) and "
        "metrics (CSV, Prometheus JSON), optionally gzipped:\n" + "\n".join(lines)
    )


def _root_cause_hint(session: Session) -> str:
    last = session.last_answer
    if last is None or not last.root_causes:
        return ""
    verdicts = session.verdicts()
    accepted = [c for c in last.root_causes if verdicts.get(c.id) == "accept"]
    open_ = [c for c in last.root_causes if verdicts.get(c.id) != "reject"]
    best = accepted or open_
    return best[0].title if best else ""


def create_slack_bot(settings: Settings, services: Services) -> SlackBot:
    return SlackBot(settings, services)


def create_slack_app(settings: Settings, services: Services) -> AsyncApp:
    """The Bolt app alone; use :func:`create_slack_bot` to also reach its task tracker and ``close``."""
    bot = create_slack_bot(settings, services)
    return bot.app

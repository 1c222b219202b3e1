"""The Troubleshooter every edge talks to: analysis core + knowledge + retrieval + optional LLM + stores.

One ``ask`` turn: load (or start) the session → analyze the data off the event loop → retrieve similar past
incidents → the deterministic engine answers → if an LLM is configured, it is given the compressed,
redacted evidence and its validated answer replaces the deterministic one (on timeout, error or invalid
output the deterministic answer stands and says why) → the turn is saved. Queries, feedback and resolutions
are audited by the edge that received them (it knows the request id and the outcome); ``forget`` is audited
here.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import multiprocessing
import signal
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib import resources

from core import engine
from core.analysis import analyze
from core.answers import (
    Answer,
    Feedback,
    IncidentCase,
    LogInput,
    NextStep,
    Question,
    RankedCause,
    ResolveRequest,
    Session,
    SimilarIncident,
    Turn,
    utcnow,
)
from core.errors import ConflictError, NotFoundError
from core.knowledge_base import BUILTIN_SOURCE, EvidenceProfile, KnowledgeBase, Signature
from core.models import Category, Evidence, MetricSeries, Report
from core.prompting import SignatureMatch as PromptSignature
from core.prompting import build_prompt
from core.redact import Redactor
from core.retrieval import Embedder, ExactIndex, HashedEmbedder, VectorIndex, VectorItem
from faultmaven.llm import LLMAnswer, LLMClient
from faultmaven.logconfig import session_id_var
from faultmaven.observability import Metrics, Tracing
from faultmaven.settings import Settings
from faultmaven.stores import Stores

log = logging.getLogger(__name__)

MIN_SIMILARITY = 0.2
SYNC_SECONDS = 60.0
REINDEX_LIMIT = 1000
INCIDENT_CACHE_SIZE = 512
# Inputs at most this big are analyzed on the event loop (a few milliseconds); bigger ones in a thread.
INLINE_MAX_LINES = 200
INLINE_MAX_CHARS = 64 * 1024
INLINE_MAX_POINTS = 2000


class TroubleshootingService:
    """Implements :class:`faultmaven.troubleshooter.Troubleshooter`."""

    def __init__(
        self,
        *,
        settings: Settings,
        stores: Stores,
        knowledge: KnowledgeBase,
        embedder: Embedder,
        index: VectorIndex,
        llm: LLMClient | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        index_sync_seconds: float = SYNC_SECONDS,
    ) -> None:
        self.settings = settings
        self.index_sync_seconds = index_sync_seconds
        self.stores = stores
        self.knowledge = knowledge
        self.embedder = embedder
        self.index = index
        self.llm = llm
        self.metrics = metrics
        self.tracing = tracing
        self._synced_at = -math.inf
        self.redactor = Redactor(redact_ips=settings.llm_redact_ips)
        prompts = resources.files("faultmaven") / "prompts"
        self._system_template = (prompts / "system.md").read_text(encoding="utf-8")
        self._user_template = (prompts / "answer.md").read_text(encoding="utf-8")
        self._pool: ProcessPoolExecutor | None = None
        self._pool_size = 0
        # Resolved incidents never change: the ones retrieval keeps finding are kept here instead of being
        # read and decrypted from the history store on every question.
        self._incidents: OrderedDict[str, IncidentCase] = OrderedDict()
        # The hashed embedder is local arithmetic costing less than a hop to a worker thread; a remote
        # embedder blocks on the network and must stay off the event loop.
        self._embed_inline = isinstance(embedder, HashedEmbedder)

    # --- the Troubleshooter port ---------------------------------------------------------------------------

    async def ask(self, question: Question) -> Answer:
        started = time.perf_counter()
        session = await self._session_for(question)
        token = session_id_var.set(session.id)
        try:
            report = None
            if question.logs or question.metrics:
                if self._pool is not None:
                    report = await self._analyze_in_pool(question)
                elif _small_input(question):
                    # a few milliseconds: cheaper here than in a worker thread, whose GIL hand-offs would
                    # stall every socket call the event loop makes meanwhile
                    report = self._analyze(question)
                else:
                    report = await asyncio.to_thread(self._analyze, question)
            similar, cases = await self._similar(question, report)
            answer = engine.answer(
                question,
                session=session,
                knowledge=self.knowledge,
                report=report,
                similar=similar,
                cases=cases,
            )
            if self.llm is not None:
                try:
                    answer = await self._with_llm(answer, question=question, session=session, report=report)
                except Exception:  # the deterministic answer must stand whatever goes wrong on the LLM path
                    log.exception("LLM step failed; deterministic engine answered")
                    note = "the LLM step failed unexpectedly; deterministic engine answered"
                    answer = answer.model_copy(update={"engine_note": note})
            await self._save_turn(session, question=question, answer=answer)
            # audited at the edge (the HTTP gate records request id and outcome), not again here
            self._observe(answer, seconds=time.perf_counter() - started)
            return answer
        finally:
            session_id_var.reset(token)

    async def feedback(self, feedback: Feedback) -> Session:
        session = await self.get_session(feedback.session_id)
        known = set()
        if session.last_answer is not None:
            known = {c.id for c in session.last_answer.root_causes} | {
                s.id for s in session.last_answer.next_steps
            }
        for turn in session.turns:
            known.update(turn.root_cause_ids)
            known.update(turn.next_step_ids)
        if feedback.item_id not in known:
            raise NotFoundError(f"no recommendation with id {feedback.item_id!r} in session {session.id}")
        # Durable first: the history store (PostgreSQL in production) must never lose a verdict.
        await self.stores.history.record_feedback(feedback)
        session.feedback.append(feedback)
        session.updated_at = utcnow()
        await self.stores.sessions.save_session(session)
        if self.metrics is not None:
            self.metrics.feedback.labels(item_kind=feedback.item_kind, verdict=feedback.verdict).inc()
        return session

    async def resolve(self, session_id: str, request: ResolveRequest) -> IncidentCase:
        session = await self.get_session(session_id)
        if session.resolved is not None:
            raise ConflictError(f"session {session_id} is already resolved as incident {session.resolved.id}")
        case = self._case_from(session, request)
        await self.stores.history.save_incident(case)
        await self._index_cases([case])
        session.resolved = case
        session.updated_at = utcnow()
        await self.stores.sessions.save_session(session)
        return case

    async def get_session(self, session_id: str) -> Session:
        session = await self.stores.sessions.get_session(session_id)
        if session is None:
            raise NotFoundError(f"no session {session_id!r} (it may have expired)")
        return session

    async def forget(self, session_id: str) -> None:
        await self.stores.sessions.delete_session(session_id)

    async def search_incidents(self, query: str, *, limit: int = 5) -> list[SimilarIncident]:
        hits, _ = await self._search(query, limit=limit)
        return hits

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def start_analysis_processes(self, count: int) -> None:
        """Analyze in ``count`` worker processes from now on, each with its own copy of the knowledge base:
        the CPU-bound analysis then uses every core and never holds this process's GIL. Started here (spawn
        and imports take a moment) rather than on the first request; ``close`` stops them."""
        if count < 1 or self._pool is not None:
            return
        self._pool_size = count
        pool = self._new_pool()
        await asyncio.gather(
            *(asyncio.wrap_future(pool.submit(_analysis_worker_ready)) for _ in range(count))
        )
        self._pool = pool
        log.info("analysis worker processes started", extra={"count": count})

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(functools.partial(pool.shutdown, wait=True, cancel_futures=True))
        if self.llm is not None:
            await self.llm.close()
        closer = getattr(self.index, "close", None)
        if closer is not None:
            await closer()
        embedder_closer = getattr(self.embedder, "close", None)  # the remote embedder's HTTP client
        if embedder_closer is not None:
            await asyncio.to_thread(embedder_closer)

    async def sync_index(self) -> None:
        """Index the past incidents the history store has and this replica's embedded index lacks.

        The history store (PostgreSQL in production) is the source of truth; an embedded index is per
        replica, so incidents resolved on another replica, or an index rebuilt from scratch, are caught up
        here — at start-up and then at most every ``index_sync_seconds`` on a search. Pinecone is shared by every
        replica and needs none of this."""
        self._synced_at = time.monotonic()
        if not isinstance(self.index, ExactIndex):
            return
        cases = await self.stores.history.list_incidents(limit=REINDEX_LIMIT)
        missing = [case for case in cases if self.index.get(case.id, namespace=case.team) is None]
        if missing:
            await self._index_cases(missing)
            log.info("indexed past incidents", extra={"count": len(missing)})

    async def index_runbooks(self) -> None:
        """Team runbooks (``runbooks_dir``) are retrieved like past incidents, not only matched by pattern."""
        runbooks = [sig for sig in self.knowledge.signatures if sig.source != BUILTIN_SOURCE]
        if not runbooks:
            return
        items = [
            VectorItem(
                id=f"runbook:{sig.id}",
                kind="runbook",
                namespace=self.settings.team,
                text=self.redactor.clean(_runbook_text(sig))[:4000],
                metadata={"signature_id": sig.id, "title": sig.title[:200], "category": sig.category.value},
            )
            for sig in runbooks
        ]
        vectors = await asyncio.to_thread(self.embedder.embed, [item.text for item in items])
        await self.index.upsert(items, vectors)

    # --- internals -----------------------------------------------------------------------------------------

    async def _session_for(self, question: Question) -> Session:
        if not question.session_id:
            return Session(id=uuid.uuid4().hex, channel=question.channel)
        session = await self.stores.sessions.get_session(question.session_id)
        if session is None:  # expired from the session store, or never seen
            session = Session(id=question.session_id, channel=question.channel)
        await self._merge_durable_feedback(session)
        return session

    async def _merge_durable_feedback(self, session: Session) -> None:
        """Verdicts live durably in the history store. A session copy can lack some — it expired, or two
        concurrent writers saved it over each other — and the next answer must still honour every one."""
        durable = await self.stores.history.list_feedback(session.id)
        if not durable:
            return
        seen = {(f.item_id, f.user_id, f.created_at) for f in session.feedback}
        missing = [f for f in durable if (f.item_id, f.user_id, f.created_at) not in seen]
        if missing:
            session.feedback = sorted([*session.feedback, *missing], key=lambda f: f.created_at)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._pool_size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_analysis_worker,
            initargs=(self.knowledge,),
        )

    async def _analyze_in_pool(self, question: Question) -> Report:
        assert self._pool is not None
        call = functools.partial(_analyze_in_worker, question.logs, question.metrics, question.query)
        try:
            if self.tracing is None:
                return await asyncio.get_running_loop().run_in_executor(self._pool, call)
            attributes = {"sources": len(question.logs), "process": True}
            with self.tracing.stage("analyze", attributes=attributes):
                return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except BrokenProcessPool:
            # a worker died (killed for memory, say): replace the pool; this request is analyzed here
            log.error("an analysis worker process died; restarting the worker processes")
            broken, self._pool = self._pool, self._new_pool()
            broken.shutdown(wait=False, cancel_futures=True)
            return await asyncio.to_thread(self._analyze, question)

    def _analyze(self, question: Question) -> Report:
        if self.tracing is not None:
            with self.tracing.stage("analyze", attributes={"sources": len(question.logs)}):
                return analyze(
                    logs=question.logs,
                    metrics=question.metrics,
                    query=question.query,
                    knowledge=self.knowledge,
                )
        return analyze(
            logs=question.logs, metrics=question.metrics, query=question.query, knowledge=self.knowledge
        )

    def _retrieval_text(self, question: Question, report: Report | None) -> str:
        parts = [question.query]
        if report is not None:
            parts += [c.title for c in report.root_causes[:3]]
            parts += [t.template for t in report.templates[:15] if t.anomalous or t.severity >= 17]
            parts += [s.name for s in report.suspects[:2]]
        return "\n".join(p for p in parts if p)

    async def _similar(
        self, question: Question, report: Report | None
    ) -> tuple[list[SimilarIncident], list[IncidentCase]]:
        text = self._retrieval_text(question, report)
        if not text.strip():
            return [], []
        return await self._search(text, limit=5)

    async def _search(self, text: str, *, limit: int) -> tuple[list[SimilarIncident], list[IncidentCase]]:
        # The embedder may be a remote API (settings.embedder == "openai"): it gets redacted text only.
        clean = self.redactor.clean(text)
        if time.monotonic() - self._synced_at > self.index_sync_seconds:
            await self.sync_index()
        if self._embed_inline:
            vector = self.embedder.embed([clean])[0]
        else:
            vector = (await asyncio.to_thread(self.embedder.embed, [clean]))[0]
        hits = await self.index.query(vector, namespace=self.settings.team, top_k=limit * 2)
        similar: list[SimilarIncident] = []
        cases: list[IncidentCase] = []
        for hit in hits:
            if hit.score < MIN_SIMILARITY or len(similar) >= limit:
                continue
            if hit.kind == "runbook":
                runbook = self._runbook_hit(hit.metadata.get("signature_id", ""), score=hit.score)
                if runbook is not None:
                    similar.append(runbook)
                continue
            if hit.kind != "incident":
                continue
            case = await self._incident(hit.id)
            if case is None:
                continue
            cases.append(case)
            similar.append(
                SimilarIncident(
                    id=case.id,
                    title=case.title,
                    score=round(max(0.0, min(1.0, hit.score)), 3),
                    category=case.category,
                    root_cause=case.root_cause,
                    fix=case.fix,
                    kind="incident",
                    resolved_at=case.created_at,
                )
            )
        return similar, cases

    def _runbook_hit(self, signature_id: str, *, score: float) -> SimilarIncident | None:
        sig = self.knowledge.find(signature_id)
        if sig is None:
            return None
        return SimilarIncident(
            id=sig.id,
            title=sig.title,
            score=round(max(0.0, min(1.0, score)), 3),
            category=sig.category,
            root_cause=sig.causes[0] if sig.causes else "",
            fix="; ".join(step.title for step in sig.next_steps[:3]),
            kind="runbook",
        )

    async def _incident(self, incident_id: str) -> IncidentCase | None:
        case = self._incidents.get(incident_id)
        if case is not None:
            self._incidents.move_to_end(incident_id)
            return case
        case = await self.stores.history.get_incident(incident_id)
        if case is not None:
            self._incidents[incident_id] = case
            if len(self._incidents) > INCIDENT_CACHE_SIZE:
                self._incidents.popitem(last=False)
        return case

    async def _index_cases(self, cases: Sequence[IncidentCase]) -> None:
        if not cases:
            return
        items = [
            VectorItem(
                id=case.id,
                kind="incident",
                namespace=case.team,
                text=self.redactor.clean(case.search_text())[:4000],
                metadata={"title": self.redactor.clean(case.title)[:200], "category": case.category.value},
            )
            for case in cases
        ]
        vectors = await asyncio.to_thread(self.embedder.embed, [item.text for item in items])
        await self.index.upsert(items, vectors)

    def _case_from(self, session: Session, request: ResolveRequest) -> IncidentCase:
        last = session.last_answer
        category = request.category
        symptoms: list[str] = []
        template_ids: list[str] = []
        services: list[str] = []
        if last is not None:
            accepted = [c for c in last.root_causes if session.verdicts().get(c.id) == "accept"]
            if category is None:
                best = accepted[0] if accepted else (last.root_causes[0] if last.root_causes else None)
                category = best.category if best else Category.UNKNOWN
            if last.analysis is not None:
                report = last.analysis
                symptoms += [self.redactor.redact(t.template).text for t in report.templates if t.anomalous][
                    :20
                ]
                symptoms += [
                    self.redactor.redact(a.description).text for a in report.anomalies[:10] if a.description
                ]
                template_ids = [t.id for t in report.templates if t.anomalous][:50]
                services = [s.name for s in report.suspects[:3]]
        symptoms += [self.redactor.redact(t.question).text for t in session.turns if t.question][:5]
        title = request.title or (
            session.turns[0].question[:120] if session.turns and session.turns[0].question else ""
        )
        return IncidentCase(
            id="inc-" + hashlib.blake2b(session.id.encode(), digest_size=5).hexdigest(),
            title=title or f"Incident {session.id[:8]}",
            team=self.settings.team,
            session_id=session.id,
            category=category or Category.UNKNOWN,
            root_cause=request.root_cause,
            fix=request.fix,
            symptoms=symptoms,
            template_ids=template_ids,
            services=services,
            resolved_by=request.user_id,
        )

    async def _save_turn(self, session: Session, *, question: Question, answer: Answer) -> None:
        report = answer.analysis
        session.turns.append(
            Turn(
                number=answer.turn,
                question=self.redactor.redact(question.query).text[:2000],
                kind=answer.kind,
                user_id=question.user_id,
                answer_summary=answer.summary[:1000],
                root_cause_ids=[c.id for c in answer.root_causes],
                next_step_ids=[s.id for s in answer.next_steps],
                template_ids=[t.id for t in report.templates if t.anomalous][:50] if report else [],
                categories=[c.category for c in answer.root_causes],
            )
        )
        session.last_answer = answer
        session.updated_at = utcnow()
        await self.stores.sessions.save_session(session)

    async def _with_llm(
        self, answer: Answer, *, question: Question, session: Session, report: Report | None
    ) -> Answer:
        assert self.llm is not None
        verdicts = session.verdicts()
        titles = _titles(session, self.knowledge)
        rejected = [titles[i] for i, v in verdicts.items() if v == "reject" and i in titles]
        accepted = [titles[i] for i, v in verdicts.items() if v == "accept" and i in titles]
        profile = (
            EvidenceProfile.from_report(report, question=question.query)
            if report is not None
            else EvidenceProfile(question=question.query)
        )
        signatures = [
            PromptSignature(id=m.signature.id, title=m.signature.title, score=m.score)
            for m in self.knowledge.match(profile, limit=8)
        ]
        prompt = build_prompt(
            question=question.query,
            report=report,
            signatures=signatures,
            similar=answer.similar_incidents,
            history=session.turns,
            rejected=rejected,
            accepted=accepted,
            budget_tokens=self.settings.llm_max_prompt_tokens,
            redactor=self.redactor,
            system_template=self._system_template,
            user_template=self._user_template,
        )
        result = await self.llm.complete(prompt)
        if self.metrics is not None:
            model = self.settings.llm_model
            self.metrics.llm_seconds.labels(model=model).observe(result.latency_s)
            if result.prompt_tokens:
                self.metrics.llm_tokens.labels(model=model, kind="prompt").inc(result.prompt_tokens)
            if result.completion_tokens:
                self.metrics.llm_tokens.labels(model=model, kind="completion").inc(result.completion_tokens)
            if not result.ok:
                self.metrics.llm_errors.labels(model=model, reason=result.error_kind or "unknown").inc()
        if not result.ok or result.output is None:
            reason = result.error_kind or "no output"
            log.warning("LLM failed; deterministic engine answered", extra={"reason": reason})
            # LLMResult.detail is written for operators and never holds prompt text: safe to show.
            why = f"{reason}: {result.detail}" if result.detail else reason
            return answer.model_copy(
                update={
                    "engine_note": f"the LLM did not answer usably ({why}); deterministic engine answered"
                }
            )
        return _merge_llm(
            answer,
            result.output,
            rejected_ids={i for i, v in verdicts.items() if v == "reject"},
            rejected_titles=set(rejected),
        )

    def _observe(self, answer: Answer, *, seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.engine_seconds.labels(operation="ask", outcome=answer.engine).observe(seconds)
        self.metrics.answers.labels(kind=answer.kind.value, engine=answer.engine).inc()
        if answer.analysis is not None:
            for anomaly in answer.analysis.anomalies:
                self.metrics.anomalies.labels(source=anomaly.source, kind=anomaly.kind).inc()


_worker_knowledge: KnowledgeBase | None = None


def _init_analysis_worker(knowledge: KnowledgeBase) -> None:
    """Runs once in each analysis worker process."""
    global _worker_knowledge
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle; it stops the pool
    _worker_knowledge = knowledge


def _analysis_worker_ready() -> bool:
    return _worker_knowledge is not None


def _analyze_in_worker(logs: list[LogInput], metrics: list[MetricSeries], query: str) -> Report:
    return analyze(logs=logs, metrics=metrics, query=query, knowledge=_worker_knowledge)


def _small_input(question: Question) -> bool:
    lines = sum(len(source.lines) for source in question.logs)
    if lines > INLINE_MAX_LINES:
        return False
    chars = sum(len(line) for source in question.logs for line in source.lines)
    points = sum(len(series.points) for series in question.metrics)
    return chars <= INLINE_MAX_CHARS and points <= INLINE_MAX_POINTS


def _runbook_text(sig: Signature) -> str:
    parts = [sig.title, sig.category.value, *sig.causes, *sig.keywords, *sig.question_keywords, sig.notes]
    parts += [f"{step.title}: {step.why}" for step in sig.next_steps]
    return "\n".join(part for part in parts if part)


def _titles(session: Session, knowledge: KnowledgeBase) -> dict[str, str]:
    """Titles of the items the session gave feedback on. Only the last answer is stored, and a rejected
    item is not in it any more after the next turn, so knowledge-base items are resolved from their
    stable ids too; otherwise an LLM repeating an item rejected two turns ago would get it back."""
    out: dict[str, str] = {}
    wanted = {item.item_id for item in session.feedback}
    for sig in knowledge.signatures:
        cid = engine.cause_id(sig.category, sig.id)
        if cid in wanted:
            out[cid] = sig.title
        for step in sig.next_steps:
            sid = engine.step_id(sig.id, step.title)
            if sid in wanted:
                out[sid] = step.title
    if session.last_answer is not None:
        out.update({c.id: c.title for c in session.last_answer.root_causes})
        out.update({s.id: s.title for s in session.last_answer.next_steps})
    return out


def _title_forms(title: str) -> set[str]:
    """A title folded for comparison (case and spacing do not matter), with and without a trailing
    parenthesis: the engine shows a signature's title followed by its suspect, "... (ledger)"."""
    folded = " ".join(title.casefold().split())
    forms = {folded}
    if folded.endswith(")") and " (" in folded:
        forms.add(folded[: folded.rindex(" (")])
    return forms


def _merge_llm(
    answer: Answer, output: LLMAnswer, *, rejected_ids: set[str], rejected_titles: set[str]
) -> Answer:
    """The LLM's validated answer in the engine's shape; rejected items are dropped even if it repeats them."""
    rejected_forms = {form for title in rejected_titles for form in _title_forms(title)}
    causes: list[RankedCause] = []
    for cause in output.root_causes:
        cid = engine.cause_id(cause.category, "llm:" + cause.title.lower())
        if cid in rejected_ids or _title_forms(cause.title) & rejected_forms:
            continue
        causes.append(
            RankedCause(
                id=cid,
                title=cause.title,
                category=cause.category,
                confidence=cause.confidence,
                evidence=Evidence(notes=list(cause.evidence)[:6]),
            )
        )
    steps: list[NextStep] = []
    for step in output.next_steps:
        sid = engine.step_id("llm", step.title.lower())
        if sid in rejected_ids or _title_forms(step.title) & rejected_forms:
            continue
        linked = (
            causes[step.root_cause_index].id
            if step.root_cause_index is not None and 0 <= step.root_cause_index < len(causes)
            else None
        )
        steps.append(
            NextStep(id=sid, title=step.title, command=step.command, why=step.why, root_cause_id=linked)
        )
    if not causes and not steps:
        return answer.model_copy(
            update={"engine_note": "the LLM answered with nothing usable; deterministic engine answered"}
        )
    recommendations = [f"Likely cause ({c.confidence:.0%}): {c.title}" for c in causes[:3]]
    recommendations += [
        s.title + (f": `{s.command}`" if s.command else "") + (f" — {s.why}" if s.why else "") for s in steps
    ]
    return answer.model_copy(
        update={
            "engine": "llm",
            "summary": output.summary,
            "root_causes": causes,
            "next_steps": steps,
            "recommendations": recommendations,
            "insights": [*output.insights, *answer.insights],
        }
    )


async def create_troubleshooter(
    settings: Settings, stores: Stores, *, metrics: Metrics | None = None, tracing: Tracing | None = None
) -> TroubleshootingService:
    """Build the service from settings: knowledge (builtin + team runbooks), embedder, vector index, LLM."""
    extra = [settings.runbooks_dir] if settings.runbooks_dir else []
    knowledge = await asyncio.to_thread(KnowledgeBase.load, extra_dirs=extra)
    # A remote embedder may probe its API for the vector size when built: never on the event loop.
    embedder = await asyncio.to_thread(_embedder, settings)
    index = _index(settings, dimension=embedder.dimension)
    llm = LLMClient(settings) if settings.llm_base_url else None
    service = TroubleshootingService(
        settings=settings,
        stores=stores,
        knowledge=knowledge,
        embedder=embedder,
        index=index,
        llm=llm,
        metrics=metrics,
        tracing=tracing,
    )
    await service.sync_index()
    await service.index_runbooks()
    log.info(
        "troubleshooter ready",
        extra={"signatures": len(knowledge.signatures), "llm": bool(llm), "embedder": embedder.name},
    )
    return service


def _embedder(settings: Settings) -> Embedder:
    if settings.embedder == "hashed":
        return HashedEmbedder()
    from faultmaven.embedders import make_embedder

    return make_embedder(settings)


def _index(settings: Settings, *, dimension: int) -> VectorIndex:
    if settings.vector_index == "pinecone":
        from faultmaven.vector_pinecone import PineconeIndex

        return PineconeIndex.from_settings(settings)
    if settings.workers > 1:
        # Several server processes would overwrite each other's files: each keeps the index in memory,
        # rebuilt from the shared history at start-up and kept current by sync_index.
        return ExactIndex(dimension=dimension)
    return ExactIndex(dimension=dimension, directory=settings.data_dir / "vectors" / f"{dimension}")

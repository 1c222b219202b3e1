"""The port every edge (CLI, HTTP API, webhooks, Slack) talks to. One implementation wires the analysis
core, knowledge, retrieval, the optional LLM and the stores together (``faultmaven.service``)."""

from __future__ import annotations

from typing import Protocol

from core.answers import Answer, Feedback, IncidentCase, Question, ResolveRequest, Session, SimilarIncident


class Troubleshooter(Protocol):
    async def ask(self, question: Question) -> Answer:
        """Answer a question (query-only, data-only or both), continuing ``question.session_id`` if given."""
        ...

    async def feedback(self, feedback: Feedback) -> Session:
        """Record an accept/reject on a next step or root cause; the next answer in the session follows it."""
        ...

    async def resolve(self, session_id: str, request: ResolveRequest) -> IncidentCase:
        """Close the session and store it as an incident case that later retrieval finds."""
        ...

    async def get_session(self, session_id: str) -> Session:
        """The session so far; raises core.errors.NotFoundError when there is none."""
        ...

    async def forget(self, session_id: str) -> None:
        """Drop the session's state (its durable feedback history and audit entries stay)."""
        ...

    async def search_incidents(self, query: str, *, limit: int = 5) -> list[SimilarIncident]:
        """Past incidents and runbooks similar to the text."""
        ...

    async def close(self) -> None:
        """Release what the troubleshooter opened (LLM client, vector index)."""
        ...

"""Retrieval through the real service: team runbooks are retrieved like past incidents, and an incident
resolved on one replica is found by another replica whose embedded index never saw it."""

from __future__ import annotations

from pathlib import Path

from core.answers import Question, ResolveRequest
from faultmaven.service import create_troubleshooter
from faultmaven.settings import Settings
from faultmaven.stores import open_stores

RUNBOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "runbooks"


def _settings(data_dir: Path, **extra: object) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **extra)  # type: ignore[arg-type, call-arg]


async def test_team_runbooks_are_retrieved(tmp_path: Path) -> None:
    settings = _settings(tmp_path, runbooks_dir=RUNBOOKS)
    stores = await open_stores(settings)
    service = await create_troubleshooter(settings, stores)
    try:
        answer = await service.ask(
            Question(
                user_id="u1", query="checkout is slow, cart redis latency is high and SLOWLOG shows KEYS"
            )
        )
        runbooks = [hit for hit in answer.similar_incidents if hit.kind == "runbook"]
        assert runbooks and runbooks[0].id == "checkout-redis-cart-latency"
        assert "Redis" in runbooks[0].title and runbooks[0].fix
        # a question about something else does not drag the runbook in
        other = await service.ask(
            Question(user_id="u1", query="TLS handshake fails: x509 certificate expired")
        )
        assert all(hit.id != "checkout-redis-cart-latency" for hit in other.similar_incidents)
    finally:
        await service.close()
        await stores.close()


async def test_an_incident_resolved_on_one_replica_is_found_by_another(tmp_path: Path) -> None:
    shared = _settings(tmp_path / "a")
    stores = await open_stores(shared)  # one history store, as PostgreSQL would be for every replica
    a = await create_troubleshooter(shared, stores)
    b = await create_troubleshooter(_settings(tmp_path / "b"), stores)  # its own embedded index
    try:
        first = await a.ask(Question(user_id="u1", query="payments pods OOMKilled every few minutes"))
        await a.resolve(
            first.session_id,
            ResolveRequest(
                user_id="u1",
                root_cause="heap limit below the new cache size",
                fix="raised memory limit to 2Gi",
            ),
        )
        b.index_sync_seconds = 0.0  # as if a minute had passed since b's last look at the history store
        hits = await b.search_incidents("payments OOMKilled pods restarting")
        assert [hit.kind for hit in hits][:1] == ["incident"]
        assert hits[0].fix == "raised memory limit to 2Gi"
    finally:
        await a.close()
        await b.close()
        await stores.close()

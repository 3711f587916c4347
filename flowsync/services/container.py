"""The service layer, assembled once per process and shared by every face."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flowsync.config import Settings
from flowsync.db.session import make_engine, make_sessionmaker
from flowsync.db.timeouts import with_statement_timeout
from flowsync.engine.orchestrator import Orchestrator, WorkflowCache
from flowsync.secrets_crypto import keyring_from_settings
from flowsync.services.api_keys import ApiKeyService
from flowsync.services.auth import Authenticator
from flowsync.services.backfill import BackfillService
from flowsync.services.dead_letters import DeadLetterService
from flowsync.services.executions import ExecutionService
from flowsync.services.members import MemberService
from flowsync.services.secrets import SecretService
from flowsync.services.triggers import TriggerService
from flowsync.services.webhooks import WebhookService
from flowsync.services.workers import WorkerService
from flowsync.services.workflows import WorkflowService
from flowsync.worker.queue import create_pool


@dataclass
class Services:
    """Everything a face (GraphQL, REST, CLI) may call."""

    settings: Settings
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pool: asyncpg.Pool
    workflows: WorkflowService
    executions: ExecutionService
    api_keys: ApiKeyService
    dead_letters: DeadLetterService
    authenticator: Authenticator
    triggers: TriggerService
    webhooks: WebhookService
    workers: WorkerService
    backfills: BackfillService
    members: MemberService
    secrets: SecretService

    async def close(self) -> None:
        """Release both connection pools. Connections still in use after 10 s are
        terminated rather than waited for."""
        await self.authenticator.close()
        try:
            await asyncio.wait_for(self.pool.close(), 10)
        except TimeoutError:
            self.pool.terminate()
        await self.engine.dispose()


async def build_services(settings: Settings, url: str) -> Services:
    """Connect to `url` and build the services. ORM reads go through SQLAlchemy; the
    engine's transitions use explicit SQL over an asyncpg pool."""
    # Every statement of a request is cut off past the timeout, so that no request holds
    # a connection (or the pool) for long; `url` itself stays without it (listeners).
    # Through a pooler no session setting reaches the server (flowsync/db/pooler.py):
    # there the pooler's query_timeout or the role's statement_timeout stands in.
    timeout = settings.statement_timeout_seconds
    pooler = settings.database_pooler
    engine = make_engine(
        url, pool_size=settings.pool_size, max_overflow=settings.max_overflow,
        statement_timeout_seconds=timeout, pooler=pooler,
    )  # fmt: skip
    sessions = make_sessionmaker(engine)
    pool_url = url if pooler != "none" else with_statement_timeout(url, timeout)
    pool = await create_pool(pool_url, max_size=settings.pool_size, pooler=pooler)
    orchestrator = Orchestrator(
        pool, WorkflowCache(pool), worker_id="api", lease_seconds=settings.lease_seconds
    )
    api_keys = ApiKeyService(sessions, pool)
    secrets = SecretService(sessions, keyring_from_settings(settings))
    executions = ExecutionService(
        sessions,
        pool,
        orchestrator,
        max_queue_depth=settings.max_queue_depth,
        max_batch_starts=settings.max_batch_starts,
    )
    return Services(
        settings=settings,
        url=url,
        engine=engine,
        sessions=sessions,
        pool=pool,
        workflows=WorkflowService(
            sessions,
            settings.max_definition_bytes,
            on_limit_change=orchestrator.promote,
        ),
        executions=executions,
        api_keys=api_keys,
        dead_letters=DeadLetterService(sessions, pool, orchestrator),
        authenticator=Authenticator(settings, api_keys, sessions),
        triggers=TriggerService(
            sessions,
            pool,
            max_body_bytes=settings.max_body_bytes,
            webhook_base_url=settings.webhook_base_url,
            on_limit_change=orchestrator.promote_trigger,
        ),
        webhooks=WebhookService(pool, executions, max_body_bytes=settings.max_body_bytes),
        workers=WorkerService(pool),
        backfills=BackfillService(pool, executions, max_ticks=settings.backfill_max_ticks),
        members=MemberService(sessions),
        secrets=secrets,
    )

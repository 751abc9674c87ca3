"""Runs a runner: ``python -m services.runner``."""

from __future__ import annotations

import os

from confluent_kafka import Consumer

from services.runner import metrics
from services.runner.aborts import AbortRequests, AbortWatch
from services.runner.claims import ClaimStore
from services.runner.credentials import CredentialSource
from services.runner.engine import ProcessEngine, make_process_undumpable
from services.runner.service import Runner, RunnerConfig
from services.runner.settings import RunnerSettings
from shared.db import open_pool
from shared.kafka import EventProducer
from shared.kafka.producer import producer_config
from shared.lifecycle import (
    STUCK_AFTER_S,
    Every,
    cached,
    database_answers,
    stop_on_signals,
)
from shared.logging import configure_logging, get_logger
from shared.ops import OpsServer
from shared.topics import Topics
from shared.vault import VaultClient

log = get_logger(__name__)


def main() -> None:
    settings = RunnerSettings()
    configure_logging(settings.log_level, settings.log_format)
    # Nothing the runner was given may reach a job: its settings leave the
    # environment once read, workers start from a bare one, and no process of
    # the same user may read the runner's memory.
    for name in [n for n in os.environ if n.startswith(("OPENFN_", "VAULT_", "BAO_"))]:
        del os.environ[name]
    make_process_undumpable()
    engine = ProcessEngine(
        workers=settings.runner_concurrency,
        memory_limit_bytes=settings.run_memory_limit_bytes,
        state_max_bytes=settings.state_max_bytes,
        log_max_bytes=settings.run_log_max_bytes,
        max_runs_per_worker=settings.worker_max_runs,
    )
    engine.start()
    topics = Topics.with_prefix(settings.topic_prefix)
    sizes = topics.max_message_bytes(
        settings.inbox_max_body_bytes, settings.state_max_bytes
    )
    producer = EventProducer(
        producer_config(settings.kafka_config(), sizes[topics.run_events], 30.0)
    )
    consumer = Consumer(
        {
            "group.id": settings.runner_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        | settings.kafka_consumer_settings()
    )
    pool = open_pool(
        settings.database_url.get_secret_value(), settings.database_pool_size, "runner"
    )
    vault = VaultClient(settings)
    claims = ClaimStore(pool, settings.runner_name, settings.claim_stale_s)
    runner = Runner(
        RunnerConfig(
            name=settings.runner_name,
            group=settings.runner_group,
            concurrency=settings.runner_concurrency,
            timeout_s=settings.run_timeout_s,
            retry_max_backoff_s=settings.retry_max_backoff_s,
        ),
        consumer,
        engine,
        producer,
        claims,
        CredentialSource(vault, settings.credential_cache_s),
        topics,
    )
    metrics.WORKERS.set(settings.runner_concurrency)
    dependencies_answer = database_answers(pool)
    vault_answers = cached(vault.is_reachable)
    ops = OpsServer(
        settings,
        is_alive=lambda: runner.poll_age_s() < STUCK_AFTER_S,
        is_ready=lambda: (
            runner.has_joined and dependencies_answer() and vault_answers()
        ),
    ).start()
    stop = stop_on_signals()
    log.info(
        "service.started", group=settings.runner_group, runner=settings.runner_name
    )
    heartbeat = Every(
        settings.claim_heartbeat_s, claims.renew, "claims", "claims.renew_failed"
    ).start()
    watch = AbortWatch(AbortRequests(pool), runner.running)
    aborts = Every(
        settings.abort_poll_s, watch.check, "abort-watch", "aborts.check_failed"
    ).start()
    try:
        runner.run(stop)
    finally:
        aborts.stop()
        heartbeat.stop()
        ops.stop()
        engine.close()
        producer.close()
        pool.close()
    log.info("service.stopped", group=settings.runner_group)


if __name__ == "__main__":
    main()

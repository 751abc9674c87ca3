"""Runs the scheduler: ``python -m services.scheduler``."""

from __future__ import annotations

from services.scheduler.cron_triggers import CronConfig, CronTriggers
from services.scheduler.delayed_runs import DelayedRuns
from services.scheduler.lost_runs import LostRuns
from services.scheduler.service import DELIVERY_TIMEOUT_S, Scheduler, Task
from services.scheduler.settings import SchedulerSettings
from shared.catalog import ProjectCatalog
from shared.kafka import EventProducer
from shared.kafka.producer import producer_config
from shared.lifecycle import STUCK_AFTER_S, stop_on_signals
from shared.logging import configure_logging, get_logger
from shared.ops import OpsServer
from shared.topics import Topics

log = get_logger(__name__)


def main() -> None:
    settings = SchedulerSettings()
    configure_logging(settings.log_level, settings.log_format)
    topics = Topics.with_prefix(settings.topic_prefix)
    sizes = topics.max_message_bytes(
        settings.inbox_max_body_bytes, settings.state_max_bytes
    )
    database_url = settings.database_url.get_secret_value()
    catalog = ProjectCatalog(database_url, settings.catalog_refresh_s).start()
    producer = EventProducer(
        producer_config(
            settings.kafka_config(),
            max(sizes[topics.run_requests], sizes[topics.run_events]),
            DELIVERY_TIMEOUT_S,
        )
    )
    tasks: list[Task] = [
        CronTriggers(
            catalog,
            producer,
            topics,
            CronConfig(settings.cron_misfire_grace_s, settings.cron_state_max_bytes),
        ),
        DelayedRuns(producer, topics),
        LostRuns(
            producer,
            topics,
            settings.run_timeout_s + settings.lost_run_grace_s,
            settings.abort_grace_s,
        ),
    ]
    scheduler = Scheduler(database_url, tasks, settings.scheduler_interval_s)
    ops = OpsServer(
        settings,
        is_alive=lambda: scheduler.round_age_s() < STUCK_AFTER_S,
        is_ready=lambda: catalog.is_loaded and scheduler.last_round_ok,
    ).start()
    stop = stop_on_signals()
    log.info("service.started", service="scheduler")
    try:
        scheduler.run(stop)
    finally:
        ops.stop()
        producer.close()
        catalog.stop()
    log.info("service.stopped", service="scheduler")


if __name__ == "__main__":
    main()

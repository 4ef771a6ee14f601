"""``metrics``: the catalog collector, one per installation, for Prometheus to scrape.

Workers and beat serve their own metrics (``GITOPS_TASKS_WORKER_METRICS_PORT``,
``GITOPS_TASKS_BEAT_METRICS_PORT``); this process serves what Redis holds about every object, the
schedule, the broker queues and the registry hosts' shared rate limits, read at each scrape.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from gitops_tasks.cli import common
from gitops_tasks.settings import ALL_QUEUES

_EXAMPLES = """examples:
  gitops-tasks metrics                              # http://127.0.0.1:9808/metrics
  gitops-tasks metrics --address 0.0.0.0 --port 9808
  curl -s http://127.0.0.1:9808/metrics | grep '^gotk_resource_info'
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "metrics",
        help="serve the catalog's metrics (gotk_resource_info, queues, schedule) for Prometheus",
        description="Serve /metrics with the state of every object (Flux's gotk_resource_info), the "
        "broker queue lengths, the schedule's lateness and the registry hosts' rate limits, read "
        "from Redis at each scrape; /healthz and /readyz (Redis answers) for probes.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--address", help="address to listen on (default: GITOPS_TASKS_METRICS_ADDRESS or 127.0.0.1)"
    )
    p.add_argument("--port", type=int, help="port to listen on (default: GITOPS_TASKS_METRICS_PORT or 9808)")
    p.set_defaults(func=cmd_metrics)


def cmd_metrics(args: argparse.Namespace) -> int:
    import redis

    from gitops_tasks import logsetup
    from gitops_tasks.metrics.catalog import CatalogCollector
    from gitops_tasks.metrics.exposition import collector_metrics
    from gitops_tasks.metrics.server import MetricsServer
    from gitops_tasks.ratelimit import RedisTokenBucket
    from gitops_tasks.store import Keys, connect

    settings = common.settings()
    logsetup.configure(settings.log_level.upper(), settings.log_format)
    client, keys = connect(settings), Keys(settings.key_prefix)
    broker_url = settings.effective_broker_url()
    broker = (
        redis.Redis.from_url(broker_url, socket_timeout=settings.redis_socket_timeout_s)
        if broker_url.startswith(("redis://", "rediss://", "unix://"))
        else None
    )
    bucket = RedisTokenBucket(
        client,
        keys,
        rps=settings.registry_rps,
        burst=settings.registry_burst,
        margin=settings.registry_margin,
        host_overrides=settings.registry_hosts,
    )

    def bucket_state(host: str) -> dict[str, Any]:
        return dict(bucket.state(host))

    collector = CatalogCollector(
        client,
        keys,
        queues=ALL_QUEUES,
        broker=broker,
        broker_prefix=settings.key_prefix,
        buckets=bucket_state,
    )

    def ready(_query: Any) -> tuple[bool, dict[str, Any]]:
        try:
            client.ping()
        except redis.RedisError as exc:
            return False, {"redis": "unreachable", "error": type(exc).__name__}
        return True, {"redis": "ok"}

    server = MetricsServer(
        args.address or settings.metrics_address,
        args.port or settings.metrics_port,
        metrics=lambda: collector_metrics(collector),
        checks={"/healthz": lambda _q: (True, {"alive": True}), "/readyz": ready},
    )
    server.start()
    logging.getLogger(__name__).warning(
        "serving catalog metrics on http://%s:%s/metrics", server.address, server.port
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0

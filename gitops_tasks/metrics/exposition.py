"""The exposition bytes of this process's metrics, and a WSGI app serving any producer of them.

The receiver (or any HTTP service) exposes the same text by calling :func:`process_metrics`; a
WSGI server can mount :func:`wsgi_app`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from gitops_tasks.metrics import instruments as _instruments  # noqa: F401 - registers the metrics
from gitops_tasks.metrics.multiproc import multiprocess_dir

#: Content type of the text exposition format.
CONTENT_TYPE = CONTENT_TYPE_LATEST


def process_metrics() -> bytes:
    """Every metric of this process (and, in multiprocess mode, of its pool processes), as text."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    return generate_latest(registry)


def collector_metrics(*collectors: Collector) -> bytes:
    """The samples of ``collectors`` alone, as text (the catalog collector reads Redis now)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def wsgi_app(produce: Callable[[], bytes] = process_metrics) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering every GET with ``produce()`` (500 with a short text when it fails)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            body = produce()
        except Exception as exc:
            body = f"metrics unavailable: {type(exc).__name__}\n".encode()
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [body]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [body]

    return app

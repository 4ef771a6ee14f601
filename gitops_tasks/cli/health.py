"""``version`` and ``check``: what runs, and whether the installation can work.

- ``version``: the client's versions and, when the broker answers, each worker's (a broadcast
  answered within ``--timeout``).
- ``check``: Redis, the broker, a worker per queue, the beat leader, the cluster, versions; one
  ``✔``/``✗`` line each, exit status 1 when a required check fails.

Celery is reached only through ``gitops_tasks.tasks.workers`` (imported when needed).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.cli import common
from gitops_tasks.settings import ALL_QUEUES, Settings

#: Seconds workers get to answer a broadcast, and Redis, the broker and the cluster to answer.
DEFAULT_TIMEOUT_S = 1.0

_VERSION_EXAMPLES = """examples:
  gitops-tasks version                  # this client and every worker that answers within 1 s
  gitops-tasks version --client         # this client only (no broker needed)
  gitops-tasks version -o json | jq '.workers[].versions["gitops-tasks"]'
"""

_CHECK_EXAMPLES = """examples:
  gitops-tasks check                    # exit status 1 when a required check fails
  gitops-tasks check --timeout 3        # give workers and the cluster 3 s to answer

Required: Redis, the broker, a worker on each queue the catalog's kinds use (and on priority,
which runs `reconcile` requests), a beat leader, and the cluster when one is configured
(GITOPS_TASKS_KUBECONFIG, in-cluster, $KUBECONFIG or ~/.kube/config). Workers running another
version than this client are reported, not failed.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "version",
        help="print the client's versions and the workers'",
        description="Print the versions of this client (gitops-tasks, Python, Celery, kombu, redis-py) "
        "and of every worker that answers.",
        epilog=_VERSION_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--client", action="store_true", help="print the client's versions only")
    _timeout(p)
    p.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text", help="output format")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser(
        "check",
        help="check Redis, the broker, workers, beat, the cluster and versions",
        description="Check that every part of the installation answers; one line per check.",
        epilog=_CHECK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _timeout(p)
    p.set_defaults(func=cmd_check)


def _timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long workers, the broker and the cluster get to answer (default {DEFAULT_TIMEOUT_S:g})",
    )


def _client_versions() -> dict[str, str]:
    from gitops_tasks import versions

    return versions()


def _workers(settings: Settings, timeout_s: float) -> tuple[list[Any], str | None]:
    """The workers that answered, and why none could be asked (``None`` when the broker answered)."""
    from gitops_tasks.tasks.workers import ask_workers, broker_problem

    problem = broker_problem(settings, timeout_s=timeout_s)
    if problem is not None:
        return [], problem
    return ask_workers(settings, timeout_s=timeout_s), None


def cmd_version(args: argparse.Namespace) -> int:
    from gitops_tasks.redact import redact

    client = _client_versions()
    workers: list[Any] = []
    problem = None
    if not args.client:
        settings = common.settings()
        workers, problem = _workers(settings, args.timeout)
        if problem is not None:
            problem = f"broker {redact(settings.effective_broker_url())} not reachable: {redact(problem)}"
    if args.output != "text":
        data: dict[str, Any] = {"client": client}
        if not args.client:
            data["workers"] = [
                {"name": w.name, "versions": w.versions, **({"error": w.error} if w.error else {})}
                for w in workers
            ]
            if problem:
                data["brokerError"] = problem
        print(
            json.dumps(data, indent=2)
            if args.output == "json"
            else yaml.safe_dump(data, sort_keys=False).rstrip()
        )
        return 0
    for name, version in client.items():
        print(f"{name}: {version}")
    if args.client:
        return 0
    if problem:
        print(f"workers: none asked ({problem})")
    elif not workers:
        print(f"workers: none answered within {args.timeout:g}s")
    for worker in workers:
        text = worker.error or ", ".join(f"{k} {v}" for k, v in worker.versions.items())
        print(f"worker {worker.name}: {text}")
    return 0


@dataclass
class Check:
    ok: bool
    text: str
    #: A failed check that is not required is shown, and does not fail the command.
    required: bool = True
    #: Shown with ``-`` (nothing to check: not configured, not needed).
    skipped: bool = False

    def line(self) -> str:
        mark = "-" if self.skipped else "✔" if self.ok else "✗"
        return f"{mark} {self.text}"


def cmd_check(args: argparse.Namespace) -> int:
    settings = common.settings()
    checks: list[Check] = []

    def show(check: Check) -> None:
        checks.append(check)
        print(check.line(), flush=True)

    client = _check_redis(settings, args.timeout)
    show(client[1])
    if client[0] is None:
        show(Check(False, "broker, workers, beat: not checked (Redis does not answer)", skipped=True))
    else:
        _check_stack(settings, client[0], args.timeout, show)
    show(_check_cluster(settings, args.timeout))
    failed = [c for c in checks if not c.ok and c.required and not c.skipped]
    print(f"{len(failed)} required check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0


def _check_redis(settings: Settings, timeout_s: float) -> tuple[Any, Check]:
    import redis

    from gitops_tasks.redact import redact

    url = redact(settings.effective_redis_url())
    client = redis.Redis.from_url(
        settings.effective_redis_url(),
        decode_responses=True,
        socket_connect_timeout=max(timeout_s, 1),
        socket_timeout=max(timeout_s, 1),
    )
    try:
        info = client.info("server")
    except Exception as exc:
        return None, Check(False, f"Redis not reachable at {url}: {redact(str(exc))}")
    return client, Check(True, f"Redis reachable at {url} (Redis {info.get('redis_version', '?')})")


def _check_stack(settings: Settings, client: Any, timeout_s: float, show: Any) -> None:
    from gitops_tasks.redact import redact
    from gitops_tasks.store.keys import Keys

    workers, problem = _workers(settings, timeout_s)
    broker = redact(settings.effective_broker_url())
    if problem is not None:
        show(Check(False, f"broker not reachable at {broker}: {redact(problem)}"))
    else:
        show(Check(True, f"broker reachable at {broker}"))
        for check in _queue_checks(client, Keys(settings.key_prefix), workers, timeout_s):
            show(check)
    show(_check_beat(client, Keys(settings.key_prefix)))
    if problem is None:
        show(_check_versions(workers))


def _needed_queues(client: Any, keys: Any) -> set[str]:
    """The queues the catalog's kinds run on, and ``priority`` (manual reconciles)."""
    from gitops_tasks.objects import QUEUE_BY_KIND

    needed = {"priority"}
    for kind, queue in QUEUE_BY_KIND.items():
        if client.scard(keys.catalog_kind(kind)):
            needed.add(queue)
    return needed


def _queue_checks(client: Any, keys: Any, workers: list[Any], timeout_s: float) -> list[Check]:
    needed = _needed_queues(client, keys)
    consumers: dict[str, list[str]] = {}
    for worker in workers:
        for queue in worker.queues:
            consumers.setdefault(queue, []).append(worker.name)
    checks = []
    for queue in sorted(set(ALL_QUEUES) | set(consumers)):
        names = consumers.get(queue, [])
        if names:
            checks.append(Check(True, f"queue {queue}: {len(names)} worker(s) ({', '.join(names)})"))
        elif queue in needed:
            why = "manual reconciles" if queue == "priority" else "objects in the catalog"
            checks.append(
                Check(False, f"queue {queue}: no worker answered within {timeout_s:g}s ({why} run on it)")
            )
        else:
            checks.append(Check(True, f"queue {queue}: no worker (no object uses it)", skipped=True))
    return checks


def _check_beat(client: Any, keys: Any) -> Check:
    holder = client.get(keys.beat_leader)
    if not holder:
        return Check(False, "beat leader: none (no beat is scheduling; start `gitops-tasks beat`)")
    ttl_ms = client.pttl(keys.beat_leader)
    left = f", lease {ttl_ms / 1000:.0f}s left" if ttl_ms and ttl_ms > 0 else ""
    return Check(True, f"beat leader: {holder}{left}")


def _check_versions(workers: list[Any]) -> Check:
    from gitops_tasks import __version__

    if not workers:
        return Check(True, f"versions: client gitops-tasks {__version__}; no worker to compare", skipped=True)
    other = [
        f"{w.name} runs {w.versions.get('gitops-tasks', 'an unknown version')}"
        for w in workers
        if w.versions.get("gitops-tasks") != __version__
    ]
    if other:
        return Check(
            False, f"versions: client gitops-tasks {__version__}, but {'; '.join(other)}", required=False
        )
    return Check(True, f"versions: gitops-tasks {__version__} on the client and {len(workers)} worker(s)")


def cluster_configured(settings: Settings) -> str | None:
    """Where the cluster's configuration comes from, ``None`` when there is none."""
    if settings.kubeconfig:
        return f"kubeconfig {settings.kubeconfig}"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "in-cluster"
    env = os.environ.get("KUBECONFIG")
    if env:
        return f"kubeconfig {env}"
    default = Path.home() / ".kube" / "config"
    return f"kubeconfig {default}" if default.is_file() else None


def _check_cluster(settings: Settings, timeout_s: float) -> Check:
    from gitops_tasks.sync.cluster import Cluster
    from gitops_tasks.sync.errors import KubeConfigError

    origin = cluster_configured(settings)
    if origin is None:
        return Check(True, "cluster: not configured (no kubeconfig, not in a pod)", skipped=True)
    try:
        cluster = Cluster.from_kubeconfig(settings.kubeconfig, context=settings.kube_context)
    except KubeConfigError as exc:
        return Check(False, f"cluster: {exc.message}")
    import logging

    from kubernetes import client as k8s

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # its retries, once each
    try:
        info = k8s.VersionApi(cluster.api_client).get_code(_request_timeout=max(timeout_s, 1))
    except Exception as exc:
        cause = getattr(exc, "reason", None) or exc  # urllib3's MaxRetryError: the last attempt's error
        return Check(False, f"cluster not reachable at {cluster.host} ({origin}): {cause}")
    finally:
        cluster.close()
    return Check(True, f"cluster reachable at {cluster.host} (Kubernetes {info.git_version}, {origin})")

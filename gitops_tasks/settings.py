"""Typed settings read from the environment (and an optional YAML settings file).

Every tunable has a ``DEFAULT_*`` constant and an environment variable named in ``ENV_VARS``;
the README's configuration table is generated from that mapping, so the two cannot drift.
No I/O beyond reading the settings file and the embedded-Redis state file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.boundedyaml import describe, safe_load

#: Key prefix of every Redis key this project writes (lets several installations share one Redis).
DEFAULT_KEY_PREFIX = "gt:"
#: Namespace given to objects whose metadata has none.
DEFAULT_NAMESPACE = "default"
#: Broker visibility timeout: an unacknowledged task is redelivered after this long (Redis broker).
#: A dead worker's objects do not wait for it: they come back when their run locks expire.
DEFAULT_VISIBILITY_TIMEOUT_S = 3600
#: Lifetime of the enqueue guard that keeps at most one queued task per object.
DEFAULT_ENQUEUE_GUARD_TTL_S = 3600
#: Lifetime of a run lock; the running task renews it every third of this. A killed worker's
#: objects are sent again about this long after it died.
DEFAULT_RUN_LOCK_TTL_S = 10
#: Relative jitter added to every interval (0.05 = ±5%).
DEFAULT_JITTER = 0.05
#: First delay after a transient error; doubled per consecutive failure, capped by the interval.
DEFAULT_BACKOFF_BASE_S = 5.0
#: Upper bound on a backoff delay whatever the interval.
DEFAULT_BACKOFF_MAX_S = 600.0
#: Delay before retrying a reconcile that is waiting (a dependency not ready, a branch lock held).
DEFAULT_WAIT_RETRY_S = 2.0
#: Events kept in the capped stream.
DEFAULT_EVENTS_MAXLEN = 10_000
#: How often beat looks for due objects.
DEFAULT_BEAT_TICK_S = 0.25
#: Flower's listen address and port.
DEFAULT_FLOWER_ADDRESS = "127.0.0.1"
DEFAULT_FLOWER_PORT = 5555
#: The embedded Redis of ``up`` keeps its data in $DATA_DIR/redis (append-only, fsync every second).
DEFAULT_REDIS_PERSIST = True
#: How long a Redis command (or a connection attempt) may wait for an answer before it fails, so a
#: Redis that stops answering (paused, partitioned) is noticed rather than waited on forever.
#: Blocking reads (``events --follow``'s XREAD) block for less than this.
DEFAULT_REDIS_SOCKET_TIMEOUT_S = 5.0
#: Worker pool and concurrency: all work is network or subprocess bound, so threads serve well.
DEFAULT_WORKER_POOL = "threads"
DEFAULT_WORKER_CONCURRENCY = 8
#: Global registry rate limit per host, shared by every worker (Flux v1's defaults).
DEFAULT_REGISTRY_RPS = 50.0
DEFAULT_REGISTRY_BURST = 10
#: Share of that rate left unused (one token of the burst is kept back too), so that requests which
#: take a few ms longer than others to reach the registry still arrive within the limit.
DEFAULT_REGISTRY_MARGIN = 0.02
#: Requests in flight to one registry host per worker process (a hanging host holds no more threads).
DEFAULT_REGISTRY_HOST_CONCURRENCY = 4
#: Failed requests in a row (5xx, timeouts, refused connections) that open a registry host's circuit.
DEFAULT_REGISTRY_CIRCUIT_FAILURES = 3
#: Longest backoff of a failing registry host: the cool-down between probes of a host that stays down.
DEFAULT_REGISTRY_HOST_BACKOFF_MAX_S = 300.0
#: Caps on what one scan reads: bytes per tag-list answer, tags per repository, pages per scan.
DEFAULT_REGISTRY_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
DEFAULT_REGISTRY_MAX_TAGS = 50_000
DEFAULT_REGISTRY_MAX_PAGES = 500
#: Notifications: the same object, message and revision is sent at most once in this window (Flux's).
DEFAULT_NOTIFY_DEDUPE_S = 300.0
#: A delivery that still fails after this long ends with a NotificationDispatchFailed event.
DEFAULT_NOTIFY_MAX_AGE_S = 86_400.0
#: First retry delay of a failed delivery; doubled per attempt up to the maximum (plus jitter).
DEFAULT_NOTIFY_BACKOFF_BASE_S = 1.0
DEFAULT_NOTIFY_BACKOFF_MAX_S = 60.0
#: How long a sender holds a claimed (alert, object) lane: a worker killed mid-send has its message
#: sent again this long after the claim (at-least-once). Provider timeouts are capped below it.
DEFAULT_NOTIFY_LEASE_S = 60.0
#: Sends in flight at once in one dispatch task (each to a different (alert, object) lane).
DEFAULT_NOTIFY_CONCURRENCY = 8
#: How often each worker looks for due deliveries and unrouted events (one cheap read each).
DEFAULT_NOTIFY_TICK_S = 1.0
#: Events kept for routing when no worker routes them (a separate stream from ``events``).
DEFAULT_NOTIFY_INBOX_MAXLEN = 100_000
#: Messages per second per provider host, by Provider type (a type absent here is not limited).
DEFAULT_NOTIFY_TYPE_RPS: dict[str, float] = {
    "slack": 1.0, "discord": 2.0, "msteams": 1.0, "googlechat": 1.0, "telegram": 1.0, "rocket": 1.0,
    "webex": 1.0, "lark": 1.0, "zulip": 1.0, "matrix": 1.0,
}  # fmt: skip
#: Listen address of the metrics and health endpoints (``/metrics``, ``/healthz``, ``/readyz``).
DEFAULT_METRICS_ADDRESS = "127.0.0.1"
#: Port of ``gitops-tasks metrics`` (the catalog collector).
DEFAULT_METRICS_PORT = 9808
#: Ports of a worker's and beat's own metrics and health endpoints; 0: not served.
DEFAULT_WORKER_METRICS_PORT = 0
DEFAULT_BEAT_METRICS_PORT = 0
#: A worker's consumer loop or beat's scheduling loop silent this long fails ``/healthz``.
DEFAULT_HEARTBEAT_STALE_S = 60.0
#: Log line format of every process: ``text`` or ``json`` (one JSON object per line).
DEFAULT_LOG_FORMAT = "text"
#: Queues a worker serves when none are named.
ALL_QUEUES = ("git", "registry", "automation", "sync", "notify", "priority")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "gitops-tasks"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :meth:`from_env`; never read ``os.environ`` elsewhere."""

    redis_url: str | None = None
    broker_url: str | None = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    data_dir: Path = field(default_factory=_default_data_dir)
    secrets_dir: Path | None = None
    cache_dir: Path | None = None
    catalog_paths: tuple[str, ...] = ()
    default_namespace: str = DEFAULT_NAMESPACE
    visibility_timeout_s: int = DEFAULT_VISIBILITY_TIMEOUT_S
    enqueue_guard_ttl_s: int = DEFAULT_ENQUEUE_GUARD_TTL_S
    run_lock_ttl_s: int = DEFAULT_RUN_LOCK_TTL_S
    jitter: float = DEFAULT_JITTER
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    wait_retry_s: float = DEFAULT_WAIT_RETRY_S
    events_maxlen: int = DEFAULT_EVENTS_MAXLEN
    beat_tick_s: float = DEFAULT_BEAT_TICK_S
    flower_address: str = DEFAULT_FLOWER_ADDRESS
    flower_port: int = DEFAULT_FLOWER_PORT
    worker_pool: str = DEFAULT_WORKER_POOL
    worker_concurrency: int = DEFAULT_WORKER_CONCURRENCY
    redis_persist: bool = DEFAULT_REDIS_PERSIST
    redis_socket_timeout_s: float = DEFAULT_REDIS_SOCKET_TIMEOUT_S
    registry_rps: float = DEFAULT_REGISTRY_RPS
    registry_burst: int = DEFAULT_REGISTRY_BURST
    registry_margin: float = DEFAULT_REGISTRY_MARGIN
    #: Per-host overrides (settings file only): {"ghcr.io": {"rps": 20, "burst": 5}}.
    registry_hosts: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Image globs to scan / to skip (Flux v1's --registry-include-image / --registry-exclude-image).
    registry_include_image: tuple[str, ...] = ()
    registry_exclude_image: tuple[str, ...] = ()
    registry_disable_scanning: bool = False
    registry_host_concurrency: int = DEFAULT_REGISTRY_HOST_CONCURRENCY
    registry_circuit_failures: int = DEFAULT_REGISTRY_CIRCUIT_FAILURES
    registry_host_backoff_max_s: float = DEFAULT_REGISTRY_HOST_BACKOFF_MAX_S
    registry_max_response_bytes: int = DEFAULT_REGISTRY_MAX_RESPONSE_BYTES
    registry_max_tags: int = DEFAULT_REGISTRY_MAX_TAGS
    registry_max_pages: int = DEFAULT_REGISTRY_MAX_PAGES
    notify_dedupe_s: float = DEFAULT_NOTIFY_DEDUPE_S
    notify_max_age_s: float = DEFAULT_NOTIFY_MAX_AGE_S
    notify_backoff_base_s: float = DEFAULT_NOTIFY_BACKOFF_BASE_S
    notify_backoff_max_s: float = DEFAULT_NOTIFY_BACKOFF_MAX_S
    notify_concurrency: int = DEFAULT_NOTIFY_CONCURRENCY
    notify_lease_s: float = DEFAULT_NOTIFY_LEASE_S
    notify_tick_s: float = DEFAULT_NOTIFY_TICK_S
    notify_inbox_maxlen: int = DEFAULT_NOTIFY_INBOX_MAXLEN
    #: Per-type provider rates (settings file only): {"slack": 1.0}; replaces the defaults given.
    notify_type_rps: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_NOTIFY_TYPE_RPS))
    #: Per-host provider rates (settings file only): {"hooks.slack.com": {"rps": 1, "burst": 1}}.
    notify_hosts: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Append "[ci skip]" to automation commit messages (Flux v1's --git-ci-skip).
    git_ci_skip: bool = False
    #: Compute and report automation changes but push nothing (Flux v1's --git-readonly).
    git_readonly: bool = False
    #: Cluster sync: kubeconfig (unset: in-cluster in a pod, else $KUBECONFIG / ~/.kube/config).
    kubeconfig: Path | None = None
    kube_context: str | None = None
    #: Namespace for namespaced objects with none and no spec.targetNamespace.
    default_target_namespace: str = DEFAULT_NAMESPACE
    #: Namespaces objects may be applied to (Flux v1's --k8s-allow-namespace); empty: any.
    allowed_namespaces: tuple[str, ...] = ()
    #: Git tag moved to each applied revision (Flux v1's flux-sync tag); empty: off.
    sync_tag: str = ""
    #: An unset ${VAR} without a default fails the build (Flux's strict substitutions).
    strict_substitutions: bool = False
    #: Secret (``NAMESPACE/NAME``, or ``NAME`` in the default namespace) whose ``*.agekey`` keys
    #: decrypt for a ``spec.decryption`` without a secretRef (Flux's --sops-age-secret); empty: none.
    sops_age_secret: str = ""
    log_level: str = "INFO"
    log_format: str = DEFAULT_LOG_FORMAT
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    metrics_port: int = DEFAULT_METRICS_PORT
    worker_metrics_port: int = DEFAULT_WORKER_METRICS_PORT
    beat_metrics_port: int = DEFAULT_BEAT_METRICS_PORT
    heartbeat_stale_s: float = DEFAULT_HEARTBEAT_STALE_S
    #: A file the worker's consumer loop (or beat's scheduling loop) rewrites with the time at each
    #: heartbeat, for probes that read files; unset: none.
    heartbeat_file: Path | None = None
    #: Task events for Flower (received/started/succeeded, and sent). About a third of a worker's
    #: CPU per cheap poll goes to them; turn off only where nobody watches Flower.
    task_events: bool = True
    config_file: Path | None = None

    @property
    def resolved_secrets_dir(self) -> Path:
        return self.secrets_dir or self.data_dir / "secrets"

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.data_dir / "cache"

    @property
    def embedded_state_file(self) -> Path:
        """Where ``gitops-tasks up`` records the URL of the Redis it started."""
        return self.data_dir / "embedded-redis.url"

    @property
    def epoch_memory_file(self) -> Path:
        """Where the command line remembers the epoch of each catalog it saw (``store.marker``)."""
        return self.data_dir / "catalog-epochs.json"

    @property
    def up_lock_file(self) -> Path:
        """Locked by a running ``gitops-tasks up`` for its lifetime; holds its pid and addresses."""
        return self.data_dir / "up.lock"

    def effective_redis_url(self) -> str:
        """The Redis URL to use: configured, else the embedded one ``up`` recorded, else localhost."""
        if self.redis_url:
            return self.redis_url
        try:
            recorded = self.embedded_state_file.read_text().strip()
        except OSError:
            recorded = ""
        return recorded or "redis://127.0.0.1:6379/0"

    def effective_broker_url(self) -> str:
        return self.broker_url or self.effective_redis_url()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``), then the settings file if one is named.

        Raises ``ValueError`` naming the variable when a value does not parse.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        config_file = env.get("GITOPS_TASKS_CONFIG")
        if config_file:
            values.update(_read_settings_file(Path(config_file)))
            values["config_file"] = Path(config_file)
        kinds = {f.name: f.type for f in fields(cls)}
        for attr, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[attr] = _convert(var, str(kinds[attr]), raw)
        for attr in ("data_dir", "secrets_dir", "cache_dir", "config_file", "kubeconfig", "heartbeat_file"):
            if isinstance(values.get(attr), str):
                values[attr] = Path(values[attr])
        for attr in (
            "catalog_paths",
            "registry_include_image",
            "registry_exclude_image",
            "allowed_namespaces",
        ):
            if isinstance(values.get(attr), list):
                values[attr] = tuple(values[attr])
        if values.get("log_format", DEFAULT_LOG_FORMAT) not in ("text", "json"):
            raise ValueError(f"GITOPS_TASKS_LOG_FORMAT: expected text or json, got {values['log_format']!r}")
        return cls(**values)


def _convert(var: str, kind: str, raw: str) -> Any:
    try:
        if "bool" in kind:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if "tuple" in kind:
            separator = os.pathsep if var.endswith("_PATHS") else ","
            return tuple(p.strip() for p in raw.split(separator) if p.strip())
        if "Path" in kind:
            return Path(raw)
        return raw
    except ValueError:
        raise ValueError(f"environment variable {var}={raw!r}: expected {kind}") from None


def _read_settings_file(path: Path) -> dict[str, Any]:
    try:
        data = safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"settings file {path}: {describe(exc)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"settings file {path}: expected a mapping at the top level")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"settings file {path}: unknown setting(s) {', '.join(unknown)}")
    return data


#: Settings attribute → environment variable. The README's table lists exactly these.
ENV_VARS: dict[str, str] = {
    "redis_url": "GITOPS_TASKS_REDIS_URL",
    "broker_url": "GITOPS_TASKS_BROKER_URL",
    "key_prefix": "GITOPS_TASKS_KEY_PREFIX",
    "data_dir": "GITOPS_TASKS_DATA_DIR",
    "secrets_dir": "GITOPS_TASKS_SECRETS_DIR",
    "cache_dir": "GITOPS_TASKS_CACHE_DIR",
    "catalog_paths": "GITOPS_TASKS_CATALOG_PATHS",
    "default_namespace": "GITOPS_TASKS_DEFAULT_NAMESPACE",
    "visibility_timeout_s": "GITOPS_TASKS_VISIBILITY_TIMEOUT_S",
    "enqueue_guard_ttl_s": "GITOPS_TASKS_ENQUEUE_GUARD_TTL_S",
    "run_lock_ttl_s": "GITOPS_TASKS_RUN_LOCK_TTL_S",
    "jitter": "GITOPS_TASKS_JITTER",
    "backoff_base_s": "GITOPS_TASKS_BACKOFF_BASE_S",
    "backoff_max_s": "GITOPS_TASKS_BACKOFF_MAX_S",
    "wait_retry_s": "GITOPS_TASKS_WAIT_RETRY_S",
    "events_maxlen": "GITOPS_TASKS_EVENTS_MAXLEN",
    "beat_tick_s": "GITOPS_TASKS_BEAT_TICK_S",
    "flower_address": "GITOPS_TASKS_FLOWER_ADDRESS",
    "flower_port": "GITOPS_TASKS_FLOWER_PORT",
    "worker_pool": "GITOPS_TASKS_WORKER_POOL",
    "worker_concurrency": "GITOPS_TASKS_WORKER_CONCURRENCY",
    "redis_persist": "GITOPS_TASKS_REDIS_PERSIST",
    "redis_socket_timeout_s": "GITOPS_TASKS_REDIS_SOCKET_TIMEOUT_S",
    "registry_rps": "GITOPS_TASKS_REGISTRY_RPS",
    "registry_burst": "GITOPS_TASKS_REGISTRY_BURST",
    "registry_margin": "GITOPS_TASKS_REGISTRY_MARGIN",
    "registry_include_image": "GITOPS_TASKS_REGISTRY_INCLUDE_IMAGE",
    "registry_exclude_image": "GITOPS_TASKS_REGISTRY_EXCLUDE_IMAGE",
    "registry_disable_scanning": "GITOPS_TASKS_REGISTRY_DISABLE_SCANNING",
    "registry_host_concurrency": "GITOPS_TASKS_REGISTRY_HOST_CONCURRENCY",
    "registry_circuit_failures": "GITOPS_TASKS_REGISTRY_CIRCUIT_FAILURES",
    "registry_host_backoff_max_s": "GITOPS_TASKS_REGISTRY_HOST_BACKOFF_MAX_S",
    "registry_max_response_bytes": "GITOPS_TASKS_REGISTRY_MAX_RESPONSE_BYTES",
    "registry_max_tags": "GITOPS_TASKS_REGISTRY_MAX_TAGS",
    "registry_max_pages": "GITOPS_TASKS_REGISTRY_MAX_PAGES",
    "notify_dedupe_s": "GITOPS_TASKS_NOTIFY_DEDUPE_S",
    "notify_max_age_s": "GITOPS_TASKS_NOTIFY_MAX_AGE_S",
    "notify_backoff_base_s": "GITOPS_TASKS_NOTIFY_BACKOFF_BASE_S",
    "notify_backoff_max_s": "GITOPS_TASKS_NOTIFY_BACKOFF_MAX_S",
    "notify_concurrency": "GITOPS_TASKS_NOTIFY_CONCURRENCY",
    "notify_lease_s": "GITOPS_TASKS_NOTIFY_LEASE_S",
    "notify_tick_s": "GITOPS_TASKS_NOTIFY_TICK_S",
    "notify_inbox_maxlen": "GITOPS_TASKS_NOTIFY_INBOX_MAXLEN",
    "git_ci_skip": "GITOPS_TASKS_GIT_CI_SKIP",
    "git_readonly": "GITOPS_TASKS_GIT_READONLY",
    "kubeconfig": "GITOPS_TASKS_KUBECONFIG",
    "kube_context": "GITOPS_TASKS_KUBE_CONTEXT",
    "default_target_namespace": "GITOPS_TASKS_DEFAULT_TARGET_NAMESPACE",
    "allowed_namespaces": "GITOPS_TASKS_ALLOWED_NAMESPACES",
    "sync_tag": "GITOPS_TASKS_SYNC_TAG",
    "strict_substitutions": "GITOPS_TASKS_STRICT_SUBSTITUTIONS",
    "sops_age_secret": "GITOPS_TASKS_SOPS_AGE_SECRET",
    "log_level": "GITOPS_TASKS_LOG_LEVEL",
    "log_format": "GITOPS_TASKS_LOG_FORMAT",
    "metrics_address": "GITOPS_TASKS_METRICS_ADDRESS",
    "metrics_port": "GITOPS_TASKS_METRICS_PORT",
    "worker_metrics_port": "GITOPS_TASKS_WORKER_METRICS_PORT",
    "beat_metrics_port": "GITOPS_TASKS_BEAT_METRICS_PORT",
    "heartbeat_stale_s": "GITOPS_TASKS_HEARTBEAT_STALE_S",
    "heartbeat_file": "GITOPS_TASKS_HEARTBEAT_FILE",
    "task_events": "GITOPS_TASKS_TASK_EVENTS",
}

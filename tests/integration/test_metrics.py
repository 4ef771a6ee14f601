"""Metrics and health endpoints of real workers (threads and prefork), beat and the catalog
collector, scraped over HTTP and parsed, against a real Redis and git remotes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests import conftest
from tests.gitservers import FileRemotes, RemoteRepo
from tests.procs import Proc, RedisServer, cli_argv, free_port, wait_for
from tests.registryservers import SpecRegistry

#: A password that must never appear in a scrape or a log line.
SECRET = "s3cret-pw-5f4e3d"


def scrape(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.read().decode()


def probe(port: int, path: str, *, timeout_s: float = 5) -> tuple[int, dict[str, object]]:
    """(status, JSON body) of a health endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def samples(text: str, metric: str, /, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample named ``metric`` whose labels include ``labels``."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append((dict(sample.labels), sample.value))
    return found


def value(text: str, metric: str, /, **labels: str) -> float | None:
    """The sum of the matching samples; ``None`` when there is none."""
    found = samples(text, metric, **labels)
    return sum(v for _, v in found) if found else None


@dataclass
class Stack:
    pool: str
    env: dict[str, str]
    worker_port: int
    beat_port: int
    metrics_port: int
    remotes: FileRemotes
    procs: dict[str, Proc] = field(default_factory=dict)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_argv(*args), env=self.env, capture_output=True, text=True, timeout=60, check=False
        )

    def apply(self, text: str, path: Path) -> None:
        path.write_text(text)
        out = self.cli("apply", "-f", str(path))
        assert out.returncode == 0, out.stderr

    def logs(self) -> str:
        return "\n".join(f"----- {name} -----\n{p.log()[-4000:]}" for name, p in self.procs.items())


def git_repository(name: str, url: str) -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata: {{name: {name}}}\nspec: {{url: {json.dumps(url)}, interval: 1h, ref: {{branch: main}}}}\n"
    )


def kustomization(name: str, source: str) -> str:
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        f"metadata: {{name: {name}}}\n"
        "spec: {interval: 1h, path: ./, prune: false, "
        f"sourceRef: {{kind: GitRepository, name: {source}}}}}\n"
    )


def module_env(redis_server: RedisServer, tmp: Path) -> dict[str, str]:
    db = next(conftest._databases) % 256
    redis.Redis.from_url(redis_server.url(db)).flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_TASKS_", "FLOWER_"))}
    env.update(
        {
            "GITOPS_TASKS_REDIS_URL": redis_server.url(db),
            "GITOPS_TASKS_DATA_DIR": str(tmp / "data"),
            "GITOPS_TASKS_SECRETS_DIR": str(tmp / "secrets"),
            "GITOPS_TASKS_CACHE_DIR": str(tmp / "cache"),
            "GITOPS_TASKS_BACKOFF_BASE_S": "0.5",
            "GITOPS_TASKS_BEAT_TICK_S": "0.1",
            "GITOPS_TASKS_LOG_LEVEL": "INFO",
            "GITOPS_TASKS_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="module", params=["threads", "prefork"])
def stack(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A worker of the given pool on git and priority only (sync tasks stay queued), beat and the
    catalog collector, each serving its metrics; JSON log lines."""
    tmp = tmp_path_factory.mktemp(f"metrics-{request.param}")
    env = module_env(redis_server, tmp)
    s = Stack(request.param, env, free_port(), free_port(), free_port(), FileRemotes(tmp / "remotes"))
    logs = tmp / "logs"
    logs.mkdir()
    s.procs["worker"] = Proc(
        "worker",
        cli_argv("worker", "-Q", "git,priority", "-P", s.pool, "-c", "2"),
        {**env, "GITOPS_TASKS_WORKER_METRICS_PORT": str(s.worker_port)},
        logs,
    )
    s.procs["beat"] = Proc(
        "beat", cli_argv("beat"), {**env, "GITOPS_TASKS_BEAT_METRICS_PORT": str(s.beat_port)}, logs
    )
    s.procs["metrics"] = Proc("metrics", cli_argv("metrics", "--port", str(s.metrics_port)), env, logs)
    try:
        wait_for(lambda: _ready(s.worker_port), timeout_s=60, what="the worker's /readyz")
        wait_for(lambda: _ready(s.beat_port), timeout_s=60, what="beat's /readyz")
        wait_for(lambda: _ready(s.metrics_port), timeout_s=60, what="the collector's /readyz")
    except AssertionError:
        print(s.logs())
        for proc in s.procs.values():
            proc.stop()
        raise
    yield s
    for proc in s.procs.values():
        proc.stop()


def _ready(port: int) -> bool:
    try:
        return probe(port, "/readyz", timeout_s=2)[0] == 200
    except OSError:
        return False


@pytest.fixture
def explain(stack: Stack, request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(stack.logs())


def test_metrics_follow_an_object_through_runs_suspend_and_a_new_revision(
    stack: Stack, tmp_path: Path, explain: None
) -> None:
    # Given a GitRepository on a file:// remote and a Kustomization whose sync queue nobody serves
    name = f"app-{stack.pool}"
    remote: RemoteRepo = stack.remotes.new_repo(name)
    stack.apply(
        git_repository(name, remote.url) + "---\n" + kustomization(f"site-{stack.pool}", name),
        tmp_path / "o.yaml",
    )

    # When beat sends it and the worker reconciles it
    def info() -> tuple[dict[str, str], float] | None:
        found = samples(
            scrape(stack.metrics_port), "gotk_resource_info", customresource_kind="GitRepository", name=name
        )
        return found[0] if found and found[0][0].get("ready") == "True" else None

    labels, one = wait_for(info, timeout_s=60, what=f"gotk_resource_info of {name} Ready")

    # Then the collector shows it as kube-state-metrics shows Flux's objects
    assert one == 1.0
    assert labels["customresource_group"] == "source.toolkit.fluxcd.io"
    assert labels["customresource_version"] == "v1"
    assert labels["exported_namespace"] == "default"
    assert labels["url"] == remote.url
    first_revision = labels["revision"]
    assert first_revision.startswith("main@sha1:")
    assert "suspended" not in labels  # spec.suspend unset: the label is absent, as in kube-state-metrics
    # and the worker (every pool process, for prefork) counted the run and its git operations
    worker = scrape(stack.worker_port)
    duration = {"kind": "GitRepository", "name": name, "namespace": "default"}
    assert value(worker, "gotk_reconcile_duration_seconds_count", **duration) == 1.0
    buckets = [
        float(lab["le"]) for lab, _ in samples(worker, "gotk_reconcile_duration_seconds_bucket", **duration)
    ]
    # Flux's buckets: prometheus.ExponentialBucketsRange(10e-3, 1800, 10), then +Inf
    assert buckets == pytest.approx([0.01 * (1800 / 0.01) ** (i / 9) for i in range(10)] + [float("inf")])
    assert (
        value(
            worker, "gitops_tasks_git_operations_total", operation="ls-remote", transport="file", result="ok"
        )
        or 0
    ) >= 1
    assert (
        value(worker, "gitops_tasks_git_operations_total", operation="fetch", transport="file", result="ok")
        or 0
    ) >= 1
    assert (value(worker, "gitops_tasks_reconciles_total", kind="GitRepository", result="success") or 0) >= 1
    # the Kustomization's task waits in the sync queue (one, however often beat ticks)
    wait_for(
        lambda: value(scrape(stack.metrics_port), "gitops_tasks_queue_length", queue="sync") == 1.0,
        timeout_s=30,
        what="queue length 1 on sync",
    )
    catalog = scrape(stack.metrics_port)
    assert (
        value(catalog, "gitops_tasks_objects", kind="Kustomization", condition="Ready", status="Unknown") or 0
    ) >= 1
    assert value(catalog, "gitops_tasks_beat_leader_present") == 1.0
    beat = scrape(stack.beat_port)
    assert value(beat, "gitops_tasks_beat_leader") == 1.0
    assert (value(beat, "gitops_tasks_beat_sent_total") or 0) >= 2

    # When the remote moves on and a person asks for a run
    remote.commit({"README.md": "two\n"}, message="two")
    out = stack.cli("reconcile", "gitrepository", name, "--wait")
    assert out.returncode == 0, out.stderr

    # Then the run is counted and the revision label moves
    assert value(scrape(stack.worker_port), "gotk_reconcile_duration_seconds_count", **duration) == 2.0
    labels = samples(
        scrape(stack.metrics_port), "gotk_resource_info", customresource_kind="GitRepository", name=name
    )[0][0]
    assert labels["revision"] != first_revision and labels["revision"].startswith("main@sha1:")

    # When it is suspended, the collector says so
    before = value(scrape(stack.metrics_port), "gitops_tasks_objects_suspended", kind="GitRepository") or 0
    assert stack.cli("suspend", "gitrepository", name).returncode == 0
    catalog = scrape(stack.metrics_port)
    labels = samples(catalog, "gotk_resource_info", customresource_kind="GitRepository", name=name)[0][0]
    assert labels["suspended"] == "true"
    assert value(catalog, "gitops_tasks_objects_suspended", kind="GitRepository") == before + 1


def test_a_failing_object_with_credentials_in_its_url_is_counted_and_masked(
    stack: Stack, tmp_path: Path, explain: None
) -> None:
    # Given a GitRepository whose URL carries a password, on a port where nothing listens
    name = f"private-{stack.pool}"
    url = f"http://reader:{SECRET}@127.0.0.1:{free_port()}/repo.git"
    stack.apply(git_repository(name, url), tmp_path / "o.yaml")

    # Then the collector shows it not Ready, its URL masked
    def failed() -> dict[str, str] | None:
        found = samples(
            scrape(stack.metrics_port), "gotk_resource_info", customresource_kind="GitRepository", name=name
        )
        return found[0][0] if found and found[0][0].get("ready") == "False" else None

    labels = wait_for(failed, timeout_s=60, what=f"{name} not Ready")
    assert labels["url"] == url.replace(f":{SECRET}@", ":***@")
    catalog = scrape(stack.metrics_port)
    assert (
        value(catalog, "gitops_tasks_objects", kind="GitRepository", condition="Ready", status="False") or 0
    ) >= 1
    worker = scrape(stack.worker_port)
    assert (
        value(
            worker,
            "gitops_tasks_git_operations_total",
            operation="ls-remote",
            transport="http",
            result="GitOperationFailed",
        )
        or 0
    ) >= 1
    assert (
        value(worker, "gitops_tasks_reconciles_total", kind="GitRepository", result="transient") or 0
    ) >= 1
    # and the password is in no scrape and no log line
    for text in (catalog, worker, scrape(stack.beat_port)):
        assert SECRET not in text
    wait_for(
        lambda: name in stack.procs["worker"].log(), timeout_s=30, what="the worker's log line of the failure"
    )
    for proc in stack.procs.values():
        assert SECRET not in proc.log(), proc.name


def test_worker_log_lines_are_json_with_task_object_and_revision(
    stack: Stack, tmp_path: Path, explain: None
) -> None:
    name = f"logged-{stack.pool}"
    remote = stack.remotes.new_repo(name)
    stack.apply(git_repository(name, remote.url), tmp_path / "o.yaml")
    out = stack.cli("reconcile", "gitrepository", name, "--wait")
    assert out.returncode == 0, out.stderr

    def line() -> dict[str, str] | None:
        for text in stack.procs["worker"].log().splitlines():
            if text.startswith("{") and f'"GitRepository/default/{name}"' in text:
                entry = json.loads(text)
                if entry.get("revision"):
                    return entry
        return None

    entry = wait_for(line, timeout_s=30, what=f"a JSON log line about {name}")
    assert entry["object"] == f"GitRepository/default/{name}"
    assert entry["revision"].startswith("main@sha1:")
    assert entry["level"] in ("INFO", "DEBUG") and entry["task_id"] and entry["time"].endswith("+00:00")
    assert name in entry["message"]


@pytest.mark.parametrize("stack", ["threads"], indirect=True)  # beat does not depend on the pool
def test_beat_readiness_tells_the_leader_from_a_standby(stack: Stack, tmp_path: Path, explain: None) -> None:
    code, body = probe(stack.beat_port, "/readyz?role=leader")
    assert (code, body["role"]) == (200, "leader")
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    standby = Proc(
        "beat-standby", cli_argv("beat"), {**stack.env, "GITOPS_TASKS_BEAT_METRICS_PORT": str(port)}, logs
    )
    try:
        wait_for(lambda: _ready(port), timeout_s=60, what="the standby beat's /readyz")
        code, body = probe(port, "/readyz?role=leader")
        assert (code, body["role"]) == (503, "standby")
        assert probe(port, "/healthz")[0] == 200
        assert value(scrape(port), "gitops_tasks_beat_leader") == 0.0
        assert value(scrape(stack.beat_port), "gitops_tasks_beat_leader") == 1.0
    finally:
        standby.stop()


def test_worker_heartbeat_goes_stale_while_its_consumer_is_stopped(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # Given a worker whose consumer loop rewrites a heartbeat file, stale after 2 s
    env = module_env(redis_server, tmp_path)
    port, heartbeat = free_port(), tmp_path / "heartbeat"
    env.update(
        {
            "GITOPS_TASKS_WORKER_METRICS_PORT": str(port),
            "GITOPS_TASKS_HEARTBEAT_FILE": str(heartbeat),
            "GITOPS_TASKS_HEARTBEAT_STALE_S": "2",
        }
    )
    (tmp_path / "logs").mkdir()
    worker = Proc("worker", cli_argv("worker", "-Q", "git", "-c", "1"), env, tmp_path / "logs")
    try:
        wait_for(lambda: _ready(port), timeout_s=60, what="the worker's /readyz")
        first = float(wait_for(lambda: heartbeat.exists() and heartbeat.read_text(), what="a heartbeat"))
        wait_for(lambda: float(heartbeat.read_text()) > first, timeout_s=10, what="the heartbeat to advance")

        # When the worker is stopped
        os.killpg(worker.pid, signal.SIGSTOP)
        stopped_at = float(heartbeat.read_text())
        wait_for(lambda: time.time() - stopped_at > 2, timeout_s=10, interval_s=0.2, what="2 s to pass")

        # Then the heartbeat goes stale and the liveness probe gets no answer
        assert float(heartbeat.read_text()) == stopped_at
        assert time.time() - float(heartbeat.read_text()) > 2
        with pytest.raises(OSError):
            probe(port, "/healthz", timeout_s=1)

        # When it goes on, so do its heartbeat and its probes
        os.killpg(worker.pid, signal.SIGCONT)
        wait_for(
            lambda: float(heartbeat.read_text()) > stopped_at,
            timeout_s=10,
            what="the heartbeat to move again",
        )
        wait_for(lambda: probe(port, "/healthz")[0] == 200, timeout_s=10, what="/healthz 200 again")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGCONT)
        worker.stop()


def test_registry_429s_waits_and_the_shared_rate_are_counted_per_host(
    stack: Stack, spec_registry: SpecRegistry, tmp_path: Path, explain: None
) -> None:
    # Given a registry host that answers the first request with 429 and Retry-After: 1
    spec_registry.set_tags("team/app", ["1.0.0", "1.1.0"])
    spec_registry.fail(429, retry_after="1")
    name = f"img-{stack.pool}"
    stack.apply(
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\n"
        f"metadata: {{name: {name}}}\n"
        f"spec: {{image: {spec_registry.host}/team/app, interval: 1h, insecure: true}}\n",
        tmp_path / "img.yaml",
    )

    # When it is scanned (the scan waits the second out and succeeds)
    out = stack.cli("reconcile", "imagerepository", name, "--wait")
    assert out.returncode == 0, out.stderr

    # Then the worker counted the 429 and the wait for the host, and the collector shows its rate halved
    host = spec_registry.host
    worker = scrape(stack.worker_port)
    assert value(worker, "gitops_tasks_registry_throttled_total", host=host) == 1.0
    assert (value(worker, "gitops_tasks_registry_requests_total", host=host, code="4xx") or 0) >= 1
    assert (value(worker, "gitops_tasks_registry_requests_total", host=host, code="2xx") or 0) >= 1
    assert (value(worker, "gitops_tasks_registry_limiter_wait_seconds_count", host=host) or 0) >= 2
    assert (value(worker, "gitops_tasks_registry_limiter_wait_seconds_sum", host=host) or 0) > 0
    catalog = scrape(stack.metrics_port)
    rate = value(catalog, "gitops_tasks_registry_rate_limit_rps", host=host)
    assert rate is not None and 0 < rate < 50, rate  # GITOPS_TASKS_REGISTRY_RPS 50, halved by the 429
    labels = samples(catalog, "gotk_resource_info", customresource_kind="ImageRepository", name=name)[0][0]
    assert labels["image"] == f"{host}/team/app" and labels["ready"] == "True"

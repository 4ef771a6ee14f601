"""Cluster sync at 1,000 objects: first apply, a no-change re-sync, and a re-sync with changes and prunes.

One Kustomization (``prune: true``) over a plain YAML tree in a ``file://`` git repository: one
Namespace and 250 apps of a Deployment, a Service, a ConfigMap and a ServiceAccount (1,001 objects).
Each repetition starts a fresh API-server emulator (``tests.kubeapi``) in its own process, so its CPU
is not ours and can be reported apart, and a fresh database of a private redis-server. The sync runs
in this process as a worker runs it: ``tasks.runner.run`` with ``reconcile_kustomization`` and a real
:class:`~gitops_tasks.tasks.context.Context`, so the lock, status, inventory and events go to Redis.

Phases: (a) first apply, everything created; (b) the same revision again, nothing changed; (c) a new
commit changing 10 % of the objects and removing 5 % (pruned). Per phase: wall time, CPU of this
process (all threads), CPU of its git subprocesses, of the emulator and of redis-server, peak RSS of
this process during the phase (``VmHWM`` reset through ``/proc/self/clear_refs``), the emulator's
request counts by kind, and the time spent in each step of the sync. One more, unmeasured repetition
runs each phase under py-spy (sampling this process) to say where its CPU goes. Optionally 100 Kustomizations
of 10 objects each (same ~1,000 objects), reconciled one after the other.

``python -m benchmarks.bench_sync [--apps N] [--repeats N] [--no-profile] [--no-multi] [--no-write]``
(``--save-figures F`` / ``--from-figures F`` keep the raw figures and render them again). Every
server is a child of this process on 127.0.0.1, stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks import machine
from benchmarks.report import Section, median, table
from benchmarks.stack import cpu_seconds, exit_cleanly_on_signals, gt_env, machine_cpu, settings_of
from tests.gitservers import FileRemotes, RemoteRepo
from tests.procs import REPO_ROOT, RedisServer

#: Apps in the tree (4 objects each, plus one Namespace).
DEFAULT_APPS = 250
#: Measured repetitions of the three phases (the median is reported).
DEFAULT_REPEATS = 5
#: Every Nth object is changed in phase (c) (10 %), and every Nth from an offset is removed (5 %).
CHANGE_EVERY = 10
REMOVE_EVERY, REMOVE_OFFSET = 20, 5
#: The multi-Kustomization variant: Kustomizations × objects each.
DEFAULT_MULTI = (100, 10)
#: Stop adding optional work (profile, multi) once the run has taken this long (seconds).
DEFAULT_BUDGET_S = 1200.0
#: py-spy's sampling rate (Hz) and the time it is given to attach (seconds).
PROFILE_RATE_HZ = 500
PROFILE_ATTACH_S = 1.5
#: How long the emulator process may take to start (seconds).
EMULATOR_START_S = 30.0
#: Path the emulator process answers with its request counters (never a Kubernetes path).
STATS_PATH = "/_bench/stats"
#: Where the section goes.
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SECTION = "sync"
NAMESPACE = "bench"
PHASES = ("first apply", "no-change re-sync", "10 % changed, 5 % pruned")


@dataclass(frozen=True)
class FluxRun:
    """One of Flux's published results for 1,000 Kustomizations (``fluxcd/flux-benchmark``)."""

    label: str
    kustomizations: int
    objects_each: int
    duration_s: int
    max_memory_mib: int
    cpu_limit: int
    concurrency: int
    machine: str


#: RESULTS.md for v2.6.0 and the README for the v2.2 RC: each Kustomization applies 4 objects from
#: its own OCI artifact with wait and prune on.
FLUX_RUNS = (
    FluxRun(
        label="Flux v2.6.0",
        kustomizations=1000,
        objects_each=4,
        duration_s=4 * 60 + 16,
        max_memory_mib=175,
        cpu_limit=2,
        concurrency=20,
        machine="GitHub ubuntu-latest-16-cores runner, Kind (3 nodes)",
    ),
    FluxRun(
        label="Flux v2.2 RC",
        kustomizations=1000,
        objects_each=4,
        duration_s=3 * 60 + 58,
        max_memory_mib=112,
        cpu_limit=1,
        concurrency=20,
        machine="MacBook Pro M1 Max, Docker Desktop (10 CPU), Kind v1.28 (3 nodes)",
    ),
)


# --------------------------------------------------------------------------- the YAML tree


def _app_objects(app: str, ns: str, *, changed: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """One app: file name → object. Kinds named in ``changed`` get a new value somewhere."""
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "bench"}
    tag = "1.1.0" if "Deployment" in changed else "1.0.0"
    config = {
        "LOG_LEVEL": "debug" if "ConfigMap" in changed else "info",
        "FEATURE_FLAGS": "search,checkout,recommendations",
        "UPSTREAM_URL": f"http://{app}-upstream.{ns}.svc.cluster.local:8080",
        "settings.json": json.dumps({"app": app, "workers": 4, "timeouts": {"read_s": 5, "write_s": 10}}),
    }
    service_meta: dict[str, Any] = {"name": app, "namespace": ns, "labels": labels}
    if "Service" in changed:
        service_meta["annotations"] = {"bench.example/revision": "2"}
    account_meta: dict[str, Any] = {"name": app, "namespace": ns, "labels": labels}
    if "ServiceAccount" in changed:
        account_meta["annotations"] = {"bench.example/role": f"{app}-reader"}
    container = {
        "name": "app",
        "image": f"registry.example/{app}:{tag}",
        "ports": [{"name": "http", "containerPort": 8080}],
        "envFrom": [{"configMapRef": {"name": app}}],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10},
    }
    return {
        "deployment.yaml": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": app, "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"serviceAccountName": app, "containers": [container]},
                },
            },
        },
        "service.yaml": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": service_meta,
            "spec": {
                "selector": {"app.kubernetes.io/name": app},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
        "configmap.yaml": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": app, "namespace": ns, "labels": labels},
            "data": config,
        },
        "serviceaccount.yaml": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": account_meta,
        },
    }


def _dump(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def _namespace(ns: str) -> str:
    return _dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


def single_tree(apps: int, *, changed: bool = False) -> dict[str, str | None]:
    """``path → file text`` under ``apps/``; ``changed``: phase (c)'s tree (``None`` = removed).

    Objects are numbered in file order (Namespace excluded): every ``CHANGE_EVERY``-th changes, every
    ``REMOVE_EVERY``-th from ``REMOVE_OFFSET`` is removed; the two sets never overlap.
    """
    files: dict[str, str | None] = {"apps/namespace.yaml": _namespace(NAMESPACE)}
    index = 0
    for number in range(apps):
        app = f"app-{number:03d}"
        plain = _app_objects(app, NAMESPACE)
        picked = frozenset(o["kind"] for k, o in enumerate(plain.values()) if (index + k) % CHANGE_EVERY == 0)
        objects = _app_objects(app, NAMESPACE, changed=picked) if changed else plain
        for name, obj in objects.items():
            removed = index % REMOVE_EVERY == REMOVE_OFFSET
            files[f"apps/{app}/{name}"] = None if (changed and removed) else _dump(obj)
            index += 1
    return files


def multi_tree(kustomizations: int, each: int) -> dict[str, str | None]:
    """``teams/team-NN/``: a Namespace and ``each - 1`` more objects per Kustomization."""
    files: dict[str, str | None] = {}
    for team in range(kustomizations):
        ns = f"team-{team:03d}"
        files[f"teams/{ns}/namespace.yaml"] = _namespace(ns)
        count, app = 1, 0
        while count < each:
            for name, obj in _app_objects(f"svc-{app}", ns).items():
                if count < each:
                    files[f"teams/{ns}/svc-{app}/{name}"] = _dump(obj)
                    count += 1
            app += 1
    return files


# --------------------------------------------------------------------------- the emulator process


_DISCOVERY = re.compile(r"/(api|apis|version|healthz|livez|readyz)|/api/v1|/apis/[^/]+(/[^/]+)?|/openapi/.*")


def request_kind(method: str, path: str, params: dict[str, str], content_type: str) -> str:
    """What the emulator counts a request as: discovery, GET, apply (dry run), apply, DELETE..."""
    if method == "GET" and _DISCOVERY.fullmatch(path):
        return "discovery"
    dry = " (dry run)" if params.get("dryRun") else ""
    if method == "PATCH" and content_type == "application/apply-patch+yaml":
        return "apply" + dry
    return method + dry


def serve_emulator(kubeconfig: Path) -> int:
    """The emulator process: serve until stdin closes; count requests and their handler time."""
    from tests.kubeapi import server as kube_server

    counts: Counter[str] = Counter()
    handler_s: dict[str, float] = defaultdict(float)
    lock = threading.Lock()
    inner = kube_server.route

    finished = [0.0, 0.0]  # run, run-queue seconds of connection threads that have ended
    serve_connection = kube_server._HTTPServer.process_request_thread

    def accounted(self: Any, request: Any, client_address: Any) -> None:
        try:
            serve_connection(self, request, client_address)
        finally:
            run_s, wait_s = thread_schedstat("thread-self")
            with lock:
                finished[0] += run_s
                finished[1] += wait_s

    def schedstat_now() -> dict[str, float]:
        live = [thread_schedstat(f"self/task/{tid}") for tid in os.listdir("/proc/self/task")]
        return {
            "run": finished[0] + sum(r for r, _ in live),
            "runqueue": finished[1] + sum(w for _, w in live),
        }

    def counted(store: Any, request: Any, host: str) -> Any:
        if request.path == STATS_PATH:
            with lock:
                sched = schedstat_now()
                return 200, {"count": dict(counts), "handler_s": dict(handler_s), "sched_s": sched}
        started = time.perf_counter()
        try:
            return inner(store, request, host)
        finally:
            kind = request_kind(request.method, request.path, request.params, request.content_type)
            with lock:
                counts[kind] += 1
                handler_s[kind] += time.perf_counter() - started

    # This process only: the server module looks both names up per request / connection.
    kube_server.route = counted  # type: ignore[assignment]
    kube_server._HTTPServer.process_request_thread = accounted  # type: ignore[method-assign]
    with kube_server.KubeAPIServer() as server:
        server.kubeconfig(kubeconfig)
        print("ready", flush=True)
        sys.stdin.read()
    return 0


class EmulatorProcess:
    """``python -m benchmarks.bench_sync --serve-emulator KUBECONFIG`` as a child; stopped by PID."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = directory / "kubeconfig"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_sync", "--serve-emulator", str(self.kubeconfig)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(REPO_ROOT),
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], EMULATOR_START_S)
        if not ready or self.proc.stdout.readline().strip() != b"ready":
            self.stop()
            raise RuntimeError("the emulator process did not start")
        config = yaml.safe_load(self.kubeconfig.read_text())
        self.url = str(config["clusters"][0]["cluster"]["server"])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stats(self) -> dict[str, dict[str, float]]:
        """Request counts and handler seconds by kind, and the process's scheduler times."""
        with urllib.request.urlopen(self.url + STATS_PATH, timeout=10) as response:  # noqa: S310 (loopback)
            data: dict[str, dict[str, float]] = json.loads(response.read())
            return data

    def peak_rss_mib(self) -> float:
        return _status_kib(self.pid, "VmHWM") / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


# --------------------------------------------------------------------------- memory


def _status_kib(pid: int | str, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def thread_schedstat(task: str) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of ``/proc/<task>/schedstat``."""
    try:
        run_ns, wait_ns, _ = Path(f"/proc/{task}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux ≥ 4.0); False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- one sync, timed


#: Steps of a sync, timed by wrapping the names ``gitops_tasks.sync.reconcile`` calls them by.
STEPS = (
    ("checkout", "checkout (git)"),
    ("render", "build + substitute"),
    ("target_cluster", "connect"),
    ("make_plan", "plan (with discovery)"),
    ("apply_plan", "apply (GET + dry run + apply per object)"),
    ("prune", "prune (GET + DELETE per stale object)"),
)


@contextlib.contextmanager
def step_timers() -> Iterator[dict[str, float]]:
    """Seconds spent in each step of :data:`STEPS`, summed over the syncs run inside the block."""
    from gitops_tasks.sync import reconcile as module

    spent: dict[str, float] = defaultdict(float)
    originals = {name: getattr(module, name) for name, _ in STEPS}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    for name, fn in originals.items():
        setattr(module, name, timed(name, fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


@dataclass
class Phase:
    """One phase of one repetition."""

    wall_s: float
    cpu_s: float
    git_cpu_s: float
    emulator_cpu_s: float
    redis_cpu_s: float
    peak_rss_mib: float
    start_rss_mib: float
    requests: dict[str, int]
    server_s: dict[str, float]
    steps: dict[str, float]
    reconcile_s: float
    inventory: int
    #: Of ``cpu_s``: kernel time (system calls: socket sends and reads, files, process spawns).
    sys_cpu_s: float = 0.0
    #: Seconds the syncing thread, and the emulator's threads, were runnable but waiting for a CPU.
    runqueue_s: float = 0.0
    emulator_runqueue_s: float = 0.0
    #: CPU seconds of the whole machine (all cores) during the phase, and the 1-minute load at its start.
    machine_cpu_s: float = 0.0
    load_1m: float = 0.0
    results: list[str] = field(default_factory=list)

    @property
    def others_cpu_s(self) -> float:
        """CPU of everything else on the machine (other people's work, the kernel's threads)."""
        ours = self.cpu_s + self.git_cpu_s + self.emulator_cpu_s + self.redis_cpu_s
        return max(self.machine_cpu_s - ours, 0.0)

    @property
    def uncontended_s(self) -> float:
        """Wall time minus the run-queue waits of the two processes that take turns (the syncing
        thread and the emulator): about what an idle machine would take, requests being serial."""
        return max(self.wall_s - self.runqueue_s - self.emulator_runqueue_s, 0.0)


class World:
    """One repetition: an emulator process, a Redis database, the catalog, and the syncs."""

    def __init__(self, base: Path, redis: RedisServer, db: int, remote: RemoteRepo, cache: Path) -> None:
        from gitops_tasks.tasks.context import Context

        self.redis = redis
        self.emulator = EmulatorProcess(base / "kube")
        env = gt_env(redis.url(db), base, GITOPS_TASKS_KUBECONFIG=str(self.emulator.kubeconfig))
        env["GITOPS_TASKS_CACHE_DIR"] = str(cache)  # a warm git mirror, as in a long-running worker
        self.ctx = Context(settings_of(env))
        self.ctx.client.flushdb()
        self.remote = remote

    def declare(self, paths: list[tuple[str, str]]) -> list[Any]:
        """A GitRepository and one Kustomization per ``(name, path)``; returns their refs."""
        from beat_schedule import entry_for
        from gitops_tasks.objects import load_text
        from gitops_tasks.objects.model import ObjectRef

        docs: list[dict[str, Any]] = [
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "bench"},
                "spec": {"url": self.remote.url, "interval": "1h", "ref": {"branch": "main"}},
            }
        ]
        for name, path in paths:
            spec = {"interval": "1h", "prune": True, "path": path, "timeout": "10m"}
            spec["sourceRef"] = {"kind": "GitRepository", "name": "bench"}
            docs.append(
                {
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                    "kind": "Kustomization",
                    "metadata": {"name": name},
                    "spec": spec,
                }
            )
        text = "---\n".join(_dump(d) for d in docs)
        self.ctx.catalog.apply(load_text(text, filename="bench.yaml"), entry_for=entry_for)
        return [ObjectRef("Kustomization", "default", name) for name, _ in paths]

    def poll(self) -> None:
        from gitops_tasks.objects.model import ObjectRef
        from gitops_tasks.tasks import runner
        from gitops_tasks.tasks.git import reconcile_git_repository

        ref = ObjectRef("GitRepository", "default", "bench")
        out = runner.run(
            ref, reason="manual", ctx=self.ctx, reconciler=reconcile_git_repository, enqueue_dependent=_never
        )
        if out["result"] != "success":
            raise RuntimeError(f"poll failed: {out}")

    def sync(self, ref: Any, spent: dict[str, float]) -> dict[str, Any]:
        from gitops_tasks.tasks import runner
        from gitops_tasks.tasks.sync import reconcile_kustomization

        def reconciler(obj: Any, previous: dict[str, Any], ctx: Any) -> Any:
            started = time.perf_counter()
            try:
                return reconcile_kustomization(obj, previous, ctx)
            finally:
                spent["reconcile"] += time.perf_counter() - started

        return runner.run(ref, reason="manual", ctx=self.ctx, reconciler=reconciler, enqueue_dependent=_never)

    def inventory(self, refs: list[Any]) -> int:
        return sum(len((self.ctx.status.get(r).get("inventory") or {}).get("entries") or []) for r in refs)

    def close(self) -> None:
        self.emulator.stop()
        self.ctx.client.close()


def _never(_: Any) -> bool:
    return False


def run_phase(world: World, refs: list[Any], *, profile: Path | None = None) -> Phase:
    """Sync every ref once (in order) and measure it; raises when a sync did not succeed."""
    emulator, redis_pid = world.emulator, world.redis.proc.pid
    me = f"self/task/{threading.get_native_id()}"
    load = os.getloadavg()[0]
    stats0 = emulator.stats()
    emu0, redis0 = cpu_seconds(emulator.pid), cpu_seconds(redis_pid)
    children0, self0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    reset_peak_rss()
    start_rss = _status_kib("self", "VmRSS") / 1024
    results: list[dict[str, Any]] = []
    with step_timers() as spent:
        machine0, sched0 = machine_cpu()[0], thread_schedstat(me)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with sampled(profile) if profile is not None else contextlib.nullcontext():
            for ref in refs:
                results.append(world.sync(ref, spent))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        machine1, sched1 = machine_cpu()[0], thread_schedstat(me)
    peak = _status_kib("self", "VmHWM") / 1024
    children, self1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    emu_cpu, redis_cpu = cpu_seconds(emulator.pid) - emu0, cpu_seconds(redis_pid) - redis0
    stats = emulator.stats()
    failed = [r for r in results if r["result"] != "success"]
    if failed:
        raise RuntimeError(f"{len(failed)} syncs failed, first: {failed[0]}")
    count0, server0 = Counter(stats0["count"]), Counter(stats0["handler_s"])
    return Phase(
        wall_s=wall,
        cpu_s=cpu,
        git_cpu_s=(children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime),
        emulator_cpu_s=emu_cpu,
        redis_cpu_s=redis_cpu,
        peak_rss_mib=peak,
        start_rss_mib=start_rss,
        requests={k: int(v - count0[k]) for k, v in stats["count"].items() if v - count0[k] > 0},
        server_s={k: v - server0[k] for k, v in stats["handler_s"].items() if v - server0[k] > 0},
        steps={name: spent[name] for name, _ in STEPS},
        reconcile_s=spent["reconcile"],
        inventory=world.inventory(refs),
        sys_cpu_s=self1.ru_stime - self0.ru_stime,
        runqueue_s=sched1[1] - sched0[1],
        emulator_runqueue_s=stats["sched_s"]["runqueue"] - stats0["sched_s"]["runqueue"],
        machine_cpu_s=machine1 - machine0,
        load_1m=load,
        results=[str(r.get("message", ""))[:300] for r in results[:3]],
    )


# --------------------------------------------------------------------------- profile buckets


#: The kubernetes client calls its token refresh hook before every request; the hook sets
#: ``configuration.host``, whose setter reads the proxies from ``os.environ`` each time.
_PROXY_BUCKET = "kubernetes client: token refresh hook re-reading proxies from os.environ"
#: ``kubernetes.dynamic.exceptions.api_exception`` formats the traceback of every API error (a
#: GET's 404 for an object not created yet), which reads and parses source lines.
_TRACEBACK_BUCKET = "kubernetes dynamic client: formatting a traceback for every API error (404)"


def _bucket_of_file(filename: str) -> str:
    table_ = (
        ("/urllib3/", "HTTP client (urllib3, http.client, sockets)"),
        ("http/client.py", "HTTP client (urllib3, http.client, sockets)"),
        ("/email/", "HTTP client (urllib3, http.client, sockets)"),
        ("socket.py", "HTTP client (urllib3, http.client, sockets)"),
        ("/kubernetes/client/", "kubernetes client: request building, response (de)serialisation"),
        ("/kubernetes/dynamic/", "kubernetes dynamic client: discovery, ResourceInstance wrapping"),
        ("/json/", "JSON encode/decode"),
        ("/yaml/", "YAML (build: parsing the tree)"),
        ("copy.py", "copy.deepcopy (plan, drift comparison)"),
        ("/gitops_tasks/sync/", "gitops_tasks.sync (own code)"),
        ("/redis/", "Redis client"),
        ("subprocess.py", "git subprocesses (spawn, pipes)"),
        ("selectors.py", "git subprocesses (spawn, pipes)"),
        ("/gitops_tasks/", "gitops_tasks tasks/store/sources (own code)"),
        ("tempfile.py", "temporary directories (checkout, discovery cache)"),
        ("shutil.py", "temporary directories (checkout, discovery cache)"),
        ("/logging/", "logging"),
        ("/kubernetes/config/", _PROXY_BUCKET),
        ("urllib/request.py", _PROXY_BUCKET),
        ("<frozen os>", _PROXY_BUCKET),
        ("_collections_abc", _PROXY_BUCKET),
        ("/traceback.py", _TRACEBACK_BUCKET),
        ("/linecache.py", _TRACEBACK_BUCKET),
        ("/ast.py", _TRACEBACK_BUCKET),
        ("pathlib.py", "reading the tree's files (pathlib, os.path)"),
        ("posixpath", "reading the tree's files (pathlib, os.path)"),
    )
    return next((bucket for key, bucket in table_ if key in filename), "other")


def py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.is_file() else shutil.which("py-spy")


@contextlib.contextmanager
def sampled(out: Path) -> Iterator[None]:
    """Sample this process with py-spy while the block runs (raw collapsed stacks into ``out``).

    ``--gil`` keeps only samples of the thread holding the GIL: Python-level work. A thread in a
    system call (a socket send or read, file I/O, waiting for git) has released the GIL, and on a
    busy machine a sampler cannot tell a thread waiting for a CPU there from one using it; that
    time is the process's system CPU instead. ``--nonblocking`` never pauses the process.
    """
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy, or pass --no-profile)")
    argv = [exe, "record", "--gil", "--nonblocking", "-r", str(PROFILE_RATE_HZ), "-f", "raw", "-o", str(out)]
    proc = subprocess.Popen(
        [*argv, "-p", str(os.getpid())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(PROFILE_ATTACH_S)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def profile_buckets(samples: Path) -> tuple[float, dict[str, float]]:
    """(samples, bucket → samples): each sample counts for the innermost Python frame's module,
    so time in a C function (a socket send, a JSON scan) counts for the module calling it."""
    out: dict[str, float] = defaultdict(float)
    for line in samples.read_text().splitlines() if samples.is_file() else []:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        filename = leaf[leaf.rfind("(") + 1 :].rsplit(":", 1)[0]
        out[_bucket_of_file("/" + filename)] += int(count)
    return sum(out.values()), dict(out)


# --------------------------------------------------------------------------- the runs


def _commit(remote: RemoteRepo, files: dict[str, str | None], message: str) -> None:
    """Commit a tree of exactly ``files`` (``None`` values left out): nothing else stays."""
    for entry in remote.work.iterdir():
        if entry.is_dir() and entry.name != ".git":
            shutil.rmtree(entry)
        elif entry.is_file():
            entry.unlink()
    remote.commit({p: t for p, t in files.items() if t is not None}, message)


def measure(
    *,
    apps: int = DEFAULT_APPS,
    repeats: int = DEFAULT_REPEATS,
    profile: bool = True,
    multi: tuple[int, int] | None = DEFAULT_MULTI,
    budget_s: float = DEFAULT_BUDGET_S,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run everything; returns the figures :func:`render` formats."""
    # Import the kubernetes client and the sync before timing, as a running worker has them.
    import gitops_tasks.sync.reconcile
    import gitops_tasks.tasks.sync  # noqa: F401

    if profile and py_spy() is None:
        log("py-spy is not installed (pip install py-spy): skipping the profile")
        profile = False
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="gitops-tasks-bench-sync-"))
    base_tree, changed_tree = single_tree(apps), single_tree(apps, changed=True)
    figures: dict[str, Any] = {
        "apps": apps,
        "objects": sum(1 for t in base_tree.values() if t is not None),
        "objects_after": sum(1 for t in changed_tree.values() if t is not None),
        "changed": sum(1 for p, t in changed_tree.items() if t is not None and t != base_tree[p]),
        "removed": sum(1 for t in changed_tree.values() if t is None),
        "repeats": [],
        "profile": {},
        "multi": None,
        "peak_rss_resettable": reset_peak_rss(),
    }
    redis = RedisServer(base / "redis")
    worlds: list[World] = []
    try:
        remote = FileRemotes(base / "remotes").new_repo("bench")
        cache = base / "cache"
        for rep in range(repeats + (1 if profile else 0)):
            profiling = rep == repeats
            if profiling and time.monotonic() - started > budget_s:
                log("time budget spent: skipping the profile")
                break
            _commit(remote, base_tree, f"base {rep}")
            world = World(base / f"rep-{rep}", redis, rep + 1, remote, cache)
            worlds.append(world)
            refs = world.declare([("apps", "./apps")])
            world.poll()
            phases: list[Phase] = []
            for index, name in enumerate(PHASES):
                if index == 2:
                    _commit(remote, changed_tree, f"change {rep}")
                    world.poll()
                samples = base / f"py-spy-{index}.txt" if profiling else None
                phase = run_phase(world, refs, profile=samples)
                phases.append(phase)
                if samples is not None:
                    figures["profile"][name] = profile_buckets(samples)
                what = "profile" if profiling else f"rep {rep + 1}/{repeats}"
                log(
                    f"{what} {name}: wall {phase.wall_s:.2f}s cpu {phase.cpu_s:.2f}s "
                    f"emulator {phase.emulator_cpu_s:.2f}s peak {phase.peak_rss_mib:.0f} MiB "
                    f"inventory {phase.inventory} requests {phase.requests}"
                )
            if not profiling:
                figures["repeats"].append(phases)
                figures.setdefault("emulator_peak_rss_mib", []).append(world.emulator.peak_rss_mib())
            world.close()
        if multi and time.monotonic() - started <= budget_s:
            figures["multi"] = _measure_multi(base, redis, remote, cache, multi, log)
        elif multi:
            log("time budget spent: skipping the multi-Kustomization variant")
    finally:
        for world in worlds:
            world.close()
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)
    return figures


def _measure_multi(
    base: Path,
    redis: RedisServer,
    remote: RemoteRepo,
    cache: Path,
    shape: tuple[int, int],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """N Kustomizations of M objects, synced one after the other: first apply, then a re-sync."""
    count, each = shape
    _commit(remote, multi_tree(count, each), "multi")
    world = World(base / "multi", redis, 200, remote, cache)
    try:
        refs = world.declare([(f"team-{i:03d}", f"./teams/team-{i:03d}") for i in range(count)])
        world.poll()
        phases = []
        for name in PHASES[:2]:
            phase = run_phase(world, refs)
            phases.append(phase)
            log(f"multi {name}: wall {phase.wall_s:.2f}s cpu {phase.cpu_s:.2f}s requests {phase.requests}")
        return {"kustomizations": count, "each": each, "phases": phases}
    finally:
        world.close()


# --------------------------------------------------------------------------- the report


def _med(phases: list[Phase], fn: Callable[[Phase], float]) -> float:
    return median([fn(p) for p in phases])


def _cell(phases: list[Phase], fn: Callable[[Phase], float], digits: int = 2) -> str:
    """``median (min–max)``."""
    values = [fn(p) for p in phases]
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``sync`` section of BENCHMARKS.md."""
    reps: list[list[Phase]] = figures["repeats"]
    by_phase = [[rep[i] for rep in reps] for i in range(len(PHASES))]
    facts = machine.facts()
    objects = figures["objects"]
    md = [
        "## Cluster sync: one Kustomization of 1,000 objects against the API-server emulator",
        "",
        f"Run {figures['measured_at'].strftime('%Y-%m-%d %H:%M UTC')} with `{command}`, code at "
        f"commit {figures['code']}, on {facts['CPU']} ({facts['Cores']} cores, {facts['RAM']}), "
        f"Python {facts['Python']}, {facts['OS']}.",
        "",
        "**What is measured.** One Kustomization (`prune: true`, no `wait`) over a plain YAML tree "
        f"in a `file://` git repository: one Namespace and {figures['apps']} apps of a Deployment, "
        f"a Service, a ConfigMap and a ServiceAccount ({objects:,} objects, one file each). The "
        "sync runs in the benchmark process as a worker runs it: `tasks.runner.run` with "
        "`reconcile_kustomization` and a real `Context` (run lock, status, inventory and events in "
        "a private redis-server), against `tests.kubeapi`'s emulator in its own process on "
        "127.0.0.1. Timed from the start of the task body to its status written: (a) first apply, "
        "every object created; (b) the same revision again, nothing to change; (c) a new commit "
        f"changing {figures['changed']} objects (10 %) and removing {figures['removed']} (5 %, "
        "pruned). A fresh emulator and Redis database per repetition; the git mirror is warm and "
        f"modules imported, as in a running worker. {len(reps)} repetitions: median (min–max). "
        "CPU from `/proc`: this process (all threads), its git subprocesses, the emulator process, "
        "redis-server. Peak RSS is this process's `VmHWM`, reset at the start of each phase "
        "through `/proc/self/clear_refs`, so it is the phase's own peak; the start RSS is the "
        "interpreter with the kubernetes client and Celery loaded.",
        "",
    ]
    rows = []
    for name, phases in zip(PHASES, by_phase, strict=True):
        in_git = figures["objects_after"] if "changed" in name else objects
        rows.append(
            [
                name,
                f"**{_cell(phases, lambda p: p.wall_s)}**",
                f"{in_git / _med(phases, lambda p: p.wall_s):.0f}",
                _cell(phases, lambda p: p.cpu_s),
                f"{_med(phases, lambda p: p.sys_cpu_s):.2f}",
                f"{_med(phases, lambda p: p.git_cpu_s):.2f}",
                _cell(phases, lambda p: p.emulator_cpu_s),
                f"{_med(phases, lambda p: p.redis_cpu_s):.2f}",
                f"{_med(phases, lambda p: p.start_rss_mib):.0f} → "
                f"{_med(phases, lambda p: p.peak_rss_mib):.0f}",
                f"{_med(phases, lambda p: p.inventory):.0f}",
            ]
        )
    md += [
        table(
            [
                "phase",
                "wall s",
                "objects/s",
                "our CPU s",
                "of which system s",
                "git CPU s",
                "emulator CPU s",
                "redis CPU s",
                "our RSS MiB (start → peak)",
                "inventory",
            ],
            rows,
        ),
        "The emulator process peaked at "
        f"{median(figures.get('emulator_peak_rss_mib') or [0]):.0f} MiB RSS over a repetition."
        + (
            ""
            if figures.get("peak_rss_resettable", True)
            else " (`/proc/self/clear_refs` was not writable: each peak is the process's peak so far.)"
        ),
        "",
        "**How disturbed the machine was.** Other work shares these 2 cores (other benchmarks and "
        "test suites). Run-queue waits come from `/proc/.../schedstat`: time the syncing thread, or "
        "an emulator thread, was ready to run but had no CPU. The sync sends one request at a time, "
        "so the two take turns and their waits add up; wall time minus both is about what an idle "
        "machine would take. 'Other work' is the whole machine's CPU (`/proc/stat`) minus this "
        "process, git, the emulator and redis-server.",
        "",
    ]
    rows = [
        [
            name,
            f"{_med(phases, lambda p: p.wall_s):.2f}",
            _cell(phases, lambda p: p.runqueue_s),
            _cell(phases, lambda p: p.emulator_runqueue_s),
            f"**{_cell(phases, lambda p: p.uncontended_s)}**",
            _cell(phases, lambda p: p.others_cpu_s),
            _cell(phases, lambda p: p.load_1m, 1),
        ]
        for name, phases in zip(PHASES, by_phase, strict=True)
    ]
    md += [
        table(
            [
                "phase",
                "wall s",
                "sync thread run-queue wait s",
                "emulator run-queue wait s",
                "wall without the waits s",
                "other work's CPU s",
                "load (1 min)",
            ],
            rows,
        ),
        "**API requests per phase** (counted by the emulator, identical in every repetition) with "
        "the emulator's handler time per request (routing, store, merge; not HTTP parsing):",
        "",
    ]
    kinds = sorted(
        {k for p in reps[0] for k in p.requests}, key=lambda k: (-reps[0][0].requests.get(k, 0), k)
    )
    rows = []
    for name, phases in zip(PHASES, by_phase, strict=True):
        p = phases[0]
        cells = [
            f"{p.requests.get(k, 0)} ({1000 * p.server_s.get(k, 0) / max(p.requests.get(k, 1), 1):.2f} ms)"
            for k in kinds
        ]
        total = sum(p.requests.values())
        rows.append([name, str(total), f"{total / objects:.1f}", *cells])
    md += [
        table(["phase", "requests", "per object", *kinds], rows),
        "**Where the wall time goes, by step** (median seconds; the steps of "
        "`gitops_tasks.sync.reconcile`; 'runner' is the task around them: lock, status and events "
        "in Redis):",
        "",
    ]
    rows = []
    for name, phases in zip(PHASES, by_phase, strict=True):
        cells = [f"{median([p.steps[s] for p in phases]):.2f}" for s, _ in STEPS]
        rest = _med(phases, lambda p: p.reconcile_s - sum(p.steps.values()))
        runner_s = _med(phases, lambda p: p.wall_s - p.reconcile_s)
        rows.append([name, *cells, f"{rest:.2f}", f"{runner_s:.2f}"])
    md.append(table(["phase", *[label for _, label in STEPS], "other (temp dirs...)", "runner"], rows))
    md += _render_per_request(figures, by_phase)
    md += _render_profile(figures)
    md += _render_multi(figures)
    md += _flux_comparison(figures, by_phase)
    return Section(SECTION, "\n".join(md))


def _render_per_request(figures: dict[str, Any], by_phase: list[list[Phase]]) -> list[str]:
    """CPU per request on both sides, for the no-change re-sync (two requests per object)."""
    phases = by_phase[1]
    requests = sum(phases[0].requests.values())
    ours = _med(phases, lambda p: p.cpu_s) / requests * 1000
    emulator = _med(phases, lambda p: p.emulator_cpu_s) / requests * 1000
    build = _med(phases, lambda p: p.steps["render"])
    wall = _med(phases, lambda p: p.wall_s)
    checkout = _med(phases, lambda p: p.steps["checkout"])
    applying = _med(phases, lambda p: p.steps["apply_plan"])
    return [
        f"**In short** (no-change re-sync, medians): of {wall:.2f} s, the git checkout of the "
        f"whole tree takes {checkout:.2f} s ({100 * checkout / wall:.0f} %, git's CPU "
        f"{_med(phases, lambda p: p.git_cpu_s):.2f} s), building it {build:.2f} s, and the apply "
        f"step {applying:.2f} s ({100 * applying / wall:.0f} %): a GET and a server-side dry run "
        "per object, one after the other, and nothing written since nothing differs. The first "
        "apply adds the real apply of every object (3 requests per object); the third phase "
        "applies the 10 % that changed and spends its prune step on a GET and a DELETE per "
        "removed object.",
        "",
        f"**Per request** (no-change re-sync: {requests} requests, {requests / figures['objects']:.1f} "
        f"per object): this process spends {ours:.2f} ms of CPU per request (building it, the "
        f"kubernetes client, urllib3, decoding, comparing; the {build:.2f} s of building the tree "
        f"included), the emulator {emulator:.2f} ms. The requests go one at a time, so an "
        "uncontended sync takes about the sum of the two for every request; a real API server "
        "with a few milliseconds of round trip would make that time grow with the number of "
        "requests, not with the CPU.",
        "",
    ]


def _render_profile(figures: dict[str, Any]) -> list[str]:
    profile: dict[str, tuple[float, dict[str, float]]] = figures["profile"]
    if not profile:
        return []
    buckets = sorted(
        {b for _, by in profile.values() for b in by},
        key=lambda b: (-round(sum(by.get(b, 0) / total for total, by in profile.values() if total), 6), b),
    )
    rows = [["samples", *[f"{profile[n][0]:.0f}" if n in profile else "—" for n in PHASES]]]
    for bucket in buckets:
        cells = []
        for name in PHASES:
            total, by = profile.get(name, (0.0, {}))
            cells.append(f"{100 * by.get(bucket, 0) / total:.0f} %" if total else "—")
        rows.append([bucket, *cells])
    return [
        f"**Where this process's Python time goes** (one more repetition, sampled by py-spy at "
        f"{PROFILE_RATE_HZ} Hz with `--gil`, without pausing the process: only the thread holding "
        "the GIL is sampled, so time in system calls (socket sends and reads, file I/O: the "
        "'of which system' CPU above) and waiting for the API server, git or Redis are left out; "
        "each sample counts for the module of its innermost Python frame, so a C function such "
        "as a JSON scan counts for its caller):",
        "",
        table(["", *PHASES], rows),
    ]


def _render_multi(figures: dict[str, Any]) -> list[str]:
    multi = figures.get("multi")
    if not multi:
        return []
    n = multi["kustomizations"]
    rows = [
        [
            name,
            f"{p.wall_s:.2f}",
            f"{p.uncontended_s:.2f}",
            f"{1000 * p.wall_s / n:.0f}",
            f"{p.cpu_s:.2f}",
            f"{p.git_cpu_s:.2f}",
            f"{p.emulator_cpu_s:.2f}",
            f"{p.steps['checkout']:.2f}",
            f"{p.requests.get('discovery', 0)}",
            f"{sum(p.requests.values())}",
            f"{p.peak_rss_mib:.0f}",
        ]
        for name, p in zip(PHASES, multi["phases"], strict=False)
    ]
    first = multi["phases"][0]
    return [
        f"**{n} Kustomizations × {multi['each']} objects** (each a Namespace with Deployments, "
        "Services, ConfigMaps and a ServiceAccount, all from the same repository; reconciled one "
        "after the other by one thread; one run, and git's time is not corrected for other work on "
        "the machine, which inflates it most). Every sync checks out the whole repository "
        f"({n * multi['each']:,} files) to read the {multi['each']} under its path: "
        f"{first.steps['checkout'] / n:.2f} s per Kustomization here (git's own CPU "
        f"{first.git_cpu_s / n:.2f} s each), {100 * first.steps['checkout'] / first.wall_s:.0f} % "
        "of the wall time; each also re-reads discovery "
        f"({first.requests.get('discovery', 0) // n} requests) into a fresh cache.",
        "",
        table(
            [
                "phase",
                "wall s",
                "without run-queue waits s",
                "ms per Kustomization",
                "our CPU s",
                "git CPU s",
                "emulator CPU s",
                "checkout s",
                "discovery requests",
                "requests",
                "peak RSS MiB",
            ],
            rows,
        ),
    ]


def _flux_comparison(figures: dict[str, Any], by_phase: list[list[Phase]]) -> list[str]:
    objects = figures["objects"]
    first = by_phase[0]
    rows = [
        [
            f"gitops-tasks: 1 Kustomization × {objects:,} objects, first apply",
            f"{_med(first, lambda p: p.wall_s):.1f} ({_med(first, lambda p: p.uncontended_s):.1f})",
            f"{objects / _med(first, lambda p: p.wall_s):.0f}",
            f"{_med(first, lambda p: p.peak_rss_mib):.0f} (process RSS)",
            "1 thread in 1 process; the emulator in another; 2 shared cores",
        ]
    ]
    multi = figures.get("multi")
    if multi:
        p = multi["phases"][0]
        n = multi["kustomizations"] * multi["each"]
        rows.append(
            [
                f"gitops-tasks: {multi['kustomizations']} Kustomizations × {multi['each']} objects, "
                "first apply",
                f"{p.wall_s:.1f} ({p.uncontended_s:.1f})",
                f"{n / p.wall_s:.0f}",
                f"{p.peak_rss_mib:.0f} (process RSS)",
                "the same",
            ]
        )
    for run in FLUX_RUNS:
        n = run.kustomizations * run.objects_each
        rows.append(
            [
                f"{run.label}: {run.kustomizations:,} Kustomizations × {run.objects_each} objects",
                f"{run.duration_s}",
                f"{n / run.duration_s:.0f}",
                f"{run.max_memory_mib} (controller maximum)",
                f"kustomize-controller limited to {run.cpu_limit} CPU, {run.concurrency} "
                f"reconciles at a time; {run.machine}",
            ]
        )
    return [
        "**Against Flux's published figure.** Flux's own benchmark (repository "
        "`fluxcd/flux-benchmark`: RESULTS.md for v2.6.0, the README for the v2.2 release "
        "candidate) gives the time for 1,000 Kustomizations to be reconciled after 1,000 app "
        "packages are pushed at once. Each Kustomization has its own OCI artifact and applies 4 "
        "objects (a Deployment scaled to zero, a ServiceAccount, a Service, an Ingress) with "
        "`wait`, `prune`, post-build substitution and impersonation, into a Kind cluster: a real "
        "kube-apiserver with etcd, and controllers acting on what is applied.",
        "",
        table(["run", "wall s (without run-queue waits)", "objects/s", "memory MiB", "resources"], rows),
        "Not the same measurement: theirs is 1,000 small Kustomizations reconciled 20 at a time by "
        "one controller against a real API server, and each is waited for until healthy; ours is "
        "one Kustomization of 1,000 objects (or 100 of 10) reconciled by one thread, one request "
        "at a time, against an in-memory emulator sharing 2 cores with it, without `wait`, "
        "impersonation or one artifact fetch per Kustomization. Their duration may also include "
        "time waiting for source-controller; ours starts with the task. Their memory is the "
        "controller container's maximum, ours this process's peak RSS. Read the objects/s "
        "columns as orders of magnitude, not as a ranking.",
        "",
        "**Caveats.** The emulator does no admission, etcd writes or authorisation, and its "
        "handler takes under half a millisecond for a GET or an apply; a real API server takes "
        "longer per request, and this sync's time grows with the round trip because its requests "
        "are serial. The numbers above also move with the other work on the machine (see the "
        "run-queue table).",
        "",
    ]


# --------------------------------------------------------------------------- BENCHMARKS.md


def publish(section: Section, *, no_write: bool) -> int:
    """A benchmark's ``main`` ending: print the section (``--no-write``) or write it into
    BENCHMARKS.md; the exit status."""
    if no_write:
        print(section.markdown)
    else:
        write_section(section)
        print(f"wrote section {section.name} of {BENCHMARKS_MD}")
    return 0


def write_section(section: Section) -> None:
    """Replace the section's body between its markers, or append the section at the end; the
    rest of the file is left byte for byte as it is (other benchmarks write other sections)."""
    begin, end = f"<!-- section:{section.name}:begin -->", f"<!-- section:{section.name}:end -->"
    body = section.markdown if section.markdown.endswith("\n") else section.markdown + "\n"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.is_file() else "# Benchmarks\n"
    start, stop = text.find(begin), text.find(end)
    if start >= 0 and stop > start:
        text = text[: start + len(begin)] + "\n" + body + text[stop:]
    else:
        text = text.rstrip("\n") + f"\n\n{begin}\n{body}{end}\n"
    BENCHMARKS_MD.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Cluster sync benchmark; writes its section of BENCHMARKS.md."
    )
    parser.add_argument("--apps", type=int, default=DEFAULT_APPS, help="apps of 4 objects (default 250)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy repetition")
    parser.add_argument("--no-multi", action="store_true", help="skip 100 Kustomizations × 10 objects")
    parser.add_argument(
        "--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone"
    )
    parser.add_argument("--serve-emulator", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_emulator:
        return serve_emulator(args.serve_emulator)
    exit_cleanly_on_signals()
    command = "python -m " + " ".join(["benchmarks.bench_sync", *(sys.argv[1:] if argv is None else argv)])
    figures = measure(
        apps=args.apps,
        repeats=args.repeats,
        profile=not args.no_profile,
        multi=None if args.no_multi else DEFAULT_MULTI,
    )
    figures.update(command=command, measured_at=datetime.now(UTC), code=machine.code_version())
    return publish(render(figures, command=command), no_write=args.no_write)


if __name__ == "__main__":
    # Run the imported module's main, so its classes are benchmarks.bench_sync's, not __main__'s.
    from benchmarks.bench_sync import main as _main

    raise SystemExit(_main())

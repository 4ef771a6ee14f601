"""Image update automation: how long a new tag takes to become a commit, and what one run costs.

``python -m benchmarks.bench_automation`` measures, then rewrites its own section of
``BENCHMARKS.md`` (between the ``section:automation`` markers, appended when missing):

(a) **Latency**, with real processes: docker-registry, ``git daemon`` (receive-pack on), a private
    redis-server, one worker and beat started as ``python -m gitops_tasks.cli``. An ImageRepository
    scanned every 10 s, a semver ImagePolicy and an ImageUpdateAutomation over a small repository.
    Each update waits a while (evenly spaced over one scan interval, in random order, so pushes
    fall at every phase of the scan schedule), pushes tag ``1.0.N`` and stops the clock when the
    bare repository's ``main`` moves. The expected mean is about half the scan interval plus the
    processing time. Event times split each update into its steps.
(b) **Cost of one run** over 2,000 YAML files holding 50 markers (50 ImagePolicies), in this process
    with a real :class:`~gitops_tasks.tasks.context.Context` on a private redis-server, pushing to
    ``git daemon``: a run that rewrites all 50 markers and runs with nothing to change, through
    the task layer (what a worker runs) and through the concern alone; the same with the temp
    checkouts on tmpfs; the setters pass alone; and one traced run timing each git command.

``measure()`` and ``render()`` follow the other ``bench_*`` modules, so ``benchmarks/run.py`` can
drive this one too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import machine
from benchmarks.report import Section, median, percentile, table
from benchmarks.stack import (
    child_pids,
    children_cpu_seconds,
    cpu_seconds,
    exit_cleanly_on_signals,
    gt_env,
    machine_cpu,
    settings_of,
    start_worker,
)
from tests.gitservers import GitDaemon, RemoteRepo, git
from tests.procs import REPO_ROOT, Proc, RedisServer, cli_argv, wait_for
from tests.registryservers import DockerRegistry, docker_registry_available

#: Where the figures go.
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
#: This benchmark's section name in BENCHMARKS.md.
SECTION = "automation"
#: Sequential updates measured in (a) (after one warm-up update).
DEFAULT_UPDATES = 20
#: ImageRepository scan interval in (a), seconds.
DEFAULT_SCAN_INTERVAL_S = 10.0
#: Threads of the one worker process in (a).
DEFAULT_WORKER_CONCURRENCY = 4
#: Seed of the order of the waits before each push in (a).
DEFAULT_SEED = 7
#: YAML files in the repository of (b).
DEFAULT_FILES = 2000
#: Marked values (one per file, one ImagePolicy each) among them.
DEFAULT_MARKERS = 50
#: Measured repetitions of each run in (b); the median is reported.
DEFAULT_REPEATS = 5
#: Longest wait for one update's commit in (a), in scan intervals (plus a fixed 30 s).
DEFAULT_COMMIT_TIMEOUT_INTERVALS = 3
#: How often (a) looks at the bare repository's ``main``, seconds.
DEFAULT_WATCH_S = 0.02
#: Pause after each run of (b) so ``git daemon`` has reaped its children before its CPU is read.
DEFAULT_REAP_PAUSE_S = 0.3

IMAGE_PATH = "bench/web"
AUTHOR = {"name": "Bench Bot", "email": "bench-bot@example.test"}


# --------------------------------------------------------------------------- (a) latency


@dataclass
class Update:
    """One tag pushed in (a). Times are ``time.time()`` (the events' clock)."""

    tag: str
    wait_s: float
    pushed: float
    committed: float
    commit: str
    #: Event times after the push: ImagePolicy (latest image changed; emitted by the scan that saw
    #: the tag) and GitRepository (new artifact: the poll queued by the automation's push).
    selected: float | None = None
    polled: float | None = None

    @property
    def latency_s(self) -> float:
        return self.committed - self.pushed


def _read_tip(bare: Path) -> str:
    """``refs/heads/main`` of a bare repository without starting git (loose ref, else packed)."""
    loose = bare / "refs" / "heads" / "main"
    with contextlib.suppress(OSError):
        return loose.read_text().strip()
    return git("rev-parse", "refs/heads/main", cwd=bare)


def _latency_objects(image: str, url: str, interval_s: float) -> str:
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: fleet, namespace: default}}
spec: {{url: '{url}', interval: 10m, ref: {{branch: main}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {{name: web, namespace: default}}
spec: {{image: '{image}', interval: {interval_s:g}s, timeout: 20s, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {{name: web, namespace: default}}
spec: {{imageRepositoryRef: {{name: web}}, policy: {{semver: {{range: '>=1.0.0'}}}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageUpdateAutomation
metadata: {{name: web, namespace: default}}
spec:
  interval: 10m
  sourceRef: {{kind: GitRepository, name: fleet}}
  git:
    checkout: {{ref: {{branch: main}}}}
    commit: {{author: {{name: {AUTHOR["name"]}, email: {AUTHOR["email"]}}}}}
  update: {{path: ./apps, strategy: Setters}}
"""


def _status(ctx: Any, kind: str, name: str) -> dict[str, Any]:
    from gitops_tasks.objects.model import ObjectRef

    return ctx.status.get(ObjectRef(kind, "default", name))


def measure_latency(
    base: Path, redis_url: str, *, updates: int, interval_s: float, concurrency: int, seed: int
) -> dict[str, Any]:
    """Run (a); returns the updates and the CPU the stack used while they ran."""
    from gitops_tasks.tasks.context import Context

    # Evenly spaced waits in a random order: the pushes cover every phase of the scan schedule
    # once, so the mean is not skewed by an unlucky draw.
    waits = [(k + 0.5) / updates * interval_s for k in range(updates)]
    random.Random(seed).shuffle(waits)
    env = gt_env(redis_url, base / "gt")
    logs = base / "logs"
    logs.mkdir(parents=True)
    with DockerRegistry(base / "registry") as registry, GitDaemon(base / "git" / "repos") as daemon:
        image = f"{registry.host}/{IMAGE_PATH}"
        marked = f'image: {image}:1.0.0 # {{"$imagepolicy": "default:web"}}\n'
        fleet = daemon.new_repo("fleet", {"apps/web.yaml": marked, "README.md": "# fleet\n"})
        registry.push(IMAGE_PATH, "1.0.0")
        objects = base / "objects.yaml"
        objects.write_text(_latency_objects(image, fleet.url, interval_s))
        subprocess.run(cli_argv("apply", "-f", str(objects)), env=env, check=True, capture_output=True)
        ctx = Context(settings_of(env))
        procs: list[Proc] = []
        try:
            worker = start_worker("worker", env, logs, "-c", str(concurrency))
            procs.append(worker)
            beat = Proc("beat", cli_argv("beat"), env, logs)
            procs.append(beat)
            wait_for(
                lambda: _status(ctx, "ImagePolicy", "web").get("latestImage") == f"{image}:1.0.0",
                timeout_s=3 * interval_s + 30,
                what="the policy at 1.0.0",
            )
            wait_for(
                lambda: _status(ctx, "ImageUpdateAutomation", "web").get("observedPolicies"),
                timeout_s=60,
                what="the automation's first run",
            )
            timeout_s = DEFAULT_COMMIT_TIMEOUT_INTERVALS * interval_s + 30
            _one_update(registry, fleet.bare, "1.0.1", interval_s / 2, timeout_s)  # warm-up
            cpu0 = {p.name: _tree_cpu(p.pid) for p in procs}
            busy0, started = machine_cpu(), time.time()
            done: list[Update] = []
            for n, wait_s in enumerate(waits, start=2):
                update = _one_update(registry, fleet.bare, f"1.0.{n}", wait_s, timeout_s)
                print(f"  {update.tag}: {update.latency_s:.2f} s (waited {update.wait_s:.1f} s)", flush=True)
                done.append(update)
            busy1, span_s = machine_cpu(), time.time() - started
            cpu = {p.name: _tree_cpu(p.pid) - cpu0[p.name] for p in procs}
            time.sleep(1.0)  # let the last poll's event land
            _attach_events(ctx, done)
        finally:
            for proc in procs:
                proc.stop()
            ctx.client.close()
    return {
        "updates": done,
        "interval_s": interval_s,
        "concurrency": concurrency,
        "cpu_s": cpu,
        "span_s": span_s,
        "machine_busy": (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9),
    }


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its waited-for children (a worker and its git subprocesses)."""
    return cpu_seconds(pid) + children_cpu_seconds(pid)


def _one_update(registry: DockerRegistry, bare: Path, tag: str, wait_s: float, timeout_s: float) -> Update:
    before = _read_tip(bare)
    time.sleep(wait_s)
    registry.push(IMAGE_PATH, tag)
    pushed = time.time()
    deadline = time.monotonic() + timeout_s
    while (tip := _read_tip(bare)) == before:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no commit for {tag} within {timeout_s:.0f} s")
        time.sleep(DEFAULT_WATCH_S)
    committed = time.time()
    return Update(tag, wait_s, pushed, committed, tip)


def _attach_events(ctx: Any, updates: list[Update]) -> None:
    """Fill in each update's step times: the first event of each kind after its push."""
    events = sorted(ctx.events.recent(count=10_000), key=lambda e: e.time)
    for i, update in enumerate(updates):
        end = updates[i + 1].pushed if i + 1 < len(updates) else float("inf")
        window = [e for e in events if update.pushed <= e.time < end]

        def first(kind: str, window: list[Any] = window, **match: str) -> float | None:
            for event in window:
                if event.kind == kind and all(v in getattr(event, k) for k, v in match.items()):
                    return float(event.time)
            return None

        update.selected = first("ImagePolicy", message=f"to {update.tag}")
        update.polled = first("GitRepository", revision=update.commit)


# --------------------------------------------------------------------------- (b) cost of one run


@dataclass
class Run:
    """One measured automation run in (b): wall and CPU seconds by process."""

    label: str
    wall_s: float
    #: This process (the reconcile's Python, all threads).
    self_cpu_s: float
    #: git subprocesses of this process (clone, fetch, commit, push...).
    git_client_cpu_s: float
    #: ``git daemon``'s per-connection children (upload-pack, receive-pack).
    git_server_cpu_s: float
    redis_cpu_s: float
    machine_busy: float
    changes: int = 0
    committed: bool = False

    @property
    def total_cpu_s(self) -> float:
        return self.self_cpu_s + self.git_client_cpu_s + self.git_server_cpu_s + self.redis_cpu_s


@dataclass
class CostFigures:
    files: int
    markers: int
    repo_bytes: int
    runs: dict[str, list[Run]] = field(default_factory=dict)
    #: Traced run label → git subcommand → (calls, wall ms).
    traces: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)


def _plain_file(i: int) -> str:
    name = f"svc-{i:04d}"
    return (
        f"# {name}: managed by the platform team\n"
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata:\n  name: {name}\n  labels: {{app: {name}, tier: backend}}\n"
        "spec:\n  replicas: 2\n  selector:\n    matchLabels: {app: " + name + "}\n"
        "  template:\n    metadata:\n      labels: {app: " + name + "}\n"
        "    spec:\n      containers:\n"
        f"        - name: app\n          image: registry.example.test/team/{name}:2.{i % 7}.{i % 11}\n"
        "          ports: [{containerPort: 8080}]\n"
        "          resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {memory: 128Mi}}\n"
        "          env:\n            - {name: LOG_LEVEL, value: info}\n"
        '            - {name: FEATURE_FLAGS, value: "a,b,c"}\n'
        "---\napiVersion: v1\nkind: Service\n"
        f"metadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n"
        "  ports:\n    - port: 80\n      targetPort: 8080\n"
    )


def _marked_file(i: int, tag: str) -> str:
    name = f"svc-{i:04d}"
    marker = f'# {{"$imagepolicy": "default:{name}"}}'
    return _plain_file(i).replace(
        f"image: registry.example.test/team/{name}:2.{i % 7}.{i % 11}\n",
        f"image: registry.example.test/team/{name}:{tag} {marker}\n",
    )


def _fleet_files(files: int, markers: int) -> tuple[dict[str, str], list[int]]:
    step = files // markers
    marked = [i * step for i in range(markers)]
    chosen = set(marked)
    out = {
        f"apps/team-{i % 40:02d}/svc-{i:04d}.yaml": _marked_file(i, "1.0.0")
        if i in chosen
        else _plain_file(i)
        for i in range(files)
    }
    out["README.md"] = "# fleet\n"
    return out, marked


def _cost_objects(url: str, marked: list[int]) -> list[Any]:
    from gitops_tasks.objects.model import Object

    image = "image.toolkit.fluxcd.io/v1beta2"
    out = [
        Object(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "fleet",
            "default",
            {"url": url, "interval": "10m", "timeout": "60s", "ref": {"branch": "main"}},
        ),
        Object(
            image,
            "ImageUpdateAutomation",
            "fleet",
            "default",
            {
                "interval": "10m",
                "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                "git": {"checkout": {"ref": {"branch": "main"}}, "commit": {"author": dict(AUTHOR)}},
                "update": {"path": "./apps", "strategy": "Setters"},
            },
        ),
    ]
    for i in marked:
        spec = {"imageRepositoryRef": {"name": f"svc-{i:04d}"}, "policy": {"semver": {"range": ">=1.0.0"}}}
        out.append(Object(image, "ImagePolicy", f"svc-{i:04d}", "default", spec))
    return out


def _set_policies(ctx: Any, marked: list[int], tag: str) -> None:
    from gitops_tasks.objects.model import ObjectRef

    for i in marked:
        name = f"registry.example.test/team/svc-{i:04d}"
        status = {"latestImage": f"{name}:{tag}", "latestRef": {"name": name, "tag": tag}}
        ctx.status.put(ObjectRef("ImagePolicy", "default", f"svc-{i:04d}"), status)


def _daemon_pid(daemon: GitDaemon) -> int:
    """The ``git-daemon`` process: ``git daemon`` runs it as a child and waits, so the child is the
    one that reaps the per-connection processes (and so accumulates their CPU)."""
    assert daemon.proc is not None
    children = child_pids(daemon.proc.pid)
    return children[0] if len(children) == 1 else daemon.proc.pid


@contextlib.contextmanager
def _counting(label: str, daemon: GitDaemon, redis: RedisServer, out: list[Run]) -> Iterator[None]:
    """Measure the block as one :class:`Run` appended to ``out`` (the caller fills in ``changes``)."""
    server = _daemon_pid(daemon)
    self0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    server0, redis0, busy0 = children_cpu_seconds(server), cpu_seconds(redis.proc.pid), machine_cpu()
    started = time.perf_counter()
    yield
    wall_s = time.perf_counter() - started
    busy1 = machine_cpu()
    time.sleep(DEFAULT_REAP_PAUSE_S)
    self1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out.append(
        Run(
            label,
            wall_s,
            (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime),
            (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime),
            children_cpu_seconds(server) - server0,
            cpu_seconds(redis.proc.pid) - redis0,
            (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9),
        )
    )


@contextlib.contextmanager
def _tempdir_in(directory: Path) -> Iterator[None]:
    """Point :mod:`tempfile` (so the automation's temp checkouts) at a fresh dir under ``directory``."""
    own = Path(tempfile.mkdtemp(prefix="gitops-tasks-bench-", dir=directory))
    before, tempfile.tempdir = tempfile.tempdir, str(own)
    try:
        yield
    finally:
        tempfile.tempdir = before
        shutil.rmtree(own, ignore_errors=True)


@contextlib.contextmanager
def _git_traced(directory: Path, log: Path) -> Iterator[None]:
    """Put a ``git`` first on PATH that logs each command's wall time and arguments to ``log``
    (git runs with a filtered environment that keeps PATH, so the paths are written into it)."""
    real = shutil.which("git")
    assert real is not None
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        "s=$(date +%s%N)\n"
        f'"{real}" "$@"\n'
        "rc=$?\n"
        "e=$(date +%s%N)\n"
        f"{{ printf '%s\\t' $(( (e - s) / 1000000 )); printf '%s\\037' \"$@\"; echo; }} >> '{log}'\n"
        "exit $rc\n"
    )
    wrapper.chmod(0o755)
    before = os.environ["PATH"]
    os.environ["PATH"] = f"{directory}{os.pathsep}{before}"
    try:
        yield
    finally:
        os.environ["PATH"] = before


def _read_trace(log: Path) -> dict[str, tuple[int, int]]:
    """git subcommand → (calls, wall ms summed) from a :func:`_git_traced` log."""
    out: dict[str, tuple[int, int]] = {}
    for line in log.read_text().splitlines():
        ms, _, raw = line.partition("\t")
        args = raw.split("\037")
        while args and args[0] in ("-c", "-C"):
            args = args[2:]
        name = args[0] if args else "?"
        calls, total = out.get(name, (0, 0))
        out[name] = (calls + 1, total + int(ms))
    return out


def measure_cost(base: Path, redis: RedisServer, *, files: int, markers: int, repeats: int) -> CostFigures:
    """Run (b): a cold run, then ``repeats`` × (change, no change) per entry point, then the setters."""
    from beat_schedule import entry_for
    from gitops_tasks.automation.locking import redis_branch_lock
    from gitops_tasks.automation.reconcile import Options, reconcile
    from gitops_tasks.automation.setters import PolicyImage
    from gitops_tasks.automation.tree import update_tree
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.tasks import automation as automation_tasks
    from gitops_tasks.tasks.context import Context

    env = gt_env(redis.url(1), base / "gt")
    ctx = Context(settings_of(env))
    ctx.client.flushdb()
    with GitDaemon(base / "git" / "repos") as daemon:
        tree, marked = _fleet_files(files, markers)
        fleet: RemoteRepo = daemon.new_repo("fleet", tree)
        repo_bytes = sum(len(text.encode()) for text in tree.values())
        figures = CostFigures(files, markers, repo_bytes)
        ctx.catalog.apply(_cost_objects(fleet.url, marked), entry_for=entry_for)
        ref = ObjectRef("ImageUpdateAutomation", "default", "fleet")
        obj = ctx.catalog.get(ref)
        assert obj is not None
        version = iter(range(1, 1000))

        def task_layer() -> Any:
            return automation_tasks.reconcile_image_update_automation(obj, {}, ctx)

        def concern() -> Any:
            options = Options(
                secrets_dir=ctx.settings.resolved_secrets_dir,
                cache_dir=ctx.settings.resolved_cache_dir,
                lock=redis_branch_lock(ctx.client, ctx.keys, owner=ctx.owner),
            )
            return reconcile(obj, {}, catalog=ctx.catalog, statuses=ctx.status, options=options)

        def one(label: str, run: Callable[[], Any], *, expect: int) -> None:
            before = _read_tip(fleet.bare)
            with _counting(label, daemon, redis, figures.runs.setdefault(label, [])):
                outcome = run()
            tip = _read_tip(fleet.bare)
            files = (
                git("diff", "--name-only", before, tip, cwd=fleet.bare).splitlines() if tip != before else []
            )
            measured = figures.runs[label][-1]
            measured.changes, measured.committed = len(files), tip != before
            if outcome.result != "success" or len(files) != expect:
                raise RuntimeError(f"{label}: {outcome.result} {outcome.reason}: {outcome.message[:300]}")
            print(f"  {label}: {measured.wall_s:.2f} s wall, {measured.total_cpu_s:.2f} s CPU", flush=True)

        _set_policies(ctx, marked, f"1.0.{next(version)}")
        one("cold", task_layer, expect=markers)
        for _ in range(repeats):
            for label, run in (("task layer", task_layer), ("concern only", concern)):
                _set_policies(ctx, marked, f"1.0.{next(version)}")
                one(f"{label}: {markers} changes", run, expect=markers)
                one(f"{label}: nothing to change", run, expect=0)
                one(f"{label}: nothing to change, again", run, expect=0)
        # What-if: the temp checkouts on tmpfs (TMPDIR on a memory-backed volume).
        shm = Path("/dev/shm")
        if shm.is_dir() and os.access(shm, os.W_OK):
            with _tempdir_in(shm):
                for _ in range(repeats):
                    _set_policies(ctx, marked, f"1.0.{next(version)}")
                    one(f"tmpfs: {markers} changes", task_layer, expect=markers)
                    one("tmpfs: nothing to change", task_layer, expect=0)
                    one("tmpfs: nothing to change, again", task_layer, expect=0)
        # One more pair with every git command timed (not in the medians: the wrapper costs a little).
        log = base / "git-trace.log"
        with _git_traced(base / "git-wrapper", log):
            _set_policies(ctx, marked, f"1.0.{next(version)}")
            for label, expect in (
                (f"traced: {markers} changes", markers),
                ("traced: fetch the push", 0),
                ("traced: nothing to change (steady state)", 0),
            ):
                log.write_text("")
                one(label, task_layer, expect=expect)
                if "fetch" not in label:
                    figures.traces[label] = _read_trace(log)
        # The setters pass alone, on a plain clone (no git, no Redis): reading and rewriting files.
        work = base / "checkout"
        git("clone", "--quiet", fleet.url, str(work))
        policies = {
            f"default:svc-{i:04d}": PolicyImage(f"registry.example.test/team/svc-{i:04d}", "9.9.9")
            for i in marked
        }
        for _ in range(repeats):
            git("checkout", "--quiet", "--", ".", cwd=work)
            with _counting(
                f"setters only: {markers} changes", daemon, redis, figures.runs.setdefault("setters", [])
            ):
                done = update_tree(work, "./apps", policies, namespace="default")
            figures.runs["setters"][-1].changes = len(done.changes)
            with _counting("setters only: nothing", daemon, redis, figures.runs.setdefault("setters0", [])):
                update_tree(work, "./apps", policies, namespace="default")
    ctx.client.close()
    return figures


# --------------------------------------------------------------------------- measure, render, write


def measure(
    *,
    updates: int = DEFAULT_UPDATES,
    interval_s: float = DEFAULT_SCAN_INTERVAL_S,
    concurrency: int = DEFAULT_WORKER_CONCURRENCY,
    seed: int = DEFAULT_SEED,
    files: int = DEFAULT_FILES,
    markers: int = DEFAULT_MARKERS,
    repeats: int = DEFAULT_REPEATS,
    only: tuple[str, ...] = ("latency", "cost"),
    keep: bool = False,
) -> dict[str, Any]:
    ok, why = docker_registry_available()
    if "latency" in only and not ok:
        raise SystemExit(f"error: {why}")
    base = Path(tempfile.mkdtemp(prefix="gitops-tasks-bench-automation-"))
    figures: dict[str, Any] = {"started": datetime.now(UTC), "repeats": repeats}
    redis = RedisServer(base / "redis")
    try:
        if "latency" in only:
            print(f"(a) latency: {updates} updates, scan interval {interval_s:g} s", flush=True)
            figures["latency"] = measure_latency(
                base / "latency",
                redis.url(0),
                updates=updates,
                interval_s=interval_s,
                concurrency=concurrency,
                seed=seed,
            )
        if "cost" in only:
            print(f"(b) cost: {files} files, {markers} markers, {repeats} repeats", flush=True)
            figures["cost"] = measure_cost(
                base / "cost", redis, files=files, markers=markers, repeats=repeats
            )
    finally:
        redis.stop()
        if keep:
            print(f"kept {base}", flush=True)
        else:
            shutil.rmtree(base, ignore_errors=True)
    return figures


def _s(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _steps(updates: list[Update]) -> list[list[object]]:
    def spans(name: str, get: Callable[[Update], float | None]) -> list[object]:
        values = [v for u in updates if (v := get(u)) is not None]
        if not values:
            return [name, "—", "—", "—", "—", 0]
        stats = (median(values), statistics.fmean(values), percentile(values, 95), max(values))
        return [name, *(_s(v) for v in stats), len(values)]

    return [
        spans(
            "tag pushed → policy changed (wait for the next scan, scan, evaluate: ImagePolicy event)",
            lambda u: u.selected and u.selected - u.pushed,
        ),
        spans(
            "policy changed → commit in the remote (queue, fetch, setters, commit, push)",
            lambda u: u.selected and u.committed - u.selected,
        ),
        spans("**tag pushed → commit in the remote**", lambda u: u.latency_s),
        spans(
            "commit in the remote → GitRepository recorded it (NewArtifact event)",
            lambda u: u.polled and u.polled - u.committed,
        ),
    ]


def _render_latency(fig: dict[str, Any]) -> list[str]:
    updates: list[Update] = fig["updates"]
    interval_s = fig["interval_s"]
    latencies = [u.latency_s for u in updates]
    processing = [u.committed - u.selected for u in updates if u.selected]
    waits = [u.selected - u.pushed for u in updates if u.selected]
    cpu = fig["cpu_s"]
    n = len(updates)
    out = [
        f"### (a) New tag → commit in Git, scan interval {interval_s:g} s, {n} sequential updates\n",
        "**Setup.** docker-registry (plain HTTP), `git daemon` with receive-pack, a private redis-server, "
        f"one worker (`python -m gitops_tasks.cli worker -c {fig['concurrency']}`, threads, every queue) "
        "and beat (`python -m gitops_tasks.cli beat`), default settings. Objects: an ImageRepository "
        f"(`interval: {interval_s:g}s`), an ImagePolicy (`semver: '>=1.0.0'`), an ImageUpdateAutomation "
        "and its GitRepository (both `interval: 10m`, so only the scan → policy → automation → poll "
        "chain runs), over a repository with one marked file. After one warm-up update, each update "
        "waits after the previous commit (waits evenly spaced over one interval, in random order, so "
        "pushes land at every phase of the scan schedule), pushes tag `1.0.N` (the clock starts "
        "when the manifest PUT returned) and stops "
        f"when the bare repository's `main` moves (read every {DEFAULT_WATCH_S * 1000:.0f} ms). Steps "
        "come from the event stream's timestamps.\n",
        table(
            ["", "p50 s", "mean s", "p95 s", "max s", "n"],
            [
                [
                    "**tag pushed → commit in the remote**",
                    f"**{_s(median(latencies))}**",
                    _s(statistics.fmean(latencies)),
                    f"**{_s(percentile(latencies, 95))}**",
                    _s(max(latencies)),
                    n,
                ],
            ],
        ),
        "Where the time goes (per step; medians and means over the updates that have both events):\n",
        table(["step", "p50 s", "mean s", "p95 s", "max s", "n"], _steps(updates)),
        f"- Expected mean: about half the scan interval ({interval_s / 2:.1f} s) plus processing. "
        f"Measured: {_s(statistics.fmean(waits) if waits else None)} s on average until the policy "
        f"changed (the wait for the next scan, then a scan and an evaluation of some tens of ms), "
        f"then {_s(statistics.fmean(processing) if processing else None)} s on average to the commit "
        f"(median {_s(median(processing))} s).",
        f"- CPU while the {n} updates ran ({fig['span_s']:.0f} s): worker "
        f"{cpu.get('worker', 0):.1f} s (with its git subprocesses), beat {cpu.get('beat', 0):.1f} s; "
        f"machine busy {fig['machine_busy'] * 100:.0f} % of 2 cores.",
        "",
    ]
    return out


def _cost_row(label: str, runs: list[Run]) -> list[object]:
    def med(get: Callable[[Run], float]) -> float:
        return median([get(r) for r in runs])

    walls = [r.wall_s for r in runs]
    return [
        label,
        f"**{med(lambda r: r.wall_s):.2f}**",
        f"{min(walls):.2f}–{max(walls):.2f}",
        f"{med(lambda r: r.self_cpu_s):.2f}",
        f"{med(lambda r: r.git_client_cpu_s):.2f}",
        f"{med(lambda r: r.git_server_cpu_s):.2f}",
        f"{med(lambda r: r.redis_cpu_s):.3f}",
        f"**{med(lambda r: r.total_cpu_s):.2f}**",
        f"{med(lambda r: r.machine_busy) * 100:.0f} %",
        len(runs),
    ]


#: Column headers of the cost table.
_COST_HEADERS = ["run", "wall s", "range s", "Python CPU s", "git client CPU s", "git server CPU s"]
_COST_HEADERS += ["redis CPU s", "total CPU s", "machine busy", "runs"]


def _trace_table(fig: CostFigures) -> list[str]:
    if len(fig.traces) != 2:
        return []
    (changed_label, changed), (nothing_label, nothing) = fig.traces.items()
    walls = [fig.runs[label][-1].wall_s * 1000 for label in (changed_label, nothing_label)]
    names = sorted(set(changed) | set(nothing), key=lambda n: -(changed.get(n, (0, 0))[1]))

    def cell(trace: dict[str, tuple[int, int]], name: str) -> str:
        calls, ms = trace.get(name, (0, 0))
        return f"{ms:,} ({calls})" if calls else "—"

    rows: list[list[object]] = [[f"`git {n}`", cell(changed, n), cell(nothing, n)] for n in names]
    rest = [
        wall - sum(ms for _, ms in trace.values())
        for wall, trace in zip(walls, (changed, nothing), strict=True)
    ]
    rows.append(
        ["everything else (Python: setters, template, Redis, lock)", f"{rest[0]:,.0f}", f"{rest[1]:,.0f}"]
    )
    rows.append(["**whole run**", f"**{walls[0]:,.0f}**", f"**{walls[1]:,.0f}**"])
    return [
        "Where one run's wall time goes (more runs through the task layer, traced, not in the "
        "medians: a `git` wrapper first on PATH times every git command; milliseconds summed per "
        "command, calls in brackets):\n",
        table(["", f"{fig.markers} changes: ms (calls)", "nothing to change, steady: ms (calls)"], rows),
    ]


def _render_cost(fig: CostFigures, repeats: int) -> list[str]:
    m = fig.markers
    order = [
        (f"task layer: {m} changes", f"**task layer, {m} markers rewritten, commit + push**"),
        ("task layer: nothing to change", "task layer, nothing to change, first run after a push"),
        ("task layer: nothing to change, again", "**task layer, nothing to change (steady state)**"),
        (f"concern only: {m} changes", f"concern only, {m} markers rewritten, commit + push"),
        ("concern only: nothing to change", "concern only, nothing to change, first run after a push"),
        ("concern only: nothing to change, again", "concern only, nothing to change (steady state)"),
        (f"tmpfs: {m} changes", f"what-if: task layer, {m} changes, temp checkouts on tmpfs"),
        ("tmpfs: nothing to change", "what-if: task layer, nothing to change after a push, on tmpfs"),
        ("tmpfs: nothing to change, again", "what-if: task layer, nothing to change (steady), on tmpfs"),
        ("setters", f"setters pass alone ({m} rewritten, files written)"),
        ("setters0", "setters pass alone (nothing to rewrite)"),
        ("cold", f"first run after start (cold cache: clones the mirror), {m} changes"),
    ]
    rows = [_cost_row(title, fig.runs[key]) for key, title in order if fig.runs.get(key)]
    return [
        f"### (b) One run over {fig.files:,} YAML files with {m} markers\n",
        f"**Setup.** One repository on `git daemon`: {fig.files:,} files of a Deployment and a Service "
        f"each (~{fig.repo_bytes / fig.files / 1024:.1f} KiB, {fig.repo_bytes / 2**20:.1f} MiB in all) in "
        f"40 directories under `apps/`; {m} of them carry one marker each, for {m} ImagePolicies whose "
        "statuses are written straight to Redis (no registry). The run is called in the benchmark "
        "process with a real `Context` on a private redis-server: the **task layer** is "
        "`tasks.automation.reconcile_image_update_automation` (what a worker runs: the concern, the "
        "Flux v1 workload pass, queueing the source poll after a push), the **concern only** is "
        "`automation.reconcile.reconcile` with the Redis branch lock. Before each 'changes' run the "
        f"{m} policies move to a new tag; two 'nothing to change' runs follow it: the first fetches "
        "the commit just pushed into the worker's mirror (the push goes from the temp checkout "
        "straight to the remote), the second is the steady state. The mirror is warm except in the "
        "first run. Temp checkouts go to `/tmp` (ext4 on this "
        "machine) except in the what-if rows, which point `tempfile` at `/dev/shm`. Each row is the "
        f"median of {repeats} runs. CPU: this process (the reconcile's Python), its git subprocesses "
        "(ls-remote, fetch into the mirror, clone, checkout, add, commit, push), `git daemon`'s "
        "children (upload-pack, receive-pack) and redis-server.\n",
        table(_COST_HEADERS, rows),
        *_trace_table(fig),
        *_cost_notes(fig),
        "",
    ]


def _cost_notes(fig: CostFigures) -> list[str]:
    def med(key: str, get: Callable[[Run], float]) -> float | None:
        runs = fig.runs.get(key)
        return median([get(r) for r in runs]) if runs else None

    m, out = fig.markers, []
    wall, cpu = (lambda r: r.wall_s), (lambda r: r.total_cpu_s)
    if fig.runs.get("tmpfs: nothing to change, again"):
        out.append(
            f"- With the temp checkouts on tmpfs a run that rewrites {m} markers takes "
            f"{_s(med(f'tmpfs: {m} changes', wall))} s ({_s(med(f'tmpfs: {m} changes', cpu))} s CPU) and "
            f"one with nothing to change {_s(med('tmpfs: nothing to change, again', wall))} s "
            f"({_s(med('tmpfs: nothing to change, again', cpu))} s CPU); on `/tmp` the same runs take "
            f"{_s(med(f'task layer: {m} changes', wall))} s and "
            f"{_s(med('task layer: nothing to change, again', wall))} s. The setters pass alone "
            f"costs {_s(med('setters0', cpu))} s of CPU just to read the {fig.files:,} files."
        )
    trace = next(iter(fig.traces.items()), None)
    if trace is not None:
        label, commands = trace
        checkout_ms, whole_ms = commands.get("checkout", (0, 0))[1], fig.runs[label][-1].wall_s * 1000
        out.append(
            f"- `git checkout` of the whole tree into a fresh temp dir was {checkout_ms:,} ms of the "
            f"{whole_ms:,.0f} ms traced run, and the temp dir is deleted afterwards: a run costs in "
            "proportion to the files of the branch, not to the markers. Rewriting without a working "
            "tree (find the marked blobs with `git grep` on the commit, rewrite them in memory, build "
            "the tree with a temporary index and `git commit-tree`), or keeping one worktree per "
            "(url, branch) that is updated in place, would make a run with nothing to change cost "
            "in proportion to the marked files."
        )
    return out


def render(figures: dict[str, Any], *, command: str) -> Section:
    facts = machine.facts()
    at = figures.get("measured_at") or figures["started"]
    lines = [
        "## Image update automation: tag → commit latency, and the cost of one run\n",
        f"Run {at.strftime('%Y-%m-%d %H:%M UTC')} with `{command}`, code at commit "
        f"{figures.get('code') or machine.code_version()}, on {facts['CPU']} × {facts['Cores']} cores, "
        f"{facts['RAM']} RAM, {facts['OS']}, Python {facts['Python']}, {facts['git']}, "
        f"{facts['Redis'].split(' sha=')[0]}; every process on this one machine, on 127.0.0.1.\n",
    ]
    if "latency" in figures:
        lines += _render_latency(figures["latency"])
    if "cost" in figures:
        lines += _render_cost(figures["cost"], figures.get("repeats", DEFAULT_REPEATS))
    lines += [
        "### Caveats\n",
        "- One 2-core machine runs registry, git server, Redis, worker, beat and the benchmark, and "
        "other sessions may use it at the same time ('machine busy' shows how loaded it was).",
        "- Loopback has no latency; a real registry and Git host add their round trips to each step.",
        "- (a) measures one automation on an otherwise idle worker; many automations sharing a "
        "branch serialise on the branch lock.",
        "- (b) Creating files on this VM's ext4 `/tmp` is slow and erratic under the other sessions' "
        "load (2,000 files of 1.5 KB took 8 s in a probe, against 0.9 s on tmpfs), and a run writes "
        "and then deletes a full checkout: the `/tmp` rows mostly measure that, with wide ranges; "
        "the tmpfs rows show the engine's own cost. CPU charged to git there is also erratic (time "
        "spent in the kernel's file system code is not always charged to the process waiting for it).",
    ]
    return Section(SECTION, "\n".join(lines) + "\n")


def write_section(section: Section) -> None:
    """Replace this section between its markers in BENCHMARKS.md (appended when missing)."""
    begin, end = f"<!-- section:{section.name}:begin -->", f"<!-- section:{section.name}:end -->"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.is_file() else "# Benchmarks\n"
    body = section.markdown if section.markdown.endswith("\n") else section.markdown + "\n"
    start, stop = text.find(begin), text.find(end)
    if 0 <= start < stop:
        text = text[: start + len(begin)] + "\n" + body + text[stop:]
    else:
        text = text.rstrip("\n") + f"\n\n{begin}\n{body}{end}\n"
    BENCHMARKS_MD.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Image automation benchmarks; writes their BENCHMARKS.md section."
    )
    parser.add_argument("--only", action="append", choices=("latency", "cost"))
    parser.add_argument("--updates", type=int, default=DEFAULT_UPDATES)
    parser.add_argument("--interval", type=float, default=DEFAULT_SCAN_INTERVAL_S, help="scan interval, s")
    parser.add_argument("--files", type=int, default=DEFAULT_FILES)
    parser.add_argument("--markers", type=int, default=DEFAULT_MARKERS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument(
        "--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, repositories)")
    args = parser.parse_args(argv)
    exit_cleanly_on_signals()
    command = "python -m " + " ".join(
        ["benchmarks.bench_automation", *(sys.argv[1:] if argv is None else argv)]
    )
    figures = measure(
        updates=args.updates,
        interval_s=args.interval,
        files=args.files,
        markers=args.markers,
        repeats=args.repeats,
        only=tuple(args.only or ("latency", "cost")),
        keep=args.keep,
    )
    figures["measured_at"] = datetime.now(UTC)
    figures["code"] = machine.code_version()
    section = render(figures, command=command)
    if args.no_write:
        print(section.markdown)
    else:
        write_section(section)
        print(f"wrote section {section.name} of {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

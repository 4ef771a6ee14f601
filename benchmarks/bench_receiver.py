"""The webhook receiver: verified hooks per second, a flood for one repository, push → applied latency,
registry hook → automation commit latency.

(a) Throughput of one ``gitops-tasks receiver`` process: signed GitHub push hooks (HMAC-SHA256,
~300 B bodies) from 32 concurrent connections of an aiohttp client in this process, path rate
limit lifted. Twice: every hook for one GitRepository with the default 10 s window (after the
first two, hooks are verified, matched and throttled: Redis round trips, no publish), and with a
1 ms window (every hook publishes a ``gitops.reconcile`` task).
(b) 10,000 hooks for one repository, paced evenly over 10 s, against a receiver with its defaults
(10 requests/s per path, burst 20; window 10 s) and again with the rate limit lifted; a worker runs
what is queued, and its log counts the runs.
(c) git push → Kustomization applied: a commit to a ``file://`` repository, then a GitHub-style push
hook; GitRepository and Kustomization at ``interval: 10m`` and no beat, so only the hook can start
it; the time until the emulator (``tests.kubeapi``, in this process) holds the new ConfigMap.
(d) registry push hook → new tag → commit in Git: the chain of ``bench_automation`` (a real
docker-registry, an ImageRepository, a semver ImagePolicy, an ImageUpdateAutomation pushing to
``git daemon``) with the ImageRepository at ``interval: 10m`` and no beat; each new tag pushed to
the registry is followed by a Harbor push hook naming it, and the clock runs from the end of the
image push until the automation's commit with that tag is on the remote's ``main``.

``python -m benchmarks.bench_receiver [--hooks N] [--pushes N] [--tags N] [--no-write]``
(``--save-figures F`` / ``--from-figures F`` keep the raw figures and render them again). Every
server is a child of this process on 127.0.0.1 (Redis, receiver, worker, docker-registry, git
daemon), stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks import machine
from benchmarks.report import Section, median, percentile, table
from benchmarks.stack import cpu_seconds, exit_cleanly_on_signals, gt_env, settings_of, start_worker
from tests.gitservers import FileRemotes
from tests.procs import Proc, RedisServer, cli_argv, free_port, wait_for

#: Hooks sent in each throughput run, and concurrent client connections.
DEFAULT_THROUGHPUT_HOOKS = 5000
DEFAULT_CONNECTIONS = 32
#: The flood: hooks and the seconds they are spread over.
FLOOD_HOOKS = 10_000
FLOOD_S = 10.0
#: Pushes timed in (c), and the receiver window there (pushes are spaced just over it).
DEFAULT_PUSHES = 20
LATENCY_WINDOW_S = 2.0
#: New tags timed in (d) (after one warm-up tag); the figure with 10 s polling to compare with.
DEFAULT_TAGS = 20
POLLING_P95_S = 10.25
#: The image (d) pushes to its registry.
IMAGE_PATH = "bench/web"
OTHER_IMAGE_PATH = "bench/other"


class World:
    """A private Redis, the environment of one installation, and its processes (stopped by PID)."""

    def __init__(self, base: Path, redis: RedisServer, db: int, **extra: str) -> None:
        self.base = base
        self.env = gt_env(redis.url(db), base, **extra)
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []

    def cli(self, *args: str) -> None:
        import subprocess

        done = subprocess.run(cli_argv(*args), env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)

    def apply(self, text: str) -> None:
        path = self.base / f"objects-{len(self.procs)}-{time.monotonic_ns()}.yaml"
        path.write_text(text)
        self.cli("apply", "-f", str(path))

    def token(self, namespace: str, name: str) -> str:
        value = secrets.token_hex(20)
        directory = self.base / "secrets" / namespace / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(value)
        return value

    def receiver(self, *args: str) -> tuple[Proc, int]:
        port = free_port()
        proc = Proc(
            f"receiver-{len(self.procs)}",
            cli_argv("receiver", "--port", str(port), *args),
            self.env,
            self.logs,
        )
        self.procs.append(proc)
        wait_for(lambda: _ready(port), timeout_s=60, what="the receiver")
        return proc, port

    def worker(self, *args: str) -> Proc:
        proc = start_worker(f"w{len(self.procs)}", self.env, self.logs, *args)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def github_receiver(name: str, resource: str) -> str:
    return (
        "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        f"spec:\n  type: github\n  secretRef: {{name: {name}-token}}\n"
        f"  resources:\n    - {{kind: GitRepository, name: {resource}}}\n"
    )


def git_repository(name: str, url: str) -> str:
    return (
        "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        f"spec: {{url: '{url}', interval: 10m, ref: {{branch: main}}}}\n"
    )


def push(url: str, token: str, n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "after": f"{n:040x}",
            "repository": {"clone_url": url, "default_branch": "main"},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest(),
    }
    return body, headers


def path_of(token: str, name: str) -> str:
    return "/hook/" + hashlib.sha256(f"{token}{name}default".encode()).hexdigest()


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
    """One hook, which must be answered 200."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        if resp.status != 200:
            raise RuntimeError(f"the receiver answered {resp.status}")


def harbor_receiver(name: str, *image_repositories: str) -> str:
    return (
        "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        f"spec:\n  type: harbor\n  secretRef: {{name: {name}-token}}\n  resources:\n"
        + "".join(f"    - {{kind: ImageRepository, name: {r}}}\n" for r in image_repositories)
    )


def harbor_push(image: str, tag: str, token: str) -> tuple[bytes, dict[str, str]]:
    """Harbor's PUSH_ARTIFACT hook for ``image:tag``; Harbor sends the token as ``Authorization``."""
    body = json.dumps(
        {
            "type": "PUSH_ARTIFACT",
            "occur_at": int(time.time()),
            "operator": "ci",
            "event_data": {
                "resources": [{"tag": tag, "resource_url": f"{image}:{tag}"}],
                "repository": {"name": image.rsplit("/", 1)[-1], "repo_full_name": IMAGE_PATH},
            },
        }
    ).encode()
    return body, {"Content-Type": "application/json", "Authorization": token}


async def _send(
    port: int, path: str, hooks: list[tuple[bytes, dict[str, str]]], *, connections: int, pace_s: float = 0.0
) -> dict[int, int]:
    """POST every hook (spread over ``pace_s`` when set); answers by status code."""
    import aiohttp

    codes: dict[int, int] = {}
    url = f"http://127.0.0.1:{port}{path}"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(hooks)):
        queue.put_nowait(i)
    start = time.monotonic()

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            if pace_s:
                delay = start + pace_s * i / len(hooks) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            body, headers = hooks[i]
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                codes[resp.status] = codes.get(resp.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(connections)))
    return codes


def throughput(base: Path, redis: RedisServer, *, hooks: int, connections: int) -> list[dict[str, Any]]:
    rows = []
    url = "https://github.com/org/app.git"
    for db, (label, window) in enumerate(
        (("one object, 10 s window (throttled)", "10"), ("every hook publishes (1 ms window)", "0.001")),
        start=1,
    ):
        world = World(base / f"throughput-{db}", redis, db)
        try:
            token = world.token("default", "bench-token")
            world.apply(github_receiver("bench", "app") + git_repository("app", url))
            proc, port = world.receiver("--rate", "1000000", "--burst", "1000000", "--window", window)
            bodies = [push(url, token, n) for n in range(hooks)]
            asyncio.run(
                _send(port, path_of(token, "bench"), bodies[:200], connections=connections)
            )  # warm-up
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            codes = asyncio.run(_send(port, path_of(token, "bench"), bodies, connections=connections))
            wall = time.monotonic() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            rows.append({"label": label, "hooks": hooks, "wall_s": wall, "cpu_s": cpu, "codes": codes})
        finally:
            world.stop()
    return rows


def flood(base: Path, redis: RedisServer, remotes: FileRemotes) -> list[dict[str, Any]]:
    rows = []
    for db, (label, args) in enumerate(
        (
            ("defaults (10 rps/path, burst 20, window 10 s)", ()),
            ("rate limit lifted (window 10 s)", ("--rate", "1000000", "--burst", "1000000")),
        ),
        start=3,
    ):
        world = World(base / f"flood-{db}", redis, db)
        try:
            repo = remotes.new_repo(f"flood-{db}", {"a.yaml": "a: 1\n"})
            token = world.token("default", "flood-token")
            world.apply(github_receiver("flood", "app") + git_repository("app", repo.url))
            worker = world.worker("-Q", "priority,git", "-c", "2", "--loglevel", "DEBUG")
            _proc, port = world.receiver(*args)
            bodies = [push(repo.url, token, n) for n in range(FLOOD_HOOKS)]
            t0 = time.monotonic()
            codes = asyncio.run(_send(port, path_of(token, "flood"), bodies, connections=16, pace_s=FLOOD_S))
            sent_s = time.monotonic() - t0
            time.sleep(12.0)  # the trailing run fires at the window's end
            runs = sum(
                1 for line in worker.log().splitlines() if "gitops.reconcile[" in line and "succeeded" in line
            )
            rows.append({"label": label, "sent_s": sent_s, "codes": codes, "runs": runs})
        finally:
            world.stop()
    return rows


def latency(base: Path, redis: RedisServer, remotes: FileRemotes, *, pushes: int) -> dict[str, Any]:
    from tests.integration.test_sync_world import configmap, dump, namespace
    from tests.kubeapi.fixtures import kube_target

    with ExitStack() as stack:
        kube = stack.enter_context(kube_target(base / "kube"))
        world = World(base / "latency", redis, 5, GITOPS_TASKS_KUBECONFIG=str(kube.kubeconfig))
        stack.callback(world.stop)
        from gitops_tasks.sync.cluster import Cluster

        cluster = Cluster.from_kubeconfig(kube.kubeconfig)
        stack.callback(cluster.close)
        repo = remotes.new_repo(
            "latency",
            {
                "deploy/ns.yaml": dump(namespace("bench-hooks")),
                "deploy/cm.yaml": dump(configmap("app", "bench-hooks", {"n": "0"})),
            },
        )
        token = secrets.token_hex(20)
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "github-token", "namespace": "default"},
                "stringData": {"token": token},
            }
        )
        world.apply(
            github_receiver("github", "repo")
            + git_repository("repo", repo.url)
            + "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
            "metadata: {name: app, namespace: default}\n"
            "spec: {interval: 10m, prune: true, path: ./deploy,\n"
            "       sourceRef: {kind: GitRepository, name: repo}}\n"
        )
        world.worker("-Q", "priority,git,sync", "-c", "4")
        _proc, port = world.receiver("--window", str(LATENCY_WINDOW_S))

        def applied(n: int) -> bool:
            live = cluster.get("v1", "ConfigMap", "app", "bench-hooks")
            return bool(live and live.get("data", {}).get("n") == str(n))

        def hook(n: int) -> None:
            post(port, path_of(token, "github"), *push(repo.url, token, n))

        hook(0)
        wait_for(lambda: applied(0), timeout_s=60, interval_s=0.01, what="the first revision")
        samples = []
        for n in range(1, pushes + 1):
            time.sleep(LATENCY_WINDOW_S + 0.5)
            t0 = time.monotonic()
            repo.commit({"deploy/cm.yaml": dump(configmap("app", "bench-hooks", {"n": str(n)}))})
            hook(n)
            wait_for(lambda n=n: applied(n), timeout_s=60, interval_s=0.005, what=f"push {n}")
            samples.append(time.monotonic() - t0)
        return {"samples": samples}


def image_hook(base: Path, redis: RedisServer, *, tags: int) -> dict[str, Any]:
    """(d): per new tag, seconds from the end of the image push to the automation's commit."""
    from benchmarks.bench_automation import _latency_objects, _read_tip, _status
    from gitops_tasks.tasks.context import Context
    from tests.gitservers import GitDaemon, git
    from tests.registryservers import DockerRegistry

    with ExitStack() as stack:
        registry = stack.enter_context(DockerRegistry(base / "registry"))
        daemon = stack.enter_context(GitDaemon(base / "git" / "repos"))
        world = World(base / "image-hook", redis, 6)
        stack.callback(world.stop)
        image = f"{registry.host}/{IMAGE_PATH}"
        marked = f'image: {image}:1.0.0 # {{"$imagepolicy": "default:web"}}\n'
        fleet = daemon.new_repo("fleet", {"apps/web.yaml": marked, "README.md": "# fleet\n"})
        token = world.token("default", "harbor-token")
        # The Receiver names a second ImageRepository, of another image: the hooks must leave it alone.
        registry.push(OTHER_IMAGE_PATH, "1.0.0")
        other = (
            "---\napiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\n"
            "metadata: {name: other, namespace: default}\n"
            f"spec: {{image: '{registry.host}/{OTHER_IMAGE_PATH}', interval: 10m, insecure: true}}\n"
        )
        world.apply(
            harbor_receiver("harbor", "web", "other")
            + "---\n"
            + _latency_objects(image, fleet.url, 600)
            + other
        )
        ctx = Context(settings_of(world.env))
        stack.callback(ctx.client.close)
        world.worker("-c", "4")
        _proc, port = world.receiver("--window", str(LATENCY_WINDOW_S))
        path = path_of(token, "harbor")

        def update(tag: str) -> dict[str, float]:
            before = _read_tip(fleet.bare)
            t0 = time.monotonic()
            registry.push(IMAGE_PATH, tag)
            pushed = time.monotonic()
            post(port, path, *harbor_push(image, tag, token))
            answered = time.monotonic()
            wait_for(
                lambda: _read_tip(fleet.bare) != before,
                timeout_s=60,
                interval_s=0.005,
                what=f"the commit of {tag}",
            )
            committed = time.monotonic()
            text = git("show", "refs/heads/main:apps/web.yaml", cwd=fleet.bare)
            if f"{image}:{tag} " not in text:
                raise RuntimeError(f"the commit for {tag} wrote {text!r}")
            return {"push_s": pushed - t0, "answer_s": answered - pushed, "latency_s": committed - pushed}

        registry.push(IMAGE_PATH, "1.0.0")
        post(port, path, *harbor_push(image, "1.0.0", token))
        wait_for(
            lambda: _status(ctx, "ImageUpdateAutomation", "web").get("observedPolicies"),
            timeout_s=60,
            what="the automation's first run",
        )
        samples, load_before = [], os.getloadavg()
        for n in range(1, tags + 2):  # 1.0.1 warms up
            time.sleep(LATENCY_WINDOW_S + 0.5)
            sample = update(f"1.0.{n}")
            print(f"  1.0.{n}: {sample['latency_s']:.3f} s", flush=True)
            if n > 1:
                samples.append(sample)
        other_scanned = bool(_status(ctx, "ImageRepository", "other").get("lastScanResult"))
        return {
            "samples": samples,
            "load": [load_before[0], os.getloadavg()[0]],
            "other_scanned": other_scanned,
        }


def measure(
    *, hooks: int = DEFAULT_THROUGHPUT_HOOKS, pushes: int = DEFAULT_PUSHES, tags: int = DEFAULT_TAGS
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as tmp:
        base = Path(tmp)
        redis = RedisServer(base / "redis")
        remotes = FileRemotes(base / "remotes").start()
        try:
            figures: dict[str, Any] = {"load_before": os.getloadavg()}
            figures["throughput"] = throughput(base, redis, hooks=hooks, connections=DEFAULT_CONNECTIONS)
            figures["flood"] = flood(base, redis, remotes)
            figures["latency"] = latency(base, redis, remotes, pushes=pushes)
            figures["image_hook"] = image_hook(base, redis, tags=tags)
            figures["load_after"] = os.getloadavg()
            return figures
        finally:
            redis.stop()


def _load_line(figures: dict[str, Any]) -> list[str]:
    """The machine's 1-minute load average before and after, when recorded (it is shared)."""
    if "load_before" not in figures:
        return []
    before, after = figures["load_before"][0], figures["load_after"][0]
    return [
        f"Load average (1 min) of the 2-core machine: {before:.1f} before, {after:.1f} after; other "
        "work ran beside the benchmark, so the figures are upper bounds for an idle machine.",
        "",
    ]


def _codes(row: dict[str, Any]) -> dict[int, int]:
    """Answers by status code (JSON keeps the codes as strings)."""
    return {int(k): int(v) for k, v in row["codes"].items()}


def render(figures: dict[str, Any], *, command: str) -> Section:
    when = figures["measured_at"].strftime("%Y-%m-%d %H:%M UTC") if "measured_at" in figures else "-"
    lines = [
        "## Webhook receiver: verified hooks per second, a flood for one repository, push → applied, "
        "registry hook → commit",
        "",
        f"Measured {when} by `{command}` at {figures.get('code', '-')}.",
        "",
        *_load_line(figures),
        "### (a) Throughput of one receiver process",
        "",
        f"Signed GitHub push hooks (HMAC-SHA256) from {DEFAULT_CONNECTIONS} concurrent connections of an "
        "aiohttp client in the benchmark process (it shares the two cores), path rate limit lifted, after "
        "200 warm-up hooks. Receiver CPU is its process's utime + stime.",
        "",
    ]
    rows = []
    for row in figures["throughput"]:
        ok = _codes(row).get(200, 0)
        rows.append(
            [
                row["label"],
                row["hooks"],
                ok,
                f"{row['wall_s']:.2f}",
                f"{ok / row['wall_s']:.0f}",
                f"{1000 * row['cpu_s'] / max(ok, 1):.2f}",
            ]
        )
    lines += [
        table(["run", "hooks", "200s", "wall s", "verified hooks/s", "receiver CPU ms/hook"], rows),
        "Each verified hook costs the receiver one thread-pool hop and Redis round trips (the path's "
        "bucket, the object, the throttle; plus a Celery publish when it is not throttled). The client "
        "shares the two cores, so a receiver with a core to itself would take about 1 / (CPU per hook).",
        "",
    ]
    lines += [
        "### (b) 10,000 hooks for one repository in 10 s",
        "",
        "Paced evenly over 10 s from 16 connections; one worker (`-Q priority,git -c 2`) runs what is "
        "queued; runs counted in its DEBUG log (one `GitRepository default/app: success` line per run) "
        "12 s after the last hook.",
        "",
    ]
    rows = []
    for row in figures["flood"]:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(_codes(row).items()))
        rows.append([row["label"], f"{row['sent_s']:.1f}", codes, row["runs"]])
    lines += [
        table(["receiver", "sent in s", "answers", "reconciles run"], rows),
        "The throttle gives one reconcile at the first hook and one at the end of each window the "
        "accepted hooks reach into (1 + ⌈span / 10 s⌉), never one per hook: 2 when the flood fits in "
        "10 s. The client here needs a little more than 10 s to send 10,000 requests (it shares the two "
        "cores with the receiver), and with the limit lifted the receiver verifies them at the rate of "
        "(a), so they span two or three windows. The last run always starts after the last hook. "
        "With the defaults the path's bucket turns all but ~10/s away with 429, answered from memory "
        "once the receiver has learnt when the next token comes.",
        "",
    ]
    samples = figures["latency"]["samples"]
    lines += [
        "### (c) git push → Kustomization applied, through a GitHub push hook",
        "",
        f"GitRepository and Kustomization at `interval: 10m`, no beat: only the hook starts the chain "
        f"(hook → `gitops.reconcile` of the GitRepository on priority → new revision → its Kustomization "
        f"queued as a dependent → applied). {len(samples)} pushes, each {LATENCY_WINDOW_S + 0.5:.1f} s after "
        f"the previous one was applied (receiver `--window {LATENCY_WINDOW_S:g}`, so no push lands in a "
        "window); time from the commit to the ConfigMap's new value in the emulator (in the benchmark's "
        "process), one worker `-Q priority,git,sync -c 4`.",
        "",
        table(
            ["pushes", "p50 s", "p95 s", "max s"],
            [
                [
                    len(samples),
                    f"{median(samples):.3f}",
                    f"{percentile(samples, 95):.3f}",
                    f"{max(samples):.3f}",
                ]
            ],
        ),
        "Target: p95 ≤ 2 s. With polling at a 10 s interval the same chain waits 5 s on average for "
        "the poll alone; with `interval: 10m` only the hook makes it happen at all.",
        "",
    ]
    if "image_hook" in figures:
        lines += _render_image_hook(figures["image_hook"])
    return Section("receiver", "\n".join(lines))


def _render_image_hook(figures: dict[str, Any]) -> list[str]:
    samples = figures["samples"]
    latencies = [s["latency_s"] for s in samples]
    answers = [s["answer_s"] for s in samples]
    pushes = [s["push_s"] for s in samples]
    return [
        "### (d) registry push hook → new tag → commit in Git",
        "",
        "The chain of the automation benchmark: Debian's docker-registry, an ImageRepository, a semver "
        "ImagePolicy and an ImageUpdateAutomation over a repository on `git daemon` (receive-pack on); "
        "ImageRepository, GitRepository and automation at `interval: 10m`, no beat, so only the hook "
        "starts the chain (Harbor `PUSH_ARTIFACT` hook naming the image → scan of that ImageRepository "
        "on priority → policy picks the new tag → automation queued as a dependent → commit pushed). "
        f"{len(samples)} new tags (after one warm-up), each pushed {LATENCY_WINDOW_S + 0.5:.1f} s after "
        f"the previous commit (receiver `--window {LATENCY_WINDOW_S:g}`); the image is pushed over the "
        "distribution API, then the hook is sent, as the registry would; the clock runs from the end of "
        "the image push until the remote's `main` moves, and that commit is checked to carry the tag. "
        "One worker `-c 4` on every queue.",
        "",
        table(
            ["tags", "p50 s", "p95 s", "max s", "hook answered p50 ms", "image push p50 s"],
            [
                [
                    len(samples),
                    f"{median(latencies):.3f}",
                    f"{percentile(latencies, 95):.3f}",
                    f"{max(latencies):.3f}",
                    f"{1000 * median(answers):.1f}",
                    f"{median(pushes):.3f}",
                ]
            ],
        ),
        f"Target: p95 ≤ 3 s. The same chain with the ImageRepository polled every 10 s (section "
        f"'Image update automation', (a)) has p95 {POLLING_P95_S:g} s: a new tag waits for the next "
        "scan, half an interval on average. With the hook it waits for nothing but the work itself.",
        "",
        "The Receiver also names a second ImageRepository, of another image in the same registry: "
        + (
            "it was scanned, so the hooks were not matched to their image."
            if figures.get("other_scanned")
            else "no hook scanned it (it has no scan result at the end), as the hooks name only `bench/web`."
        ),
        "",
        f"Load average (1 min) while (d) ran: {figures['load'][0]:.1f} at the first tag, "
        f"{figures['load'][1]:.1f} after the last.",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--hooks", type=int, default=DEFAULT_THROUGHPUT_HOOKS, help="hooks per throughput run"
    )
    parser.add_argument("--pushes", type=int, default=DEFAULT_PUSHES, help="pushes timed in (c)")
    parser.add_argument("--tags", type=int, default=DEFAULT_TAGS, help="new tags timed in (d)")
    parser.add_argument(
        "--no-write", action="store_true", help="print the section; leave BENCHMARKS.md alone"
    )
    parser.add_argument("--save-figures", type=Path, help="also write the raw figures to this JSON file")
    parser.add_argument("--from-figures", type=Path, help="render figures saved earlier; measure nothing")
    args = parser.parse_args()
    exit_cleanly_on_signals()
    from datetime import UTC, datetime

    if args.from_figures:
        figures = json.loads(args.from_figures.read_text())
        figures["measured_at"] = datetime.fromisoformat(figures["measured_at"])
    else:
        figures = measure(hooks=args.hooks, pushes=args.pushes, tags=args.tags)
        figures["measured_at"] = datetime.now(UTC)
        figures["code"] = machine.code_version()
    if args.save_figures:
        saved = {**figures, "measured_at": figures["measured_at"].isoformat()}
        args.save_figures.write_text(json.dumps(saved))
    command = "python -m benchmarks.bench_receiver"
    section = render(figures, command=command)
    print(section.markdown)
    if not args.no_write:
        from benchmarks.run import write

        write([section], command=command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Notifications end to end: events → Alerts → the Redis outbox → a real worker → the tests' own
webhook server, which records every request and fails on demand (500, 429, 4xx, stalls).

One worker and one Redis database serve the whole module; each test uses its own namespace and
webhook path, so tests do not see each other's deliveries.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from beat_schedule import entry_for
from gitops_tasks import tasknames
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.settings import Settings
from gitops_tasks.tasks.context import Context
from tests.conftest import env_with_own_database
from tests.notifyserver import NotifyServer
from tests.procs import Proc, RedisServer, cli_argv, flower_answers, free_port, wait_for

#: An ``eventSources`` taking every Kustomization of the Alert's namespace.
ALL_KS = "[{kind: Kustomization, name: '*'}]"
#: The rate limit of the ``limited`` server's host.
LIMITED_RPS = 4
#: The dedupe window of this module's worker (short, so "after the window" is reachable).
DEDUPE_S = 3.0


@dataclass
class Stack:
    ctx: Context
    hooks: NotifyServer
    #: A second server, on a host the worker's settings limit to LIMITED_RPS messages per second.
    limited: NotifyServer
    worker: Proc
    env: dict[str, str]
    secrets: Path


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("notify")
    env = env_with_own_database(redis_server, tmp)
    env.update(
        {
            "GITOPS_TASKS_NOTIFY_DEDUPE_S": str(DEDUPE_S),
            "GITOPS_TASKS_NOTIFY_BACKOFF_BASE_S": "0.2",
            "GITOPS_TASKS_NOTIFY_BACKOFF_MAX_S": "1",
            "GITOPS_TASKS_NOTIFY_TICK_S": "0.2",
        }
    )
    hooks = NotifyServer()
    limited = NotifyServer()
    config = tmp / "settings.yaml"
    config.write_text(f"notify_hosts: {{'127.0.0.1:{limited.port}': {{rps: {LIMITED_RPS}, burst: 1}}}}\n")
    env["GITOPS_TASKS_CONFIG"] = str(config)
    logs = tmp / "logs"
    logs.mkdir()
    worker = Proc("worker", cli_argv("worker", "-c", "4"), env, logs)
    ctx = Context(Settings.from_env(env))
    wait_for(lambda: " ready." in worker.log(), timeout_s=60, what="the worker to start")
    yield Stack(ctx, hooks, limited, worker, env, tmp / "secrets")
    worker.stop()
    hooks.stop()
    limited.stop()
    ctx.client.close()


@pytest.fixture(autouse=True)
def _show_worker_log(stack: Stack, request: pytest.FixtureRequest) -> Iterator[None]:
    start = len(stack.worker.log())
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"----- worker log -----\n{stack.worker.log()[start:][-8000:]}")


def apply(stack: Stack, text: str) -> None:
    stack.ctx.catalog.apply(load_text(text, filename="notify.yaml"), entry_for=entry_for)


def provider(name: str, ns: str, address: str, extra: str = "") -> str:
    return f"""apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {{name: {name}, namespace: {ns}}}
spec: {{type: generic, address: "{address}"{extra}}}
---
"""


def alert(
    name: str, ns: str, provider_name: str, sources: str, extra: str = "", annotations: str = ""
) -> str:
    meta = f"{{name: {name}, namespace: {ns}{', annotations: {' + annotations + '}' if annotations else ''}}}"
    return f"""apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {meta}
spec:
  providerRef: {{name: {provider_name}}}
  eventSources: {sources}
{extra}---
"""


def emit(
    stack: Stack, kind: str, ns: str, name: str, message: str, *, severity: str = "info", revision: str = ""
) -> None:
    stack.ctx.events.emit(
        ObjectRef(kind, ns, name), severity=severity, reason="Test", message=message, revision=revision
    )


def gitops_tasks(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_argv(*args), env=stack.env, capture_output=True, text=True, timeout=60, check=False
    )


def settled(stack: Stack, *keys: str) -> bool:
    """The inbox is routed and none of ``keys`` (Alerts or Providers) has a delivery pending."""
    if stack.ctx.client.xlen(stack.ctx.keys.notify_inbox):
        return False
    return all(int(stack.ctx.client.hget(stack.ctx.keys.notify_stats(k), "pending") or 0) == 0 for k in keys)


def messages(stack: Stack, path: str) -> list[str]:
    return messages_of(stack.hooks, path)


def messages_of(server: NotifyServer, path: str) -> list[str]:
    return [r.json()["message"] for r in server.delivered(path)]


def test_alerts_match_by_severity_sources_labels_and_message_lists(stack: Stack) -> None:
    ns = "match"
    apply(
        stack,
        f"""apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: a, namespace: {ns}, labels: {{team: a}}}}
spec: {{interval: 1h, url: "https://example.invalid/a.git", suspend: true}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: b, namespace: {ns}, labels: {{team: b}}}}
spec: {{interval: 1h, url: "https://example.invalid/b.git", suspend: true}}
---
"""
        + provider("errors", ns, stack.hooks.url("/match/errors"))
        + provider("labels", ns, stack.hooks.url("/match/labels"))
        + provider("lists", ns, stack.hooks.url("/match/lists"))
        + alert("errors", ns, "errors", ALL_KS, "  eventSeverity: error\n")
        + alert("labels", ns, "labels", "[{kind: GitRepository, name: '*', matchLabels: {team: a}}]")
        + alert(
            "lists",
            ns,
            "lists",
            "[{kind: Kustomization, name: app}]",
            "  inclusionList: ['^deploy']\n  exclusionList: ['skip(ped)?\\b']\n"
            "  summary: production\n  eventMetadata: {env: prod}\n",
        ),
    )
    emit(stack, "Kustomization", ns, "app", "deploy done")
    emit(stack, "Kustomization", ns, "app", "deploy failed", severity="error")
    emit(stack, "Kustomization", ns, "app", "deploy skipped this")
    emit(stack, "Kustomization", ns, "other", "boom", severity="error")
    emit(stack, "Kustomization", "elsewhere", "app", "deploy elsewhere", severity="error")
    emit(stack, "GitRepository", ns, "a", "fetched a")
    emit(stack, "GitRepository", ns, "b", "fetched b")
    emit(stack, "GitRepository", ns, "gone", "fetched gone")
    keys = [f"Alert/{ns}/{n}" for n in ("errors", "labels", "lists")]
    wait_for(lambda: len(stack.hooks.delivered()) >= 5 and settled(stack, *keys), what="deliveries")

    # Order holds per (alert, object): two objects' messages may arrive either way round.
    assert sorted(messages(stack, "/match/errors")) == ["boom", "deploy failed"]
    assert messages(stack, "/match/labels") == ["fetched a"]
    assert messages(stack, "/match/lists") == ["deploy done", "deploy failed"]
    body = stack.hooks.delivered("/match/lists")[0].json()
    assert body["involvedObject"] == {
        "kind": "Kustomization",
        "namespace": ns,
        "name": "app",
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    }
    assert body["metadata"] == {"summary": "production", "env": "prod"}
    assert stack.hooks.delivered("/match/lists")[0].headers["Gotk-Component"] == "kustomize-controller"


def test_the_same_event_is_sent_once_within_the_dedupe_window_and_again_after(stack: Stack) -> None:
    ns = "dedupe"
    apply(
        stack,
        provider("hook", ns, stack.hooks.url("/dedupe")) + alert("all", ns, "hook", ALL_KS),
    )
    emit(stack, "Kustomization", ns, "app", "failed", severity="error", revision="main@sha1:1")
    emit(stack, "Kustomization", ns, "app", "failed", severity="error", revision="main@sha1:1")
    emit(stack, "Kustomization", ns, "app", "failed", severity="error", revision="main@sha1:2")
    wait_for(lambda: len(stack.hooks.delivered("/dedupe")) >= 2 and settled(stack, f"Alert/{ns}/all"))
    assert [r.json()["metadata"]["revision"] for r in stack.hooks.delivered("/dedupe")] == [
        "main@sha1:1",
        "main@sha1:2",
    ]

    time.sleep(DEDUPE_S + 0.5)
    emit(stack, "Kustomization", ns, "app", "failed", severity="error", revision="main@sha1:1")
    wait_for(lambda: len(stack.hooks.delivered("/dedupe")) >= 3 and settled(stack, f"Alert/{ns}/all"))
    assert len(stack.hooks.delivered("/dedupe")) == 3


def test_transitions_mode_sends_first_failure_recovery_and_new_revisions_only(stack: Stack) -> None:
    ns = "transitions"
    apply(
        stack,
        provider("changes", ns, stack.hooks.url("/transitions/changes"))
        + provider("every", ns, stack.hooks.url("/transitions/every"))
        + alert(
            "changes",
            ns,
            "changes",
            ALL_KS,
            annotations="gitops-tasks.io/notify: transitions",
        )
        + alert("every", ns, "every", ALL_KS),
    )
    sequence = [
        ("error", "build failed: 1", "main@sha1:1"),
        ("error", "build failed: 2", "main@sha1:1"),
        ("error", "build failed: 3", "main@sha1:1"),
        ("info", "applied", "main@sha1:1"),
        ("info", "applied again", "main@sha1:1"),
        ("info", "applied new", "main@sha1:2"),
    ]
    for severity, message, revision in sequence:
        emit(stack, "Kustomization", ns, "app", message, severity=severity, revision=revision)
    keys = [f"Alert/{ns}/changes", f"Alert/{ns}/every"]
    wait_for(lambda: len(stack.hooks.delivered("/transitions/every")) >= 6 and settled(stack, *keys))
    assert messages(stack, "/transitions/changes") == ["build failed: 1", "applied", "applied new"]
    assert messages(stack, "/transitions/every") == [m for _s, m, _r in sequence]


def test_a_provider_down_for_a_while_gets_everything_after_in_order_and_once(stack: Stack) -> None:
    ns = "outage"
    path = "/outage"
    stack.hooks.set(path, status=500)
    apply(
        stack,
        provider("hook", ns, stack.hooks.url(path)) + alert("all", ns, "hook", ALL_KS),
    )
    for i in range(8):
        emit(stack, "Kustomization", ns, "one", f"one {i}", severity="error")
        emit(stack, "Kustomization", ns, "two", f"two {i}", severity="error")
    wait_for(lambda: len(stack.hooks.received(path)) >= 6, what="failed attempts")
    stack.hooks.set(path, script=[429, 429], retry_after="1")
    wait_for(
        lambda: settled(stack, f"Alert/{ns}/all") and len(stack.hooks.delivered(path)) >= 16, timeout_s=60
    )

    got = messages(stack, path)
    assert [m for m in got if m.startswith("one")] == [f"one {i}" for i in range(8)]
    assert [m for m in got if m.startswith("two")] == [f"two {i}" for i in range(8)]
    statuses = {r.status for r in stack.hooks.received(path)}
    assert {500, 429, 200} <= statuses
    stats = stack.ctx.client.hgetall(stack.ctx.keys.notify_stats(f"Alert/{ns}/all"))
    assert stats["delivered"] == "16" and stats["pending"] == "0"


def test_a_timeout_is_retried(stack: Stack) -> None:
    ns = "stall"
    path = "/stall"
    stack.hooks.set(path, script=["stall"], stall_s=6.0)
    apply(
        stack,
        provider("hook", ns, stack.hooks.url(path), ", timeout: 3s") + alert("all", ns, "hook", ALL_KS),
    )
    emit(stack, "Kustomization", ns, "app", "slow one", severity="error")
    wait_for(lambda: len(stack.hooks.delivered(path)) >= 1 and settled(stack, f"Alert/{ns}/all"))
    assert [r.status for r in stack.hooks.received(path)] == [599, 200]


def test_a_4xx_ends_the_record_with_an_event_on_the_alert(stack: Stack) -> None:
    ns = "refused"
    path = "/refused"
    stack.hooks.set(path, status=403)
    apply(
        stack,
        provider("hook", ns, stack.hooks.url(path)) + alert("all", ns, "hook", ALL_KS),
    )
    emit(stack, "Kustomization", ns, "app", "will be refused", severity="error")
    alert_ref = ObjectRef("Alert", ns, "all")
    wait_for(lambda: stack.ctx.events.recent(ref=alert_ref), what="the failure event")
    [event] = stack.ctx.events.recent(ref=alert_ref)
    assert event.reason == "NotificationDispatchFailed" and event.severity == "error"
    assert "Kustomization/refused/app" in event.message and "HTTP 403" in event.message
    assert len(stack.hooks.received(path)) == 1
    stats = stack.ctx.client.hgetall(stack.ctx.keys.notify_stats(alert_ref.key))
    assert stats["failed"] == "1" and stats["pending"] == "0" and "403" in stats["lastError"]


def test_an_event_of_a_real_reconcile_is_delivered(stack: Stack) -> None:
    ns = "engine"
    apply(
        stack,
        f"""apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: missing, namespace: {ns}}}
spec: {{interval: 1h, url: "file:///nonexistent/repo.git"}}
---
"""
        + provider("hook", ns, stack.hooks.url("/engine"))
        + alert("git", ns, "hook", "[{kind: GitRepository, name: '*'}]", "  eventSeverity: error\n"),
    )
    stack.ctx.app.send_task(
        tasknames.RECONCILE,
        kwargs={"kind": "GitRepository", "namespace": ns, "name": "missing", "reason": "manual"},
    )
    wait_for(lambda: stack.hooks.delivered("/engine"), timeout_s=60, what="the failure notification")
    body = stack.hooks.delivered("/engine")[0].json()
    assert body["involvedObject"]["name"] == "missing" and body["severity"] == "error"
    assert stack.hooks.delivered("/engine")[0].headers["Gotk-Component"] == "source-controller"


def _flower_dispatches(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5) as resp:
            tasks: dict[str, Any] = json.loads(resp.read())
    except OSError:
        return None
    return tasks if any(t.get("name") == tasknames.NOTIFY_DISPATCH for t in tasks.values()) else None


def _write_secret(root: Path, ns: str, name: str, data: dict[str, str]) -> None:
    directory = root / ns / name
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (directory / key).write_text(value)


def test_secrets_stay_out_of_logs_events_task_arguments_and_redis(stack: Stack) -> None:
    ns = "secret"
    token = "tok-3f9a1c77d2e84b0b"
    header = "hdr-9c1e55aa07f4d3b2"
    path_token = "T0KEN1NPATHa8b7c6d5"
    ok_path = f"/secret/ok/{path_token}"
    bad_path = f"/secret/bad/{path_token}"
    stack.hooks.set(bad_path, status=401)
    _write_secret(
        stack.secrets,
        ns,
        "ok",
        {"address": stack.hooks.url(ok_path), "token": token, "headers": f"X-Api-Key: {header}\n"},
    )
    _write_secret(stack.secrets, ns, "bad", {"address": stack.hooks.url(bad_path), "token": token})
    apply(
        stack,
        provider("ok", ns, "", ", secretRef: {name: ok}")
        + provider("bad", ns, "", ", secretRef: {name: bad}")
        + alert("ok", ns, "ok", ALL_KS)
        + alert("bad", ns, "bad", ALL_KS),
    )
    port = free_port()
    flower = Proc(
        "flower",
        cli_argv("flower", "--port", str(port)),
        {**stack.env, "FLOWER_UNAUTHENTICATED_API": "true"},
        stack.worker.log_path.parent,
    )
    try:
        wait_for(lambda: flower_answers(port), timeout_s=60, what="Flower to answer")
        emit(stack, "Kustomization", ns, "app", "with secrets", severity="error")
        wait_for(lambda: stack.hooks.delivered(ok_path), what="the delivery with secrets")

        # Flower may start listening to task events after this test's dispatches ran: an event that
        # no Alert takes queues one more dispatch at each poll until Flower lists one.
        def listed() -> dict[str, Any] | None:
            emit(stack, "GitRepository", ns, "poke", f"poke {time.monotonic()}")
            return _flower_dispatches(port)

        tasks = wait_for(listed, timeout_s=60, interval_s=0.5, what="Flower to list a notify dispatch")
    finally:
        flower.stop()
    texts = [flower.log(), json.dumps(tasks)]
    assert stack.hooks.delivered(ok_path)[0].headers["X-Api-Key"] == header
    wait_for(lambda: stack.ctx.events.recent(ref=ObjectRef("Alert", ns, "bad")), what="the failure event")

    texts.append(stack.worker.log())
    texts += [json.dumps(e.__dict__) for e in stack.ctx.events.recent(count=1000)]
    client = stack.ctx.client
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == "string":
            texts.append(str(client.get(key)))
        elif kind == "hash":
            texts.append(json.dumps(client.hgetall(key)))
        elif kind == "list":
            texts.extend(client.lrange(key, 0, -1))
        elif kind == "zset":
            texts.extend(client.zrange(key, 0, -1))
        elif kind == "stream":
            texts.extend(json.dumps(f) for _i, f in client.xrange(key))
    joined = "\n".join(texts)
    for secret in (token, header, path_token):
        assert secret not in joined
    assert "Kustomization/secret/app" in joined  # the failure event was read


def test_providers_and_alerts_report_readiness_pending_and_last_error(stack: Stack) -> None:
    ns = "ready"
    path = "/ready/down"
    stack.hooks.set(path, status=503)
    apply(
        stack,
        provider("down", ns, stack.hooks.url(path))
        + provider("nosecret", ns, "", ", secretRef: {name: absent}")
        + alert("down", ns, "down", ALL_KS)
        + alert("orphan", ns, "missing", ALL_KS),
    )
    emit(stack, "Kustomization", ns, "app", "pending for now", severity="error")
    wait_for(lambda: len(stack.hooks.received(path)) >= 2, what="failed attempts")

    def ready(kind: str, name: str) -> dict[str, str]:
        conditions = stack.ctx.status.get(ObjectRef(kind, ns, name)).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Ready"), {})

    wait_for(lambda: ready("Alert", "orphan"), what="readiness")
    assert ready("Provider", "down")["status"] == "True"
    assert ready("Provider", "nosecret")["status"] == "False"
    assert ready("Provider", "nosecret")["reason"] == "SecretNotFound"
    assert ready("Alert", "down")["status"] == "True"
    assert ready("Alert", "orphan")["reason"] == "ProviderNotFound"

    shown = gitops_tasks(stack, "get", "providers", "-n", ns, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    rows = {row["name"]: row for row in json.loads(shown.stdout)["items"]}
    assert rows["down"]["delivery"]["pending"] == 1
    assert "HTTP 503" in rows["down"]["delivery"]["lastError"]
    table = gitops_tasks(stack, "get", "alerts", "-n", ns).stdout
    assert "1 pending" in table and "ProviderNotFound" in table
    stack.hooks.set(path, status=200)
    wait_for(lambda: settled(stack, f"Alert/{ns}/down"))


def test_a_storm_to_a_limited_host_is_sent_through_its_shared_bucket_and_nothing_is_dropped(
    stack: Stack,
) -> None:
    ns = "storm"
    path = "/storm"
    apply(stack, provider("hook", ns, stack.limited.url(path)) + alert("all", ns, "hook", ALL_KS))
    for i in range(12):
        emit(stack, "Kustomization", ns, f"app-{i}", f"storm {i}", severity="error")
    wait_for(lambda: len(stack.limited.delivered(path)) >= 12 and settled(stack, f"Alert/{ns}/all"))
    assert sorted(messages_of(stack.limited, path)) == sorted(f"storm {i}" for i in range(12))
    bucket = stack.ctx.client.hgetall(stack.ctx.keys.rate_bucket(f"127.0.0.1:{stack.limited.port}"))
    assert bucket, "the host's shared bucket was never used"
    assert {r.status for r in stack.limited.received(path)} == {200}


def test_notify_test_sends_a_test_message_and_reports_a_refusal(stack: Stack) -> None:
    ns = "cli"
    stack.hooks.set("/cli/refused", status=404)
    apply(
        stack,
        provider("ok", ns, stack.hooks.url("/cli/ok"))
        + provider("refused", ns, stack.hooks.url("/cli/refused")),
    )
    ok = gitops_tasks(stack, "notify", "test", "ok", "-n", ns)
    assert ok.returncode == 0, ok.stderr
    [sent] = stack.hooks.delivered("/cli/ok")
    assert sent.json()["reason"] == "Test" and sent.json()["involvedObject"]["name"] == "ok"
    refused = gitops_tasks(stack, "notify", "test", "refused", "-n", ns)
    assert refused.returncode == 1
    assert "HTTP 404" in refused.stderr and "/cli/refused" not in refused.stderr

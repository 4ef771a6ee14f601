"""Credentials never leak (logs, Flower, events, status, broker), and RabbitMQ works as the broker."""

from __future__ import annotations

import json
import secrets
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.gitservers import FileRemotes, SmartHTTPServer
from tests.procs import free_port, wait_for


def git_repository(name: str, url: str, *, secret: str | None = None, interval: str = "2s") -> str:
    ref = f"  secretRef:\n    name: {secret}\n" if secret else ""
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        f"spec:\n  interval: {interval}\n  timeout: 20s\n  url: {url}\n{ref}"
    )


def write_secret(secrets_dir: Path, name: str, **keys: str) -> None:
    directory = secrets_dir / "default" / name
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in keys.items():
        (directory / key).write_text(value)


def status(ctx, name: str) -> dict:
    raw = ctx.client.hget(ctx.keys.status, f"GitRepository/default/{name}")
    return json.loads(raw) if raw else {}


def ready_reason(ctx, name: str) -> str:
    conditions = {c["type"]: c for c in status(ctx, name).get("conditions", [])}
    ready = conditions.get("Ready", {})
    return f"{ready.get('status')}/{ready.get('reason')}" if ready else ""


def test_credentials_never_appear_in_logs_flower_events_status_or_broker(
    cli, ctx, procs, gt_env, tmp_path: Path
) -> None:
    # Given a private HTTP repository, a good secret, a wrong one, and a URL with a token in it
    password = "pw-" + secrets.token_hex(12)
    wrong = "wrong-" + secrets.token_hex(12)
    server = SmartHTTPServer(tmp_path / "http", username="deploy", password=password).start()
    try:
        repo = server.new_repo("private", {"a.yaml": "a: 1\n"})
        secrets_dir = Path(gt_env["GITOPS_TASKS_SECRETS_DIR"])
        write_secret(secrets_dir, "good", username="deploy", password=password)
        write_secret(secrets_dir, "bad", username="deploy", password=wrong)
        in_url = repo.url.replace("http://", f"http://deploy:{password}@")
        docs = [
            git_repository("with-secret", repo.url, secret="good"),
            git_repository("wrong-secret", repo.url, secret="bad"),
            git_repository("token-in-url", in_url),
            git_repository("token-in-url-wrong", repo.url.replace("http://", f"http://deploy:{wrong}@")),
        ]
        (tmp_path / "objects.yaml").write_text("---\n".join(docs))
        assert cli("apply", "-f", str(tmp_path / "objects.yaml")).returncode == 0
        flower_port = free_port()
        # DEBUG: every line a worker can write is swept, Celery's per-task lines with their arguments too
        debug = {"GITOPS_TASKS_LOG_LEVEL": "DEBUG"}
        worker = procs("worker", "-c", "4", env=debug)
        beat = procs("beat", env=debug)
        flower = procs("flower", "--port", str(flower_port), env={"FLOWER_UNAUTHENTICATED_API": "true"})

        # When they have been polled a few times, and reconciled by hand
        wait_for(lambda: ready_reason(ctx, "with-secret") == "True/Succeeded", what="authenticated poll")
        wait_for(lambda: ready_reason(ctx, "token-in-url") == "True/Succeeded", what="poll with URL token")
        wait_for(
            lambda: ready_reason(ctx, "wrong-secret") == "False/AuthenticationFailed", what="auth refused"
        )
        wait_for(
            lambda: ready_reason(ctx, "token-in-url-wrong") == "False/AuthenticationFailed", what="refused"
        )
        for name in ("wrong-secret", "token-in-url", "token-in-url-wrong"):
            cli("reconcile", "gitrepository", name, "--wait", "--timeout", "30s")
        assert any(c["type"] == "Stalled" for c in status(ctx, "wrong-secret")["conditions"])

        def flower_tasks() -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{flower_port}/api/tasks", timeout=5) as resp:
                return json.loads(resp.read())

        tasks = wait_for(lambda: _try(flower_tasks), timeout_s=30, what="Flower to list tasks")
        assert any(t.get("name") == "gitops.git.poll" for t in tasks.values())

        # Then neither password appears anywhere a person or another system can read
        seen = {
            "worker log": worker.log(),
            "beat log": beat.log(),
            "flower log": flower.log(),
            "flower api": json.dumps(tasks),
            "events": cli("events", "--limit", "500").stdout,
            "get yaml": cli("get", "gitrepository", "-o", "yaml").stdout,
            "get table": cli("get", "gitrepository").stdout,
            "redis": _dump_redis(ctx, skip={ctx.keys.catalog}),
        }
        for where, text in seen.items():
            assert password not in text, f"password leaked into {where}"
            assert wrong not in text, f"wrong password leaked into {where}"
        assert "deploy:***@" in seen["get yaml"]
    finally:
        server.stop()


def _try(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except OSError:
        return None


def _dump_redis(ctx, *, skip: set[str]) -> str:
    """Every value in the test's Redis database except ``skip`` (the declared objects themselves)."""
    out = []
    for key in ctx.client.scan_iter(count=1000):
        if key in skip:
            continue
        kind = ctx.client.type(key)
        if kind == "string":
            out.append(ctx.client.get(key) or "")
        elif kind == "hash":
            out.append(json.dumps(ctx.client.hgetall(key)))
        elif kind == "list":
            out.append(json.dumps(ctx.client.lrange(key, 0, -1)))
        elif kind == "zset":
            out.append(json.dumps(ctx.client.zrange(key, 0, -1)))
        elif kind == "stream":
            out.append(json.dumps(ctx.client.xrange(key)))
        elif kind == "set":
            out.append(json.dumps(sorted(ctx.client.smembers(key))))
    return "\n".join(out)


def _rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.rabbitmq
@pytest.mark.skipif(not _rabbitmq_reachable(), reason="no RabbitMQ broker answers on 127.0.0.1:5672")
def test_rabbitmq_as_broker_with_redis_for_state(cli, ctx, procs, tmp_path: Path) -> None:
    from kombu import Connection

    broker = "amqp://guest:guest@127.0.0.1:5672//"
    vhost_queues = ("git", "priority")
    with Connection(broker) as conn:
        channel = conn.channel()
        for queue in vhost_queues:
            try:
                channel.queue_purge(queue)
            except Exception:
                channel = conn.channel()
    remotes = FileRemotes(tmp_path / "remotes").start()
    repo = remotes.new_repo("over-amqp", {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(git_repository("over-amqp", repo.url, interval="2s"))
    env = {"GITOPS_TASKS_BROKER_URL": broker}
    assert cli("apply", "-f", str(tmp_path / "repo.yaml"), env=env).returncode == 0
    worker = procs("worker", "-c", "2", env=env)
    procs("beat", env=env)

    wait_for(
        lambda: ready_reason(ctx, "over-amqp") == "True/Succeeded", timeout_s=60, what="poll over RabbitMQ"
    )
    done = cli("reconcile", "gitrepository", "over-amqp", "--wait", "--timeout", "30s", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "amqp://guest:**@127.0.0.1:5672//" in worker.log() or "amqp://guest:***@" in worker.log()

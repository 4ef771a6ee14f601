"""The webhook receiver as a real process on a real Redis: every type's verification, the path Flux
computes, refusals (unknown paths, bad signatures, replays, oversized bodies, floods) and what a
verified hook queues on the priority queue. No worker runs: the queue itself shows what was asked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.procs import Proc, RedisServer, cli_argv, free_port, wait_for

NS = "hooks"
REPO_URL = "https://git.example.com/org/app"
GITHUB_REPO = {
    "clone_url": "https://git.example.com/org/app.git",
    "ssh_url": "git@git.example.com:org/app.git",
    "default_branch": "main",
}


@dataclass
class Hub:
    """One receiver process (window 1 s) and the environment of its installation."""

    env: dict[str, str]
    prefix: str
    client: redis.Redis
    port: int
    secrets_dir: Path
    work: Path
    proc: Proc

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli_argv(*args), env=self.env, capture_output=True, text=True, timeout=60)

    def apply(self, name: str, text: str) -> None:
        """Apply as ``gitops-tasks apply`` does (validated, all or nothing), in this process."""
        from beat_schedule import entry_for
        from gitops_tasks.objects import load_text
        from gitops_tasks.settings import Settings
        from gitops_tasks.store import Catalog, Keys

        objects = load_text(text, filename=f"{name}.yaml")
        keys = Keys(Settings.from_env(self.env).key_prefix)
        Catalog(self.client, keys).apply(objects, entry_for=entry_for)

    def token(self, secret: str, value: str) -> None:
        directory = self.secrets_dir / NS / secret
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(value)

    def webhook_path(self, receiver: str) -> str:
        """The path the receiver wrote in the Receiver's status (once its table holds it)."""
        raw = self.client.hget(f"{self.prefix}status", f"Receiver/{NS}/{receiver}")
        return str(json.loads(raw).get("webhookPath", "")) if raw else ""

    def queued(self) -> list[tuple[str, str]]:
        """``(object key, reason)`` of the tasks waiting on the priority queue."""
        out = []
        for raw in self.client.lrange(f"{self.prefix}priority", 0, -1):
            kwargs = json.loads(base64.b64decode(json.loads(raw)["body"]))[1]
            out.append((f"{kwargs['kind']}/{kwargs['namespace']}/{kwargs['name']}", kwargs["reason"]))
        return sorted(out)

    def queued_for(self, receiver: str) -> list[str]:
        return [key for key, reason in self.queued() if reason == f"webhook {NS}/{receiver}"]


def post(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method="POST", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - http://127.0.0.1
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def flux_path(token: str, name: str, namespace: str = NS) -> str:
    return "/hook/" + hashlib.sha256((token + name + namespace).encode()).hexdigest()


def start_receiver(env: dict[str, str], log_dir: Path, name: str, *args: str) -> tuple[Proc, int]:
    port = free_port()
    proc = Proc(name, cli_argv("receiver", "--port", str(port), *args), env, log_dir)
    wait_for(lambda: get(port, "/readyz") == 200, timeout_s=30, what=f"{name} ready")
    return proc, port


@pytest.fixture(scope="module")
def hub(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    import os

    work = tmp_path_factory.mktemp("receiver")
    prefix = f"rcv{secrets.token_hex(4)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_TASKS_", "FLOWER_"))}
    env.update(
        GITOPS_TASKS_REDIS_URL=redis_server.url(0),
        GITOPS_TASKS_KEY_PREFIX=prefix,
        GITOPS_TASKS_DATA_DIR=str(work / "data"),
        GITOPS_TASKS_SECRETS_DIR=str(work / "secrets"),
        PYTHONUNBUFFERED="1",
    )
    (work / "logs").mkdir()
    proc, port = start_receiver(
        env,
        work / "logs",
        "receiver",
        "--window",
        "1",
        "--rate",
        "1000",
        "--burst",
        "1000",
        "--refresh",
        "0.5",
    )
    client = redis.Redis.from_url(redis_server.url(0), decode_responses=True)
    hub = Hub(env, prefix, client, port, work / "secrets", work, proc)
    yield hub
    proc.stop()
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def receiver_yaml(name: str, kind: str, resources: str, extra: str = "") -> str:
    return (
        "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\n"
        f"metadata:\n  name: {name}\n  namespace: {NS}\n"
        f"spec:\n  type: {kind}\n  secretRef:\n    name: {name}-token\n{extra}  resources:\n{resources}"
    )


def git_repo_yaml(name: str, url: str = REPO_URL, ref: str = "branch: main", labels: str = "") -> str:
    meta = f"  labels:\n{labels}" if labels else ""
    return (
        "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: {NS}\n{meta}"
        f"spec:\n  interval: 10m\n  url: {url}\n  ref:\n    {ref}\n"
    )


def image_repo_yaml(name: str, image: str) -> str:
    return (
        "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        f"metadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  interval: 10m\n  image: {image}\n"
    )


def one(kind: str, name: str) -> str:
    return f"  - kind: {kind}\n    name: {name}\n"


def ready_receiver(hub: Hub, name: str, kind: str, resources: str, objects: str, extra: str = "") -> str:
    """Apply a Receiver of ``kind`` (and ``objects``) with a fresh token; its path once served."""
    token = secrets.token_hex(16)
    hub.token(f"{name}-token", token)
    hub.apply(name, receiver_yaml(name, kind, resources, extra) + objects)
    path = flux_path(token, name)
    wait_for(lambda: hub.webhook_path(name) == path, what=f"Receiver {name} served")
    return token


def hmac_hex(token: str, body: bytes, algo: str = "sha256") -> str:
    return hmac.new(token.encode(), body, algo).hexdigest()


GITHUB_PUSH = json.dumps({"ref": "refs/heads/main", "repository": GITHUB_REPO}).encode()
GITLAB_PUSH = json.dumps(
    {"ref": "refs/heads/main", "project": {"git_http_url": REPO_URL + ".git", "default_branch": "main"}}
).encode()
DOCKERHUB = json.dumps({"push_data": {"tag": "1.2.3"}, "repository": {"repo_name": "org/app"}}).encode()
QUAY = json.dumps({"docker_url": "quay.io/org/app", "updated_tags": ["1.2.3"]}).encode()
HARBOR = json.dumps(
    {"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"resource_url": "harbor.example.com/org/app:1"}]}}
).encode()
ACR = json.dumps(
    {"action": "push", "target": {"repository": "app", "tag": "1"}, "request": {"host": "r.azurecr.io"}}
).encode()
NEXUS = json.dumps({"action": "CREATED", "repositoryName": "docker-hosted"}).encode()


def signed(kind: str, token: str) -> tuple[bytes, dict[str, str]]:
    """A request each type accepts: body and headers, signed with ``token`` as the sender signs."""
    if kind == "generic":
        return b"", {}
    if kind == "generic-hmac":
        body = b'{"anything": true}'
        return body, {"X-Signature": "sha512=" + hmac_hex(token, body, "sha512")}
    if kind == "github":
        return GITHUB_PUSH, {
            "X-Hub-Signature-256": "sha256=" + hmac_hex(token, GITHUB_PUSH),
            "X-GitHub-Event": "push",
            "Content-Type": "application/json",
        }
    if kind == "gitlab":
        return GITLAB_PUSH, {"X-Gitlab-Token": token, "X-Gitlab-Event": "Push Hook"}
    if kind == "bitbucket":
        body = b'{"eventKey": "repo:refs_changed"}'
        return body, {
            "X-Hub-Signature": "sha256=" + hmac_hex(token, body),
            "X-Event-Key": "repo:refs_changed",
        }
    if kind == "harbor":
        return HARBOR, {"Authorization": token}
    if kind == "nexus":
        return NEXUS, {"X-Nexus-Webhook-Signature": hmac_hex(token, NEXUS, "sha1")}
    return {"dockerhub": DOCKERHUB, "quay": QUAY, "acr": ACR}[kind], {}


ALL_TYPES = (
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "nexus",
    "acr",
)
SIGNED_TYPES = ("generic-hmac", "github", "gitlab", "bitbucket", "harbor", "nexus")


def test_get_receivers_shows_the_path_flux_computes_and_unknown_paths_are_404(hub: Hub) -> None:
    token = ready_receiver(
        hub, "shown", "generic", one("GitRepository", "shown-repo"), git_repo_yaml("shown-repo")
    )
    path = flux_path(token, "shown")
    listed = json.loads(hub.cli("get", "receivers", "-n", NS, "-o", "json").stdout)["items"]
    shown = next(item for item in listed if item["name"] == "shown")
    assert shown["status"]["webhookPath"] == path
    assert shown["message"] == f"Receiver initialized for path: {path}"
    assert path in hub.cli("get", "receivers", "-n", NS).stdout
    assert post(hub.port, "/hook/" + "0" * 64, b"")[0] == 404
    assert get(hub.port, "/healthz") == 200 and get(hub.port, "/readyz") == 200


def test_a_receiver_whose_secret_is_missing_is_not_ready(hub: Hub) -> None:
    hub.apply("nosecret", receiver_yaml("nosecret", "generic", one("GitRepository", "x")))

    def status() -> dict[str, Any]:
        listed = json.loads(hub.cli("get", "receivers", "-n", NS, "-o", "json").stdout)["items"]
        return next((i for i in listed if i["name"] == "nosecret" and i["reason"]), {})

    found = wait_for(status, what="status of Receiver nosecret")
    assert found["ready"] == "False" and found["reason"] == "TokenNotFound"
    assert f"Secret {NS}/nosecret-token" in found["message"]


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_a_signed_request_of_every_type_queues_its_resource_on_priority(hub: Hub, kind: str) -> None:
    name = f"ok-{kind}"
    token = ready_receiver(
        hub, name, kind, one("GitRepository", f"{name}-repo"), git_repo_yaml(f"{name}-repo")
    )
    body, headers = signed(kind, token)
    status, answer = post(hub.port, flux_path(token, name), body, headers)
    assert (status, answer.get("requested")) == (200, 1), answer
    assert hub.queued_for(name) == [f"GitRepository/{NS}/{name}-repo"]


@pytest.mark.parametrize("kind", SIGNED_TYPES)
def test_a_bad_signature_or_token_is_401_and_queues_nothing(hub: Hub, kind: str) -> None:
    name = f"bad-{kind}"
    token = ready_receiver(
        hub, name, kind, one("GitRepository", f"{name}-repo"), git_repo_yaml(f"{name}-repo")
    )
    body, headers = signed(kind, "not-the-token")
    assert post(hub.port, flux_path(token, name), body, headers)[0] == 401
    unsigned = {k: v for k, v in signed(kind, token)[1].items() if "Signature" not in k and "Token" not in k}
    unsigned.pop("Authorization", None)
    assert post(hub.port, flux_path(token, name), body, unsigned)[0] == 401
    assert hub.queued_for(name) == []


def test_a_replayed_delivery_queues_nothing_and_a_tampered_body_is_401(hub: Hub) -> None:
    token = ready_receiver(
        hub, "replay", "github", one("GitRepository", "replay-repo"), git_repo_yaml("replay-repo")
    )
    path = flux_path(token, "replay")
    body, headers = signed("github", token)
    headers["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert post(hub.port, path, body, headers) == (200, {"message": "ok", "requested": 1})
    time.sleep(1.2)  # past the throttle window: only the delivery id stops the replay
    assert post(hub.port, path, body, headers) == (
        200,
        {"message": "delivery already handled", "requested": 0},
    )
    tampered = body.replace(b"refs/heads/main", b"refs/heads/evil")
    assert post(hub.port, path, tampered, {**headers, "X-GitHub-Delivery": "other"})[0] == 401
    assert hub.queued_for("replay") == [f"GitRepository/{NS}/replay-repo"]


def test_an_oversized_body_is_413_and_queues_nothing(hub: Hub) -> None:
    token = ready_receiver(hub, "big", "generic", one("GitRepository", "big-repo"), git_repo_yaml("big-repo"))
    status, _ = post(hub.port, flux_path(token, "big"), b"x" * (3 * 1024 * 1024 + 1))
    assert status == 413
    assert hub.queued_for("big") == []


def test_ping_is_answered_an_unlisted_event_is_refused_and_a_suspended_receiver_is_503(hub: Hub) -> None:
    resources = one("GitRepository", "ev-repo")
    token = ready_receiver(hub, "ev", "github", resources, git_repo_yaml("ev-repo"), "  events: [push]\n")
    path = flux_path(token, "ev")
    ping = b'{"zen": "Keep it simple."}'
    sig = {"X-Hub-Signature-256": "sha256=" + hmac_hex(token, ping)}
    assert post(hub.port, path, ping, {**sig, "X-GitHub-Event": "ping"}) == (200, {"message": "pong"})
    assert post(hub.port, path, ping, {**sig, "X-GitHub-Event": "issues"})[0] == 400
    assert hub.queued_for("ev") == []
    hub.apply("ev", receiver_yaml("ev", "github", resources, "  events: [push]\n  suspend: true\n"))
    body, headers = signed("github", token)
    assert wait_for(lambda: post(hub.port, path, body, headers)[0] == 503, what="suspension seen")


def test_a_push_reconciles_only_the_repositories_that_follow_the_pushed_branch(hub: Hub) -> None:
    labels = "    app: demo\n"
    objects = (
        git_repo_yaml("app-main", labels=labels)
        + git_repo_yaml("app-ssh", url="ssh://git@git.example.com/org/app.git", labels=labels)
        + git_repo_yaml("app-dev", ref="branch: dev", labels=labels)
        + git_repo_yaml("app-tags", ref="semver: '>=1.0.0'", labels=labels)
        + git_repo_yaml("other-main", url="https://git.example.com/org/other", labels=labels)
    )
    resources = "  - kind: GitRepository\n    name: '*'\n    matchLabels:\n      app: demo\n"
    for kind in ("github", "gitlab"):
        name = f"push-{kind}"
        token = ready_receiver(hub, name, kind, resources, objects)
        body, headers = signed(kind, token)
        assert post(hub.port, flux_path(token, name), body, headers)[0] == 200
        assert hub.queued_for(name) == [f"GitRepository/{NS}/app-main", f"GitRepository/{NS}/app-ssh"]
    tag = json.dumps({"ref": "refs/tags/v1.1.0", "repository": GITHUB_REPO}).encode()
    token = ready_receiver(hub, "push-tag", "github", resources, "")
    sig = {"X-Hub-Signature-256": "sha256=" + hmac_hex(token, tag), "X-GitHub-Event": "push"}
    sig["Content-Type"] = "application/json"
    assert post(hub.port, flux_path(token, "push-tag"), tag, sig)[0] == 200
    assert hub.queued_for("push-tag") == [f"GitRepository/{NS}/app-tags"]


def test_a_registry_hook_scans_only_the_image_it_names(hub: Hub) -> None:
    objects = image_repo_yaml("img-app", "org/app") + image_repo_yaml("img-other", "org/other")
    resources = one("ImageRepository", "img-app") + one("ImageRepository", "img-other")
    token = ready_receiver(hub, "dockerhub-img", "dockerhub", resources, objects)
    assert post(hub.port, flux_path(token, "dockerhub-img"), DOCKERHUB)[0] == 200
    assert hub.queued_for("dockerhub-img") == [f"ImageRepository/{NS}/img-app"]


def test_a_flood_for_one_object_queues_one_run_now_and_one_trailing_run(hub: Hub) -> None:
    token = ready_receiver(
        hub, "flood", "generic", one("GitRepository", "flood-repo"), git_repo_yaml("flood-repo")
    )
    # A window far longer than the flood takes to send, whatever the machine's load
    args = ("--window", "120", "--rate", "1000", "--burst", "1000")
    proc, port = start_receiver(hub.env, hub.work / "logs", "receiver-flood", *args)
    try:
        answers = {post(port, flux_path(token, "flood"), b"")[0] for _ in range(50)}
    finally:
        proc.stop()
    assert answers == {200}
    assert hub.queued_for("flood") == [f"GitRepository/{NS}/flood-repo"] * 2


def test_requests_beyond_a_paths_rate_are_429(hub: Hub) -> None:
    token = ready_receiver(
        hub, "limited", "generic", one("GitRepository", "lim-repo"), git_repo_yaml("lim-repo")
    )
    proc, port = start_receiver(
        hub.env, hub.work / "logs", "receiver-limited", "--rate", "0.5", "--burst", "2"
    )
    try:
        codes = [post(port, flux_path(token, "limited"), b"")[0] for _ in range(5)]
    finally:
        proc.stop()
    assert codes[:2] == [200, 200] and set(codes[2:]) == {429}


def test_the_receiver_serves_prometheus_metrics_counting_answers_by_status(hub: Hub) -> None:
    def answered(code: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        line = f'gitops_tasks_receiver_requests_total{{code="{code}"}} '
        return next((float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)), 0.0)

    before = answered("404")
    assert post(hub.port, "/hook/" + "1" * 64, b"")[0] == 404
    assert answered("404") == before + 1

"""SOPS with real processes: a worker decrypts an encrypted Secret from Git and applies it, a
tampered file fails, and no plaintext reaches the logs, events, status, Redis or the disk."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gitops_tasks import tasknames
from gitops_tasks.sync.cluster import Cluster
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.procs import wait_for
from tests.sopskeys import age_key, encrypt

pytestmark = [
    pytest.mark.skipif(
        "Kustomization" not in tasknames.TASK_BY_KIND, reason="the sync task is not wired into tasknames yet"
    ),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"),
]

#: The decrypted value, and a value committed unencrypted where sops expects ciphertext (sops quotes
#: it in its error, which must not be passed on).
PLAINTEXT = "plaintext-8c1f2e-correct-horse"
TAMPERED = "tampered-5d9a77-battery-staple"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with kube_target(tmp_path / "kube") as target:
        yield target


def redis_contents(url: str) -> bytes:
    """Every key and value of the test's Redis database, as one blob."""
    client = redis.Redis.from_url(url)
    out: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            out.append(key)
            kind = client.type(key).decode()
            if kind == "string":
                out.append(client.get(key) or b"")
            elif kind == "hash":
                out += [b for kv in client.hgetall(key).items() for b in kv]
            elif kind == "list":
                out += client.lrange(key, 0, -1)
            elif kind == "set":
                out += list(client.smembers(key))
            elif kind == "zset":
                out += client.zrange(key, 0, -1)
            elif kind == "stream":
                out += [
                    json.dumps({k.decode(): v.decode() for k, v in f.items()}).encode()
                    for _, f in client.xrange(key)
                ]
    finally:
        client.close()
    return b"\n".join(out)


def files_under(directory: Path) -> Iterator[Path]:
    for base, _dirs, files in os.walk(directory):
        for name in files:
            yield Path(base) / name


def test_a_worker_applies_decrypted_secrets_and_plaintext_goes_nowhere_else(
    cli: Any,
    ctx: Any,
    procs: Any,
    kube: KubeTarget,
    file_remote: RemoteRepo,
    tmp_path: Path,
    gt_env: dict[str, str],
) -> None:
    # Given an age key in the secrets directory, a repository with an encrypted Secret (./good)
    # and a tampered one (./bad), and a Kustomization for each
    key = age_key()
    keys = Path(gt_env["GITOPS_TASKS_SECRETS_DIR"]) / "default" / "sops-age"
    keys.mkdir(parents=True)
    (keys / "identity.agekey").write_text(key.identity)
    ns = unique_name("e2e-sops")
    good = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns}}
    sealed = encrypt(dump({**good, "stringData": {"password": PLAINTEXT}}), "yaml", age=key.recipient)
    bad = sealed.replace("name: db", "name: db-bad")
    bad = bad[: bad.index("password: ENC[")] + f"password: {TAMPERED}\n" + bad[bad.index("\nsops:") + 1 :]
    overlay = (
        f"namespace: {ns}\nresources: [ns.yaml, db.yaml]\n"
        "generatorOptions: {disableNameSuffixHash: true}\n"
        "secretGenerator:\n- name: env\n  envs: [app.env]\n"
    )
    env_file = encrypt(f"TOKEN={PLAINTEXT}\n", "dotenv", age=key.recipient)
    file_remote.commit(
        {
            "good/kustomization.yaml": overlay,
            "good/ns.yaml": dump(namespace(ns)),
            "good/db.yaml": sealed,
            "good/app.env": env_file,
            "bad/db.yaml": bad,
        }
    )
    source = (
        "sourceRef: {kind: GitRepository, name: repo}, "
        "decryption: {provider: sops, secretRef: {name: sops-age}}"
    )
    objects = tmp_path / "objects.yaml"
    objects.write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: repo}\n"
        f"spec: {{url: '{file_remote.url}', interval: 1m, ref: {{branch: main}}}}\n---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: good}\n"
        f"spec: {{interval: 1h, prune: true, path: ./good, {source}}}\n---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: bad}\n"
        f"spec: {{interval: 1h, prune: true, path: ./bad, {source}}}\n"
    )
    assert cli("apply", "-f", str(objects)).returncode == 0
    # When a worker with a temporary directory of its own syncs them
    tmp = tmp_path / "worker-tmp"
    tmp.mkdir()
    env = {"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig), "TMPDIR": str(tmp)}
    worker = procs("worker", "-c", "2", env=env)
    beat = procs("beat", env=env)
    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    try:

        def status(name: str) -> dict[str, Any]:
            raw = ctx.client.hget(ctx.keys.status, f"Kustomization/default/{name}")
            return json.loads(raw) if raw else {}

        def reason(name: str) -> str | None:
            ready = [c for c in status(name).get("conditions", []) if c.get("type") == "Ready"]
            return ready[0].get("reason") if ready else None

        # Then the good Secret reaches the cluster decrypted
        wait_for(lambda: cluster.get("v1", "Secret", "db", ns) is not None, what="the Secret applied")
        live = cluster.get("v1", "Secret", "db", ns)
        assert live is not None and base64.b64decode(live["data"]["password"]).decode() == PLAINTEXT
        generated = cluster.get("v1", "Secret", "env", ns)
        assert generated is not None and base64.b64decode(generated["data"]["TOKEN"]).decode() == PLAINTEXT
        # And the tampered one fails, naming its file
        wait_for(lambda: reason("bad") == "DecryptionFailed", what="the tampered file refused")
        wait_for(lambda: reason("good") == "ReconciliationSucceeded", what="the good one ready")
        message = next(c["message"] for c in status("bad")["conditions"] if c["type"] == "Ready")
        assert message.startswith("bad/db.yaml: a value that should be encrypted is not"), message
        events = cli("events").stdout
        assert "DecryptionFailed" in events and "bad/db.yaml" in events, events
        assert cluster.get("v1", "Secret", "db-bad", ns) is None
    finally:
        worker.stop()
        beat.stop()
        cluster.delete("v1", "Namespace", ns)
        cluster.close()
    # And neither value is anywhere else: logs, events, status and every other Redis key, or the
    # worker's temporary directory (nothing of the checkout or the keys is left there either)
    secrets = [PLAINTEXT, TAMPERED]
    encoded = [base64.b64encode(s.encode()).decode() for s in secrets]
    logs = worker.log() + beat.log()
    assert "Kustomization default/bad: stalled DecryptionFailed: bad/db.yaml" in logs  # the runs were logged
    for text in [*secrets, *encoded]:
        assert text not in logs
        assert text not in events
        assert text.encode() not in redis_contents(gt_env["GITOPS_TASKS_REDIS_URL"])
    leftovers = list(files_under(tmp))
    for path in leftovers:
        content = path.read_bytes()
        assert not any(s.encode() in content for s in secrets), path
    assert not [p for p in tmp.iterdir() if p.name.startswith(("gitops-tasks-keys-", "gitops-tasks-sync-"))]

"""Registry credentials from the configured cluster: a secretRef Secret and a service account's
imagePullSecrets, read through the Kubernetes API (the emulator, or GITOPS_TASKS_TEST_KUBECONFIG)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_tasks.registry.reconcile import reconcile
from gitops_tasks.settings import Settings
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.tasks.registry import DEFAULT_CLUSTER_CACHE_TTL_S, KubeSecrets, cluster_secrets
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.registryfixtures import REGISTRY_PASSWORD, REGISTRY_USERNAME, image_repository
from tests.registryservers import DockerRegistry


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


def pull_secret(name: str, namespace: str, host: str, password: str) -> dict:
    auth = base64.b64encode(f"{REGISTRY_USERNAME}:{password}".encode()).decode()
    config = {"auths": {host: {"username": REGISTRY_USERNAME, "password": password, "auth": auth}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": namespace},
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def test_credentials_come_from_cluster_secrets_and_service_accounts(
    kube: KubeTarget, docker_registry_auth: DockerRegistry, image_path: str, registry_kit, tmp_path: Path
) -> None:
    # Given a private image, and credentials that exist only in the cluster (no secrets directory)
    docker_registry_auth.push(image_path, "1.0.0", "1.1.0")
    host = docker_registry_auth.host
    ns = unique_name("pull")
    admin = Cluster.from_kubeconfig(kube.kubeconfig)
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    admin.apply(pull_secret("regcred", ns, host, REGISTRY_PASSWORD))
    admin.apply(pull_secret("stale", ns, host, "not-the-password"))
    admin.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "scanner", "namespace": ns},
            "imagePullSecrets": [{"name": "regcred"}],
        }
    )
    cluster = cluster_secrets(Settings(kubeconfig=kube.kubeconfig))
    assert cluster is not None
    kit = registry_kit()
    image = f"{host}/{image_path}"

    def scan(**spec: object):  # type: ignore[no-untyped-def]
        obj = image_repository("app", image, insecure=True, **spec)
        obj.namespace = ns
        return reconcile(
            obj,
            {},
            client=kit.client,
            store=kit.store,
            secrets_dir=tmp_path,
            docker_config=False,
            cluster=cluster,
        )

    try:
        # When the ImageRepository names the Secret, or a service account that lists it
        by_secret = scan(secretRef={"name": "regcred"})
        by_account = scan(serviceAccountName="scanner")
        # Then both scans authenticate with the cluster's credentials
        assert by_secret.result == "success", by_secret.message
        assert by_account.result == "success", by_account.message
        assert by_account.facts["lastScanResult"]["tagCount"] == 2
        # And wrong or missing ones are clear, stalled failures that leak no password
        wrong = scan(secretRef={"name": "stale"})
        assert (wrong.result, wrong.reason) == ("stalled", "AuthenticationFailed")
        assert "not-the-password" not in wrong.message
        missing = scan(serviceAccountName="nobody")
        assert (missing.result, missing.reason) == ("stalled", "SecretNotFound")
        assert f"service account {ns}/nobody not found" in missing.message
        # And without a cluster there are no cluster credentials at all
        assert cluster_secrets(Settings()) is None
    finally:
        admin.delete("v1", "Namespace", ns)
        admin.close()


def test_cluster_secrets_are_cached_for_their_ttl_and_a_changed_secret_is_read_again(
    kube: KubeTarget, docker_registry_auth: DockerRegistry, image_path: str, registry_kit, tmp_path: Path
) -> None:
    # Given a private image, a pull Secret in the cluster, and cluster reads cached with the
    # default TTL on a clock the test moves
    docker_registry_auth.push(image_path, "1.0.0")
    host = docker_registry_auth.host
    ns = unique_name("ttl")
    admin = Cluster.from_kubeconfig(kube.kubeconfig)
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    admin.apply(pull_secret("regcred", ns, host, REGISTRY_PASSWORD))
    now = [1000.0]
    reader = Cluster.from_kubeconfig(kube.kubeconfig)
    cluster = KubeSecrets(reader, clock=lambda: now[0])
    kit = registry_kit()

    def scan(secret: str):  # type: ignore[no-untyped-def]
        obj = image_repository("app", f"{host}/{image_path}", insecure=True, secretRef={"name": secret})
        obj.namespace = ns
        return reconcile(
            obj,
            {},
            client=kit.client,
            store=kit.store,
            secrets_dir=tmp_path,
            docker_config=False,
            cluster=cluster,
        )

    try:
        assert scan("regcred").result == "success"
        # When the Secret changes to a wrong password
        admin.apply(pull_secret("regcred", ns, host, "changed-password-1"))
        # Then scans within the TTL use what was read (no API request), and the first one after it
        # reads the change
        now[0] += DEFAULT_CLUSTER_CACHE_TTL_S - 1
        assert scan("regcred").result == "success"
        now[0] += 2
        changed = scan("regcred")
        assert (changed.result, changed.reason) == ("stalled", "AuthenticationFailed")
        assert "changed-password-1" not in changed.message
        # And a missing Secret is not remembered: once it exists, the next scan finds it
        missing = scan("later")
        assert (missing.result, missing.reason) == ("stalled", "SecretNotFound")
        admin.apply(pull_secret("later", ns, host, REGISTRY_PASSWORD))
        assert scan("later").result == "success"
        # And cluster_secrets takes the TTL as a parameter
        configured = cluster_secrets(Settings(kubeconfig=kube.kubeconfig), ttl_s=5.0)
        assert isinstance(configured, KubeSecrets) and configured.ttl_s == 5.0
        configured.cluster.close()
    finally:
        admin.delete("v1", "Namespace", ns)
        admin.close()
        reader.close()

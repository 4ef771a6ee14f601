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
from gitops_tasks.tasks.registry import cluster_secrets
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

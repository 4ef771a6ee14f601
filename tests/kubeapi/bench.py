"""How fast the emulator serves server-side apply through the official client.

``python -m tests.kubeapi.bench [count]`` applies ``count`` Deployments (half of them again with a
change, so both creates and updates are measured) with the dynamic client and prints the rate.
"""

from __future__ import annotations

import sys
import tempfile
import time
from typing import Any

from kubernetes import dynamic

from tests.kubeapi import KubeAPIServer


def _deployment(index: int, image_tag: int) -> dict[str, Any]:
    labels = {"app": f"app-{index}", "app.kubernetes.io/managed-by": "gitops-tasks"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"app-{index}", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": f"app-{index}"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": f"registry.example/app:{image_tag}",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }


def run(count: int) -> float:
    """Seconds for ``count`` applies (creates, then updates of half of them)."""
    with KubeAPIServer() as server, tempfile.TemporaryDirectory() as scratch:
        api = server.api_client()
        client = dynamic.DynamicClient(api, cache_file=f"{scratch}/discovery.json")
        deployments = client.resources.get(api_version="apps/v1", kind="Deployment")
        creates = count - count // 2
        started = time.perf_counter()
        for index in range(creates):
            deployments.server_side_apply(body=_deployment(index, 1), field_manager="gitops-tasks")
        for index in range(count - creates):
            deployments.server_side_apply(body=_deployment(index, 2), field_manager="gitops-tasks")
        elapsed = time.perf_counter() - started
        api.close()
    return elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    elapsed = run(count)
    rate, each_ms = count / elapsed, elapsed / count * 1000
    print(f"{count} server-side applies in {elapsed:.2f}s ({rate:.0f}/s, {each_ms:.2f} ms each)")


if __name__ == "__main__":
    main()

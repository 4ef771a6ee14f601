"""Where cluster tests run: this emulator, or a real cluster named by ``GITOPS_TASKS_TEST_KUBECONFIG``.

No pytest dependency here (benchmarks may reuse it). A test module wraps :func:`kube_target` in a
fixture; tests then reach the cluster only through ``target.kubeconfig`` / ``target.api_client()``,
create their objects in namespaces named by :func:`unique_name`, and use ``target.emulator`` (None on a
real cluster) only for what no real cluster offers (``deletions``, ``set_status``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kubeapi.server import KubeAPIServer

#: A kubeconfig path (its current context is used) that replaces the emulator with a real cluster.
KUBECONFIG_ENV = "GITOPS_TASKS_TEST_KUBECONFIG"


@dataclass
class KubeTarget:
    kubeconfig: Path
    emulator: KubeAPIServer | None

    def api_client(self) -> Any:
        """A fresh ``kubernetes.client.ApiClient``; the caller closes it."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))


@contextmanager
def kube_target(directory: Path) -> Iterator[KubeTarget]:
    """The real cluster when ``GITOPS_TASKS_TEST_KUBECONFIG`` is set, else a started emulator."""
    real = os.environ.get(KUBECONFIG_ENV)
    if real:
        yield KubeTarget(Path(real), None)
        return
    with KubeAPIServer() as server:
        yield KubeTarget(server.kubeconfig(directory / "kubeconfig"), server)


def unique_name(prefix: str) -> str:
    """A DNS-label-safe name no other test (or earlier run on a shared cluster) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"

"""A Kubernetes API server emulator for tests: real HTTP, the official client and kubectl talk to it.

The concern: give cluster-sync tests the API semantics they rely on (server-side apply with managed
fields, conflicts and field removal; label and field selectors; dryRun; resourceVersion conflicts;
namespaces; CRDs registering their types; deletion propagation; immutable fields; watch) without a
kube-apiserver. Everything is in memory in the test process; the only I/O is the loopback HTTP server in
``server.py``. It imports nothing from ``gitops_tasks``. README.md lists what is and is not emulated; a
real cluster substitutes through a kubeconfig (``fixtures.py``).
"""

from tests.kubeapi.server import KubeAPIServer

__all__ = ["KubeAPIServer"]

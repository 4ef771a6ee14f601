"""Resource types the emulator serves, and the discovery documents describing them.

Built-in types are a fixed table; a CustomResourceDefinition adds one type per served version as soon as
it is written and removes them when it is deleted. Pure data: the store holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi.schema import BuiltinNode, CRDNode, SchemaNode

#: Verbs advertised for every resource.
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a status subresource: main-resource writes keep the live status
    crd: str = ""  # name of the defining CustomResourceDefinition, "" for built-ins
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def root_schema(self) -> SchemaNode:
        if self.crd:
            return CRDNode(self.schema)
        return BuiltinNode(self.kind, ())

    def discovery(self) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        out = [main]
        if self.status:
            out.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return out


def _rt(
    gv: str, kind: str, plural: str, namespaced: bool, short: str = "", status: bool = False
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(
        group, version, kind, plural, kind.lower(), namespaced, tuple(short.split()), status=status
    )


BUILTINS: tuple[ResourceType, ...] = (
    _rt("v1", "Namespace", "namespaces", False, "ns", status=True),
    _rt("v1", "ConfigMap", "configmaps", True, "cm"),
    _rt("v1", "Secret", "secrets", True),
    _rt("v1", "Service", "services", True, "svc", status=True),
    _rt("v1", "ServiceAccount", "serviceaccounts", True, "sa"),
    _rt("v1", "Pod", "pods", True, "po", status=True),
    _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, "pvc", status=True),
    _rt("v1", "PersistentVolume", "persistentvolumes", False, "pv", status=True),
    _rt("v1", "Event", "events", True, "ev"),
    _rt("apps/v1", "Deployment", "deployments", True, "deploy", status=True),
    _rt("apps/v1", "StatefulSet", "statefulsets", True, "sts", status=True),
    _rt("apps/v1", "DaemonSet", "daemonsets", True, "ds", status=True),
    _rt("apps/v1", "ReplicaSet", "replicasets", True, "rs", status=True),
    _rt("batch/v1", "Job", "jobs", True, status=True),
    _rt("batch/v1", "CronJob", "cronjobs", True, "cj", status=True),
    _rt("networking.k8s.io/v1", "Ingress", "ingresses", True, "ing", status=True),
    _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, "netpol"),
    _rt("rbac.authorization.k8s.io/v1", "Role", "roles", True),
    _rt("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        "crd crds",
        status=True,
    ),
    _rt("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, "hpa", status=True),
    _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, "pdb", status=True),
    _rt("storage.k8s.io/v1", "StorageClass", "storageclasses", False, "sc"),
)


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                status="status" in (version.get("subresources") or {}),
                crd=crd["metadata"]["name"],
                schema=schema,
            )
        )
    return out


class Registry:
    """Served resource types by group/version and plural; callers hold the store lock."""

    def __init__(self) -> None:
        self._by_gv: dict[str, dict[str, ResourceType]] = {}
        self._preferred: dict[str, str] = {}
        for rt in BUILTINS:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_gv.setdefault(rt.api_version, {})[rt.plural] = rt

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        removed = []
        for gv, types in list(self._by_gv.items()):
            for plural, rt in list(types.items()):
                if rt.crd == crd_name:
                    removed.append(types.pop(plural))
            if not types:
                del self._by_gv[gv]
        return removed

    def get(self, api_version: str, plural: str) -> ResourceType | None:
        return self._by_gv.get(api_version, {}).get(plural)

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._by_gv.get(api_version, {}).values():
            if rt.kind == kind:
                return rt
        return None

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        return [
            types[plural]
            for types in self._by_gv.values()
            if plural in types and types[plural].group == group
        ]

    def types(self, api_version: str) -> list[ResourceType]:
        return list(self._by_gv.get(api_version, {}).values())

    def api_versions_served(self) -> list[str]:
        return list(self._by_gv)

    # -- discovery documents ------------------------------------------------------------------------

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }

    def resource_list(self, api_version: str) -> dict[str, Any] | None:
        types = self._by_gv.get(api_version)
        if types is None:
            return None
        resources = [entry for rt in types.values() for entry in rt.discovery()]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version,
            "resources": resources,
        }

    def groups(self) -> list[dict[str, Any]]:
        by_group: dict[str, list[str]] = {}
        for gv in self._by_gv:
            group, _, version = gv.rpartition("/")
            if group:
                by_group.setdefault(group, []).append(version)
        out = []
        for group, versions in by_group.items():
            ordered = sorted(versions, key=_version_priority)
            entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
            out.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
        return out

    def group_list(self) -> dict[str, Any]:
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": self.groups()}

    def group(self, name: str) -> dict[str, Any] | None:
        for group in self.groups():
            if group["name"] == name:
                return {"kind": "APIGroup", "apiVersion": "v1", **group}
        return None


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version order: GA before beta before alpha, higher numbers first."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)

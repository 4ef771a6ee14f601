"""Server-side defaults and the status an idle cluster's controllers would report. Pure.

Defaults are the few that change how objects merge or compare: ``protocol: TCP`` on ports (a key of
the port lists), ``replicas: 1``, a Service's ``type``, ``clusterIP`` and ``targetPort``, a Secret's
``type`` and ``stringData`` folded into ``data``, a Namespace's name label. :func:`simulated_status`
stands in for the controllers: workloads are instantly available, Jobs complete, Pods run, claims bind,
namespaces are active and CRDs established.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from tests.kubeapi.resources import ResourceType

_REPLICATED = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})


def _default_ports(value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "ports" and isinstance(child, list):
                for port in child:
                    if isinstance(port, dict) and ("containerPort" in port or "port" in port):
                        port.setdefault("protocol", "TCP")
            _default_ports(child)
    elif isinstance(value, list):
        for child in value:
            _default_ports(child)


def apply_defaults(
    rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, *, allocate_ip: Callable[[], str]
) -> None:
    """Fill in defaults on ``obj`` in place (built-in kinds only)."""
    if rt.crd:
        return
    _default_ports(obj.get("spec"))
    kind, spec = rt.kind, obj.get("spec")
    if kind == "Namespace":
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif kind in _REPLICATED and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for key, text in string_data.items():
                data[key] = base64.b64encode(str(text).encode()).decode()
    elif kind == "Service" and isinstance(spec, dict):
        _service(spec, (old or {}).get("spec") or {}, allocate_ip)


def _service(spec: dict[str, Any], old_spec: dict[str, Any], allocate_ip: Callable[[], str]) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or allocate_ip()
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and "port" in port:
            port.setdefault("targetPort", port["port"])


def _condition(kind: str, reason: str, now: str, message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "lastUpdateTime": now,
    }


def simulated_status(rt: ResourceType, obj: dict[str, Any], now: str) -> dict[str, Any] | None:
    """The status a healthy cluster would report for ``obj`` soon after the write, or None."""
    kind, spec = rt.kind, obj.get("spec") or {}
    generation = obj["metadata"].get("generation", 1)
    if kind in _REPLICATED:
        count = spec.get("replicas", 1)
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "replicas": count,
            "updatedReplicas": count,
            "readyReplicas": count,
            "availableReplicas": count,
        }
        if kind == "Deployment":
            status["conditions"] = [
                _condition(
                    "Available", "MinimumReplicasAvailable", now, "Deployment has minimum availability."
                ),
                _condition("Progressing", "NewReplicaSetAvailable", now),
            ]
        if kind == "StatefulSet":
            status.update(currentReplicas=count, currentRevision="rev-1", updateRevision="rev-1")
        return status
    if kind == "DaemonSet":
        return {
            "observedGeneration": generation,
            "currentNumberScheduled": 1,
            "desiredNumberScheduled": 1,
            "numberAvailable": 1,
            "numberMisscheduled": 0,
            "numberReady": 1,
            "updatedNumberScheduled": 1,
        }
    if kind == "Job":
        return {
            "startTime": now,
            "completionTime": now,
            "succeeded": spec.get("completions", 1),
            "ready": 0,
            "conditions": [_condition("Complete", "CompletionsReached", now)],
        }
    if kind == "Pod":
        return {
            "phase": "Running",
            "conditions": [_condition("Ready", "", now), _condition("ContainersReady", "", now)],
        }
    if kind == "PersistentVolumeClaim":
        return {
            "phase": "Bound",
            "accessModes": spec.get("accessModes", []),
            "capacity": (spec.get("resources") or {}).get("requests", {}),
        }
    if kind == "Namespace":
        return {"phase": "Active"}
    if kind == "Service" and spec.get("type") == "LoadBalancer":
        return {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    if kind == "CustomResourceDefinition":
        return crd_status(obj, now)
    return None


def crd_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    spec = crd.get("spec") or {}
    return {
        "acceptedNames": spec.get("names") or {},
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", now, "no conflicts found"),
            _condition("Established", "InitialNamesAccepted", now, "the initial names have been accepted"),
        ],
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
    }

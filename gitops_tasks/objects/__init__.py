"""Objects: the declared GitOps objects, read from YAML with Flux's kinds and field names.

What this concern owns: loading multi-document YAML, validating each kind's ``spec`` against
Flux's field names (all errors at once, each naming ``file:line``, object and field), the object
model (:class:`Object`, :class:`ObjectRef`), the :class:`Outcome` every reconcile returns, Go
durations, and pure helpers that read an object the way Flux does (interval, timeout, source).

Imports allowed: the standard library and PyYAML only; no other ``gitops_tasks`` package.
I/O: none, except :func:`load_paths` reading the files and directories it is given.
"""

from gitops_tasks.objects.durations import format_duration, parse_duration
from gitops_tasks.objects.kinds import (
    API_VERSIONS,
    KINDS,
    QUEUE_BY_KIND,
    dependents_of,
    interval_s,
    kind_from_cli,
    retry_interval_s,
    source_ref,
    timeout_s,
)
from gitops_tasks.objects.loader import LoadError, load_paths, load_text
from gitops_tasks.objects.model import OWN_API_VERSION, Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome

__all__ = [
    "API_VERSIONS",
    "KINDS",
    "OWN_API_VERSION",
    "QUEUE_BY_KIND",
    "LoadError",
    "Object",
    "ObjectRef",
    "Outcome",
    "dependents_of",
    "format_duration",
    "interval_s",
    "kind_from_cli",
    "load_paths",
    "load_text",
    "parse_duration",
    "retry_interval_s",
    "source_ref",
    "timeout_s",
]

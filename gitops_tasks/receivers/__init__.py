"""Webhook receivers: Flux's Receiver kind served over HTTP (DESIGN §8b).

A verified hook names objects to reconcile now; the service hands them to a trigger the caller
supplies (the Celery glue's, which enqueues on the ``priority`` queue), so nothing here knows
Celery. ``verify`` (each type's authentication), ``hooks`` (what a payload names: a pushed branch,
an image) and ``targets`` (which catalog objects a hook reconciles) are pure; ``directory`` reads
Receivers from the catalog and their tokens from Secrets, and ``server`` is the aiohttp service.

May import ``objects/``, ``store/`` and ``settings``; the rate limiter and the trigger are passed
in. ``directory`` and ``server`` do I/O (Redis, Secrets, HTTP).
"""

from gitops_tasks.receivers.hooks import Hook
from gitops_tasks.receivers.verify import (
    HOOK_PATH_PREFIX,
    VERIFIED_TYPES,
    Rejected,
    verify,
    webhook_path,
)

__all__ = ["HOOK_PATH_PREFIX", "VERIFIED_TYPES", "Hook", "Rejected", "verify", "webhook_path"]

"""What a verified webhook does: reconcile the object now on ``priority``, through the throttle.

The receiver service (``gitops_tasks.receivers``) calls :class:`HookTrigger` for each object a hook
names. The first hook in a quiet period is sent at once (ahead of any backlog on the kind's own
queue, as ``gitops-tasks reconcile`` is) and recorded as a reconcile request, so a run already in
progress reconciles once more after it; hooks within the window share one trailing run
(``store.hookgate``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.store.hookgate import DEFAULT_HOOK_WINDOW_S, HookThrottle
from gitops_tasks.tasks.context import Context
from gitops_tasks.tasks.enqueue import enqueue


class HookTrigger:
    """``trigger(ref, reason)`` → ``queued``, ``trailing`` or ``coalesced``. Thread-safe."""

    def __init__(self, ctx: Context, *, window_s: float = DEFAULT_HOOK_WINDOW_S) -> None:
        self.ctx = ctx
        self.throttle = HookThrottle(ctx.client, ctx.keys, window_s=window_s)

    def __call__(self, ref: ObjectRef, reason: str) -> str:
        ctx = self.ctx
        delay = self.throttle.admit(ref.key)
        if delay is None:
            return "coalesced"
        if delay == 0:
            token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "-" + secrets.token_hex(3)
            ctx.status.request(ref, token)
            enqueue(ctx.app, ctx.guard, ctx.keys, ref, reason=reason, queue="priority", force=True)
            return "queued"
        enqueue(
            ctx.app, ctx.guard, ctx.keys, ref, reason=reason, queue="priority", force=True, countdown=delay
        )
        return f"trailing in {delay:.1f}s"

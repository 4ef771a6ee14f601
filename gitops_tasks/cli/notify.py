"""``gitops-tasks notify test PROVIDER``: send a test message through a Provider now.

The message is built and sent here, as a worker would send it (the Provider's secrets read from
this machine's secrets directory, the host's shared rate limit taken), not through the outbox:
the answer is the provider's. Exit status 0 when the provider accepted it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import time

from gitops_tasks.cli import common

_EXAMPLE = """\
examples:
  gitops-tasks notify test slack
  gitops-tasks notify test on-call -n monitoring
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``notify test`` to the ``gitops-tasks`` sub-commands."""
    parser = sub.add_parser("notify", help="notifications: send a test message through a Provider")
    commands = parser.add_subparsers(dest="notify_command", required=True, metavar="SUBCOMMAND")
    p = commands.add_parser(
        "test",
        help="send a test message through a Provider now",
        description="Send a test message (severity info, reason Test) through PROVIDER; report its answer.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER", help="the Provider's name")
    p.add_argument("-n", "--namespace", help="the Provider's namespace (default: the default namespace)")
    p.set_defaults(func=cmd_notify_test)


def cmd_notify_test(args: argparse.Namespace) -> int:
    from gitops_tasks.notify import providers
    from gitops_tasks.notify.config import ConfigError, provider_config, secret_values
    from gitops_tasks.notify.deliver import send_requests
    from gitops_tasks.notify.message import Event, NotSendable
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.redact import redact
    from gitops_tasks.tasks.notify import bucket_for, session

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef("Provider", args.namespace or settings.default_namespace, args.provider)
    provider = ctx.catalog.get(ref)
    if provider is None:
        return common.fail(f"{ref} not found in the catalog")
    try:
        config = provider_config(provider, secrets_dir=settings.resolved_secrets_dir)
    except (ConfigError, ValueError) as exc:
        return common.fail(f"{ref}: {exc}")
    if config.type not in providers.BUILDERS:
        supported = ", ".join(providers.SUPPORTED)
        return common.fail(f"{ref}: type {config.type!r} is not sent; supported: {supported}")
    event = Event(
        kind="Provider",
        namespace=ref.namespace,
        name=ref.name,
        severity="info",
        reason="Test",
        message=f"test notification from gitops-tasks for {ref}",
        api_version=provider.api_version,
        time=time.time(),
        controller="notification-controller",
    )
    try:
        built = providers.build(config, event)
    except NotSendable as exc:
        return common.fail(f"{ref}: nothing to send for a test message ({exc})")

    def take_slot(host: str) -> float | None:
        bucket = bucket_for(ctx, config.type, host)
        if bucket is not None:
            bucket.acquire(host, max_wait_s=60.0)
        return None

    sent = send_requests(session(), built, config, take_slot=take_slot, timeout_s=config.timeout_s)
    if sent.result != "delivered":
        return common.fail(f"{ref}: {redact(sent.error, secret_values(config))}")
    print(f"test message sent through {ref} ({len(built)} request{'s' if len(built) != 1 else ''})")
    return 0

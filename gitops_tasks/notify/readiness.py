"""Whether each Provider and Alert can deliver now, as a Flux-style Ready condition (reads files).

A Provider is Ready when its type is one this engine sends and every Secret it names is present;
an Alert when its Provider exists and is Ready.
"""

from __future__ import annotations

from pathlib import Path

from gitops_tasks.notify import providers
from gitops_tasks.notify.config import ConfigError, provider_config, secret_refs, secret_values
from gitops_tasks.notify.message import Event, InvalidProvider, NotSendable
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.redact import redact

#: The event a Provider's type is tried with: a Provider whose spec or secret cannot make a
#: request for it (a missing token or channel) is not Ready.
_PROBE = Event(
    kind="Kustomization",
    namespace="default",
    name="probe",
    severity="info",
    reason="Probe",
    message="readiness probe",
    revision="main@sha1:" + "0" * 40,
    api_version="kustomize.toolkit.fluxcd.io/v1",
    controller="kustomize-controller",
)


def provider_outcome(provider: Object, *, secrets_dir: Path) -> Outcome:
    where = f"Provider {provider.namespace}/{provider.name}"
    kind = str(provider.spec.get("type", ""))
    if kind not in providers.BUILDERS:
        supported = ", ".join(providers.SUPPORTED)
        message = f"{where}: type {kind!r} is not sent; supported: {supported}"
        return Outcome("stalled", "UnsupportedType", message)
    try:
        config = provider_config(provider, secrets_dir=secrets_dir)
        providers.build(config, _PROBE)
    except NotSendable:
        pass  # a type that skips some events (commit statuses without a commit): still ready
    except InvalidProvider as exc:
        return Outcome("stalled", "InvalidProvider", f"{where}: {redact(str(exc), secret_values(config))}")
    except ConfigError as exc:
        return Outcome("stalled", exc.reason, f"{where}: {exc}")
    except ValueError as exc:  # a malformed spec.timeout
        return Outcome("stalled", "InvalidProvider", f"{where}: {exc}")
    secrets = ", ".join(f"{f} {name}" for f, name in secret_refs(provider))
    message = f"{where} is ready" + (f" (secrets: {secrets})" if secrets else "")
    return Outcome("success", "Succeeded", message)


def alert_outcome(alert: Object, provider: Object | None, provider_ready: bool) -> Outcome:
    name = str((alert.spec.get("providerRef") or {}).get("name", ""))
    if provider is None:
        message = f"Provider {alert.namespace}/{name} (spec.providerRef) not found"
        return Outcome("stalled", "ProviderNotFound", message)
    if not provider_ready:
        return Outcome("stalled", "ProviderNotReady", f"Provider {alert.namespace}/{name} is not ready")
    return Outcome("success", "Succeeded", f"Alert sends to Provider {alert.namespace}/{name}")

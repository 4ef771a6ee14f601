"""Provider types' pure parts: the supported list, revisions, keys, addresses and refusals."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest

from gitops_tasks.notify import providers
from gitops_tasks.notify.message import InvalidProvider, NotSendable, ProviderConfig
from gitops_tasks.notify.providers import msteams, telegram
from gitops_tasks.notify.providers.formatting import name_and_description, split_camelcase
from gitops_tasks.notify.providers.git import commit_sha, parse_address, status_key
from gitops_tasks.objects import LoadError, load_text
from gitops_tasks.objects.specs_notify import PROVIDER_TYPES
from tests.notifyfixtures import sample_event

SHA = "0123456789abcdef0123456789abcdef01234567"
EVENT = sample_event(
    severity="info",
    reason="ReconciliationSucceeded",
    message="Applied revision",
    revision=f"main@sha1:{SHA}",
    metadata={},
)


def _provider_errors(provider_type: str) -> list[str]:
    doc = textwrap.dedent(f"""\
        apiVersion: notification.toolkit.fluxcd.io/v1beta3
        kind: Provider
        metadata:
          name: p
          namespace: flux-system
        spec:
          type: {provider_type}
        """)
    with pytest.raises(LoadError) as info:
        load_text(doc, filename="p.yaml")
    return info.value.errors


def test_types_accepted_at_apply_are_exactly_the_types_sent() -> None:
    assert PROVIDER_TYPES == providers.SUPPORTED


@pytest.mark.parametrize("provider_type", ["sentry", "googlepubsub", "nats", "incident.io"])
def test_a_flux_type_the_engine_does_not_send_is_refused_at_apply_listing_supported(
    provider_type: str,
) -> None:
    (error,) = _provider_errors(provider_type)
    assert "spec.type" in error and f"type {provider_type} is not sent by this engine" in error
    assert "supported: alertmanager, azuredevops," in error and "zulip" in error


def test_an_unknown_type_is_refused_listing_supported() -> None:
    (error,) = _provider_errors("carrier-pigeon")
    assert "expected one of alertmanager" in error and "got 'carrier-pigeon'" in error


@pytest.mark.parametrize("provider_type", PROVIDER_TYPES)
def test_every_supported_type_loads(provider_type: str) -> None:
    doc = f"""\
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {{name: p, namespace: flux-system}}
spec: {{type: {provider_type}}}
"""
    (obj,) = load_text(doc, filename="p.yaml")
    assert obj.spec["type"] == provider_type


@pytest.mark.parametrize(
    "revision",
    [
        f"main@sha1:{SHA}",
        f"refs/heads/feature/x@sha1:{SHA}",
        f"v1.2.3@sha1:{SHA}",
        f"sha1:{SHA}",
        f"main/{SHA}",
        SHA,
        SHA.upper(),
    ],
)
def test_commit_sha_from_flux_revisions(revision: str) -> None:
    assert commit_sha(revision) == SHA


def test_commit_sha_sha256() -> None:
    digest = "ab" * 32
    assert commit_sha(f"main@sha256:{digest}") == digest


@pytest.mark.parametrize(
    "revision", ["", "6.5.0", "main@sha1:abc", "v1.0.0", "main@md5:" + "a" * 32, "main/notahash"]
)
def test_revisions_without_a_commit_are_not_sendable(revision: str) -> None:
    with pytest.raises(NotSendable):
        commit_sha(revision)


@pytest.mark.parametrize("provider_type", sorted(providers.COMMIT_STATUS))
@pytest.mark.parametrize("revision", ["", "6.5.0"])
def test_commit_status_types_refuse_events_without_a_commit(provider_type: str, revision: str) -> None:
    provider = ProviderConfig(type=provider_type, address="https://dev.azure.com/o/p/_git/r", token="u:p")
    if provider_type == "bitbucketserver":
        provider = ProviderConfig(type=provider_type, address="https://h/scm/P/r.git", token="t")
    event = dataclasses.replace(EVENT, revision=revision)
    with pytest.raises(NotSendable):
        providers.build(provider, event)


@pytest.mark.parametrize(
    "provider_type", ["github", "gitlab", "bitbucket", "bitbucketserver", "azuredevops", "pagerduty"]
)
def test_progressing_events_are_not_sent(provider_type: str) -> None:
    provider = ProviderConfig(type=provider_type, address="https://x.example/o/r", token="u:p", channel="k")
    with pytest.raises(NotSendable):
        providers.build(provider, dataclasses.replace(EVENT, reason="Progressing"))


def test_status_key_names_object_and_provider_like_flux() -> None:
    a = ProviderConfig(type="github", provider_namespace="flux-system", provider_name="gh")
    b = ProviderConfig(type="github", provider_namespace="flux-system", provider_name="gh-other")
    key = status_key(a, EVENT)
    prefix, _, suffix = key.rpartition("/")
    assert prefix == "kustomization/apps" and len(suffix) == 8 and int(suffix, 16) >= 0
    assert status_key(b, EVENT) != key and status_key(a, EVENT) == key


@pytest.mark.parametrize(
    "address, expected",
    [
        ("https://github.com/org/app", ("https://github.com", "org/app")),
        ("https://github.com/org/app.git", ("https://github.com", "org/app")),
        ("ssh://git@github.com/org/app.git", ("https://github.com", "org/app")),
        ("git@gitlab.com:group/sub/app.git", ("https://gitlab.com", "group/sub/app")),
        ("http://127.0.0.1:8080/org/app", ("http://127.0.0.1:8080", "org/app")),
    ],
)
def test_git_address_forms(address: str, expected: tuple[str, str]) -> None:
    assert parse_address(ProviderConfig(type="github", address=address)) == expected


@pytest.mark.parametrize(
    "provider, field",
    [
        (ProviderConfig(type="github", address="https://github.com/org/app"), "token"),
        (
            ProviderConfig(type="github", address="https://github.com/org", token="s3cret"),
            "<owner>/<repository>",
        ),
        (ProviderConfig(type="github", address="not a url", token="s3cret"), "not a Git repository URL"),
        (
            ProviderConfig(type="bitbucket", address="https://bitbucket.org/o/r", token="s3cret"),
            "<user>:<app password>",
        ),
        (ProviderConfig(type="bitbucketserver", address="https://h/o/r.git", token="s3cret"), "/scm/"),
        (ProviderConfig(type="azuredevops", address="https://dev.azure.com/o/p/r", token="s3cret"), "_git"),
        (ProviderConfig(type="telegram", channel="@c"), "token"),
        (ProviderConfig(type="telegram", token="s3cret"), "spec.channel"),
        (
            ProviderConfig(type="zulip", address="https://z", channel="stream-only", password="s3cret"),
            "<stream>/<topic>",
        ),
        (ProviderConfig(type="slack"), "address"),
        (ProviderConfig(type="slack", token="s3cret"), "spec.channel with chat.postMessage"),
        (ProviderConfig(type="generic-hmac", address="https://h/"), "token"),
        (ProviderConfig(type="pagerduty", address="https://events.pagerduty.com"), "routing key"),
    ],
)
def test_a_provider_missing_what_its_type_needs_names_the_field_never_the_secret(
    provider: ProviderConfig, field: str
) -> None:
    with pytest.raises(InvalidProvider) as info:
        providers.build(provider, dataclasses.replace(EVENT, severity="error"))
    assert field in str(info.value) and provider.type in str(info.value)
    assert "s3cret" not in str(info.value)


def test_reason_is_split_like_flux_for_descriptions() -> None:
    assert split_camelcase("HealthCheckFailed") == ["Health", "Check", "Failed"]
    assert split_camelcase("ABCDef") == ["ABC", "Def"]
    assert split_camelcase("Upgrade2Failed") == ["Upgrade", "2", "Failed"]
    assert name_and_description(EVENT) == ("kustomization/apps", "reconciliation succeeded")


def test_telegram_escapes_every_markdown_v2_special_character() -> None:
    assert telegram.escape("a.b-c_d!(e)") == "a\\.b\\-c\\_d\\!\\(e\\)"
    assert telegram.escape("back\\slash") == "back\\\\slash"


def test_msteams_sends_the_legacy_message_card_only_to_office_connectors() -> None:
    legacy = ProviderConfig(type="msteams", address="https://org.webhook.office.com/webhookb2/x")
    workflow = ProviderConfig(type="msteams", address="https://prod-1.westus.logic.azure.com/workflows/x")
    (old,) = providers.build(legacy, EVENT)
    (new,) = providers.build(workflow, EVENT)
    assert b'"@type":"MessageCard"' in old.body
    assert b'"type":"message"' in new.body and b"AdaptiveCard" in new.body
    assert msteams.is_legacy_connector(legacy.address)


def test_slack_web_api_requests_ask_for_the_ok_field_and_webhooks_do_not() -> None:
    (api,) = providers.build(ProviderConfig(type="slack", token="xoxb-t", channel="general"), EVENT)
    (hook,) = providers.build(
        ProviderConfig(type="slack", address="https://hooks.slack.com/services/T/B/X"), EVENT
    )
    assert api.url == "https://slack.com/api/chat.postMessage" and api.json_ok_field == "ok"
    assert api.headers["Authorization"] == "Bearer xoxb-t"
    assert hook.json_ok_field == "" and "Authorization" not in hook.headers


def test_readme_table_lists_every_supported_type_and_the_docs_example_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    table = (
        readme.split("### Notification provider types", 1)[1].split("\n\n| type |", 1)[1].split("\n\n", 1)[0]
    )
    listed = {name for row in table.splitlines()[2:] for name in re.findall(r"`([\w-]+)`", row.split("|")[1])}
    assert listed == set(providers.SUPPORTED)
    doc = (root / "docs" / "notification-providers.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert {obj.spec["type"] for obj in load_text(example, filename="doc.yaml")} == {"slack", "github"}


def test_secrets_stay_out_of_the_repr_of_providers_and_requests() -> None:
    provider = ProviderConfig(
        type="telegram",
        address="https://api.telegram.org",
        channel="@ops",
        token="123:s3cret",
        password="pw-s3cret",
        headers={"X-Key": "h-s3cret"},
        proxy="http://u:p-s3cret@proxy:3128",
    )
    (req,) = providers.build(provider, EVENT)
    assert "s3cret" in req.url
    for shown in (repr(provider), repr(req), str([provider, req])):
        assert "s3cret" not in shown
    assert "telegram" in repr(provider) and "POST" in repr(req)


def test_commit_status_reads_the_revision_from_metadata_when_the_field_is_empty() -> None:
    provider = ProviderConfig(type="github", address="https://github.com/org/app", token="t")
    (req,) = providers.build(
        provider, dataclasses.replace(EVENT, revision="", metadata={"revision": f"main/{SHA}"})
    )
    assert req.url == f"https://api.github.com/repos/org/app/statuses/{SHA}"

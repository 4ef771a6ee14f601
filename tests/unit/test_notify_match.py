"""Alert matching, dedupe keys and Provider secrets (pure code; secrets read from a temp dir)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gitops_tasks.notify import match
from gitops_tasks.notify.config import ConfigError, provider_config, secret_values
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import Object
from tests.procs import REPO_ROOT


def _alert(spec: str, annotations: str = "") -> Object:
    meta = "{name: a, namespace: apps" + (f", annotations: {{{annotations}}}" if annotations else "") + "}"
    text = f"apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\nmetadata: {meta}\nspec:\n{spec}"
    (obj,) = load_text(text, filename="alert.yaml")
    return obj


def _event(kind: str = "Kustomization", name: str = "web", ns: str = "apps", **kw: str) -> dict[str, str]:
    return {
        "kind": kind,
        "namespace": ns,
        "name": name,
        "severity": "info",
        "message": "m",
        "revision": "",
        **kw,
    }


def _no_labels(kind: str, ns: str, name: str) -> dict[str, str] | None:
    return None


def test_a_source_without_namespace_means_the_alerts_own() -> None:
    alert = _alert("  providerRef: {name: p}\n  eventSources: [{kind: Kustomization, name: web}]\n")
    assert match.alert_matches(alert, _event(), _no_labels)
    assert not match.alert_matches(alert, _event(ns="other"), _no_labels)
    assert not match.alert_matches(alert, _event(name="api"), _no_labels)
    assert not match.alert_matches(alert, _event(kind="GitRepository"), _no_labels)


def test_a_source_in_another_namespace_and_any_name() -> None:
    alert = _alert(
        "  providerRef: {name: p}\n  eventSources: [{kind: Kustomization, name: '*', namespace: ops}]\n"
    )
    assert match.alert_matches(alert, _event(ns="ops", name="anything"), _no_labels)
    assert not match.alert_matches(alert, _event(), _no_labels)


def test_error_severity_takes_errors_only_and_info_takes_all() -> None:
    errors = _alert(
        "  providerRef: {name: p}\n  eventSeverity: error\n"
        "  eventSources: [{kind: Kustomization, name: '*'}]\n"
    )
    everything = _alert("  providerRef: {name: p}\n  eventSources: [{kind: Kustomization, name: '*'}]\n")
    assert not match.alert_matches(errors, _event(), _no_labels)
    assert match.alert_matches(errors, _event(severity="error"), _no_labels)
    assert match.alert_matches(everything, _event(), _no_labels)
    assert match.alert_matches(everything, _event(severity="error"), _no_labels)


def test_match_labels_need_every_pair_and_an_object_in_the_catalog() -> None:
    alert = _alert(
        "  providerRef: {name: p}\n"
        "  eventSources: [{kind: Kustomization, name: '*', matchLabels: {team: web, tier: fe}}]\n"
    )
    labels = {"web": {"team": "web", "tier": "fe", "x": "y"}, "half": {"team": "web"}}

    def labels_of(kind: str, ns: str, name: str) -> dict[str, str] | None:
        return labels.get(name)

    assert match.alert_matches(alert, _event(name="web"), labels_of)
    assert not match.alert_matches(alert, _event(name="half"), labels_of)
    assert not match.alert_matches(alert, _event(name="gone"), labels_of)


def test_inclusion_and_exclusion_lists_are_re2_searches_on_the_message() -> None:
    alert = _alert(
        "  providerRef: {name: p}\n  eventSources: [{kind: Kustomization, name: '*'}]\n"
        "  inclusionList: ['^deploy', 'fail(ed|ure)']\n  exclusionList: ['\\bskip\\b']\n"
    )
    assert match.alert_matches(alert, _event(message="deploy done"), _no_labels)
    assert match.alert_matches(alert, _event(message="health check failure"), _no_labels)
    assert not match.alert_matches(alert, _event(message="nothing to say"), _no_labels)
    assert not match.alert_matches(alert, _event(message="deploy skip now"), _no_labels)


def test_a_suspended_alert_matches_nothing() -> None:
    alert = _alert(
        "  providerRef: {name: p}\n  suspend: true\n  eventSources: [{kind: Kustomization, name: '*'}]\n"
    )
    assert not match.alert_matches(alert, _event(), _no_labels)


def test_summary_and_event_metadata_go_with_every_message_summary_winning() -> None:
    alert = _alert(
        "  providerRef: {name: p}\n  eventSources: [{kind: Kustomization, name: '*'}]\n"
        "  eventMetadata: {env: prod, summary: meta}\n  summary: the summary\n"
    )
    assert match.metadata_for(alert) == {"env": "prod", "summary": "the summary"}


def test_transitions_mode_comes_from_the_annotation() -> None:
    spec = "  providerRef: {name: p}\n  eventSources: [{kind: Kustomization, name: '*'}]\n"
    assert match.transitions_only(_alert(spec, "gitops-tasks.io/notify: transitions"))
    assert not match.transitions_only(_alert(spec))


def test_the_dedupe_key_is_object_message_and_revision_not_severity() -> None:
    base = _event(message="failed", revision="main@sha1:1")
    assert match.dedupe_digest(base) == match.dedupe_digest({**base, "severity": "error"})
    assert match.dedupe_digest(base) != match.dedupe_digest({**base, "revision": "main@sha1:2"})
    assert match.dedupe_digest(base) != match.dedupe_digest({**base, "message": "other"})
    assert match.dedupe_digest(base) != match.dedupe_digest({**base, "name": "api"})


def _provider(spec: str) -> Object:
    head = "apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Provider\n"
    text = f"{head}metadata: {{name: p, namespace: apps}}\nspec:\n{spec}"
    (obj,) = load_text(text, filename="provider.yaml")
    return obj


def test_provider_secrets_are_read_with_fluxs_keys(tmp_path: Path) -> None:
    for name, data in {
        "main": {
            "address": "https://hooks.example/T/B/abcdefgh12345\n",
            "token": " tok \n",
            "headers": "X-A: b\n",
        },
        "ca": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"},
        "proxy": {"address": "http://proxy.example:3128", "username": "u", "password": "p@ss"},
    }.items():
        (tmp_path / "apps" / name).mkdir(parents=True)
        for key, value in data.items():
            (tmp_path / "apps" / name / key).write_text(value)
    provider = _provider(
        "  type: generic\n  address: https://ignored.example\n  timeout: 5s\n  secretRef: {name: main}\n"
        "  certSecretRef: {name: ca}\n  proxySecretRef: {name: proxy}\n"
    )
    config = provider_config(provider, secrets_dir=tmp_path)
    assert config.address == "https://hooks.example/T/B/abcdefgh12345"
    assert config.token == "tok"
    assert config.headers == {"X-A": "b"}
    assert config.ca_pem.startswith("-----BEGIN")
    assert config.proxy == "http://u:p%40ss@proxy.example:3128"
    assert config.timeout_s == 5.0
    hidden = secret_values(config)
    assert "tok" in hidden and "abcdefgh12345" in hidden and "b" in hidden


def test_a_missing_secret_names_the_provider_field_and_secret(tmp_path: Path) -> None:
    provider = _provider("  type: generic\n  secretRef: {name: absent}\n")
    with pytest.raises(ConfigError) as caught:
        provider_config(provider, secrets_dir=tmp_path)
    assert caught.value.reason == "SecretNotFound"
    assert "apps/absent" in str(caught.value) and "spec.secretRef" in str(caught.value)


def test_the_readme_notification_objects_load() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### Notifications: Provider and Alert", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    objects = load_text(block.group(1), filename="README.md")
    assert [o.kind for o in objects] == ["Provider", "Alert"]
    assert match.transitions_only(objects[1])

"""Receiver types verify as Flux verifies; what a payload names; which objects a hook reconciles."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from gitops_tasks.objects import LoadError, load_text
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.specs_notify import RECEIVER_TYPES
from gitops_tasks.receivers import VERIFIED_TYPES, Rejected, verify, webhook_path
from gitops_tasks.receivers.hooks import Hook, Push, image_id, repo_id
from gitops_tasks.receivers.targets import pushed_ref_matches, targets

TOKEN = "s3cr3t"


def sig(body: bytes, algo: str = "sha256", token: str = TOKEN) -> str:
    return hmac.new(token.encode(), body, algo).hexdigest()


def test_the_types_apply_accepts_are_exactly_those_verified() -> None:
    assert set(RECEIVER_TYPES) == set(VERIFIED_TYPES)


def test_the_webhook_path_is_fluxs_sha256_of_token_name_and_namespace() -> None:
    # Flux: fmt.Sprintf("/hook/%x", sha256.Sum256([]byte(token + name + namespace)))
    expected = "/hook/" + hashlib.sha256(b"tokenappflux-system").hexdigest()
    assert webhook_path("token", "app", "flux-system") == expected


@pytest.mark.parametrize("algo", ["sha1", "sha256", "sha512"])
def test_generic_hmac_accepts_each_algorithm_and_refuses_a_wrong_digest(algo: str) -> None:
    body = b'{"x": 1}'
    verify("generic-hmac", token=TOKEN, headers={"X-Signature": f"{algo}={sig(body, algo)}"}, body=body)
    with pytest.raises(Rejected) as err:
        verify(
            "generic-hmac", token=TOKEN, headers={"X-Signature": f"{algo}={sig(body, algo, 'x')}"}, body=body
        )
    assert err.value.status == 401 and TOKEN not in err.value.message


@pytest.mark.parametrize("value", ["", "md5=abcd", "sha256", "sha256=" + "0" * 64])
def test_generic_hmac_refuses_missing_malformed_or_unknown_signatures(value: str) -> None:
    with pytest.raises(Rejected) as err:
        verify("generic-hmac", token=TOKEN, headers={"X-Signature": value}, body=b"{}")
    assert err.value.status == 401


def test_github_prefers_the_sha256_header_and_accepts_the_legacy_sha1_one() -> None:
    body = b'{"zen": "x"}'
    headers = {"x-hub-signature-256": "sha256=" + sig(body), "x-github-event": "issues"}
    assert verify("github", token=TOKEN, headers=headers, body=body).event == "issues"
    legacy = {"X-Hub-Signature": "sha1=" + sig(body, "sha1"), "X-GitHub-Event": "issues"}
    assert verify("github", token=TOKEN, headers=legacy, body=body).event == "issues"
    wrong = {
        "X-Hub-Signature-256": "sha256=" + sig(body, token="other"),
        "X-Hub-Signature": legacy["X-Hub-Signature"],
    }
    with pytest.raises(Rejected):
        verify("github", token=TOKEN, headers=wrong, body=body)


def test_github_filters_events_case_insensitively_and_answers_ping() -> None:
    body = b"{}"
    signed = {"X-Hub-Signature-256": "sha256=" + sig(body)}
    assert verify(
        "github", token=TOKEN, headers={**signed, "X-GitHub-Event": "ping"}, body=body, events=["push"]
    ).ping
    verify(
        "github", token=TOKEN, headers={**signed, "X-GitHub-Event": "Release"}, body=body, events=["release"]
    )
    with pytest.raises(Rejected) as err:
        verify(
            "github", token=TOKEN, headers={**signed, "X-GitHub-Event": "issues"}, body=body, events=["push"]
        )
    assert err.value.status == 400


def test_github_push_names_the_repository_and_ref_in_json_or_form_bodies() -> None:
    doc = {
        "ref": "refs/heads/main",
        "repository": {"clone_url": "https://github.com/o/r.git", "default_branch": "main"},
    }
    for body, ctype in (
        (json.dumps(doc).encode(), "application/json"),
        (b"payload=" + json.dumps(doc).replace(" ", "+").encode(), "application/x-www-form-urlencoded"),
    ):
        headers = {
            "X-Hub-Signature-256": "sha256=" + sig(body),
            "X-GitHub-Event": "push",
            "Content-Type": ctype,
        }
        hook = verify("github", token=TOKEN, headers=headers, body=body)
        assert hook.push == Push(frozenset({"https://github.com/o/r.git"}), "refs/heads/main", "main")


def test_gitlab_compares_the_token_header_and_filters_events() -> None:
    body = json.dumps({"ref": "refs/tags/v1", "project": {"git_ssh_url": "git@gitlab.com:o/r.git"}}).encode()
    hook = verify(
        "gitlab", token=TOKEN, headers={"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Tag Push Hook"}, body=body
    )
    assert hook.push is not None and hook.push.ref == "refs/tags/v1"
    for headers in ({"X-Gitlab-Token": TOKEN + "x"}, {}):
        with pytest.raises(Rejected) as err:
            verify("gitlab", token=TOKEN, headers=headers, body=body)
        assert err.value.status == 401
    with pytest.raises(Rejected):
        verify(
            "gitlab",
            token=TOKEN,
            headers={"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Issue Hook"},
            body=body,
            events=["Push Hook"],
        )


def test_bitbucket_server_signature_event_key_and_ping() -> None:
    body = b'{"test": true}'
    headers = {"X-Hub-Signature": "sha256=" + sig(body), "X-Event-Key": "diagnostics:ping"}
    assert verify("bitbucket", token=TOKEN, headers=headers, body=body, events=["repo:refs_changed"]).ping
    with pytest.raises(Rejected):
        verify("bitbucket", token=TOKEN, headers={**headers, "X-Hub-Signature": "sha256=00"}, body=body)


def test_harbor_compares_the_authorization_header_and_nexus_its_sha1_signature() -> None:
    verify("harbor", token=TOKEN, headers={"Authorization": TOKEN}, body=b"{}")
    with pytest.raises(Rejected):
        verify("harbor", token=TOKEN, headers={"Authorization": "Bearer " + TOKEN}, body=b"{}")
    body = b'{"action": "CREATED"}'
    verify("nexus", token=TOKEN, headers={"X-Nexus-Webhook-Signature": sig(body, "sha1")}, body=body)
    for headers in ({}, {"X-Nexus-Webhook-Signature": sig(body, "sha256")}):
        with pytest.raises(Rejected) as err:
            verify("nexus", token=TOKEN, headers=headers, body=body)
        assert err.value.status == 401


@pytest.mark.parametrize("kind", ["dockerhub", "quay", "acr"])
def test_registry_types_refuse_a_body_that_is_not_their_json(kind: str) -> None:
    with pytest.raises(Rejected) as err:
        verify(kind, token=TOKEN, headers={}, body=b"not json")
    assert err.value.status == 400


def test_registry_hooks_name_their_images() -> None:
    cases = {
        "dockerhub": ({"repository": {"repo_name": "org/app"}}, "docker.io/org/app"),
        "quay": ({"docker_url": "quay.io/org/app"}, "quay.io/org/app"),
        "acr": ({"target": {"repository": "app"}, "request": {"host": "r.azurecr.io"}}, "r.azurecr.io/app"),
    }
    for kind, (doc, image) in cases.items():
        assert verify(kind, token=TOKEN, headers={}, body=json.dumps(doc).encode()).images == {image}
    harbor = {"event_data": {"resources": [{"resource_url": "h.example.com/p/app:1.0"}]}}
    assert verify(
        "harbor", token=TOKEN, headers={"Authorization": TOKEN}, body=json.dumps(harbor).encode()
    ).images == {"h.example.com/p/app"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/Org/App.git", "github.com/org/app"),
        ("git@github.com:org/app", "github.com/org/app"),
        ("ssh://git@github.com:22/org/app.git/", "github.com/org/app"),
        ("file:///srv/git/app.git", "/srv/git/app"),
    ],
)
def test_repository_urls_compare_whatever_the_transport(url: str, expected: str) -> None:
    assert repo_id(url) == expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("index.docker.io/library/nginx:1.25", "docker.io/library/nginx"),
        ("localhost:5000/app@sha256:abc", "localhost:5000/app"),
        ("ghcr.io/org/app:v1", "ghcr.io/org/app"),
    ],
)
def test_image_names_compare_without_tag_digest_or_docker_hub_spelling(image: str, expected: str) -> None:
    assert image_id(image) == expected


@pytest.mark.parametrize(
    ("ref", "pushed", "default", "follows"),
    [
        ({"branch": "main"}, "refs/heads/main", None, True),
        ({"branch": "main"}, "refs/heads/dev", None, False),
        ({"tag": "v1"}, "refs/tags/v1", None, True),
        ({"semver": ">=1"}, "refs/tags/v2.0.0", None, True),
        ({"semver": ">=1"}, "refs/heads/main", None, False),
        ({"name": "refs/pull/1/head"}, "refs/pull/1/head", None, True),
        ({"commit": "abc"}, "refs/heads/main", None, False),
        (None, "refs/heads/main", "main", True),
        (None, "refs/heads/dev", "main", False),
        (None, "refs/heads/dev", None, True),
    ],
)
def test_a_push_moves_what_a_git_repository_follows(
    ref: dict | None, pushed: str, default: str | None, follows: bool
) -> None:
    assert pushed_ref_matches(ref, Push(frozenset(), pushed, default)) is follows


class FakeCatalog:
    """An in-memory reader of objects (the pure matching's only input besides the hook)."""

    def __init__(self, objects: list[Object]) -> None:
        self.objects = {o.ref: o for o in objects}

    def get(self, ref: ObjectRef) -> Object | None:
        return self.objects.get(ref)

    def iter_kind(self, kind: str | None = None, namespace: str | None = None) -> Iterator[Object]:
        return iter([o for o in self.objects.values() if o.kind == kind and o.namespace == namespace])


def _objects(text: str) -> list[Object]:
    return load_text(text, filename="test.yaml")


def test_resources_default_to_the_receivers_namespace_and_wildcards_match_labels() -> None:
    objs = _objects(
        """
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {name: r, namespace: apps}
spec:
  type: generic
  secretRef: {name: t}
  resources:
    - {kind: Kustomization, name: web}
    - {kind: GitRepository, name: '*', matchLabels: {team: a}}
    - {kind: ImagePolicy, name: chart}
    - {kind: Kustomization, name: gone, namespace: other}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: web, namespace: apps}
spec: {interval: 5m, sourceRef: {kind: GitRepository, name: a}, prune: true}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: a, namespace: apps, labels: {team: a}}
spec: {interval: 5m, url: https://example.com/a}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: b, namespace: apps, labels: {team: b}}
spec: {interval: 5m, url: https://example.com/b}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: chart, namespace: apps}
spec: {imageRepositoryRef: {name: a}, policy: {semver: {range: ">=1"}}}
"""
    )
    receiver = objs[0]
    found = targets(
        receiver, Hook(), FakeCatalog(objs), reconcilable=frozenset({"Kustomization", "GitRepository"})
    )
    assert found.matched == [
        ObjectRef("Kustomization", "apps", "web"),
        ObjectRef("GitRepository", "apps", "a"),
    ]
    assert dict(found.skipped) == {
        ObjectRef("ImagePolicy", "apps", "chart"): "ImagePolicy has no reconciler in this version",
        ObjectRef("Kustomization", "other", "gone"): "not in the catalog",
    }


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        ("  resourceFilter: 'true'\n", "spec.resourceFilter", "CEL"),
        ("", "spec.resources[0].matchLabels", "required when name is '*'"),
    ],
)
def test_apply_refuses_what_the_engine_would_not_act_on(extra: str, field: str, says: str) -> None:
    doc = (
        "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata: {name: r}\n"
        f"spec:\n  type: generic\n  secretRef: {{name: t}}\n{extra}"
        "  resources:\n    - {kind: GitRepository, name: '*'}\n"
    )
    with pytest.raises(LoadError) as err:
        load_text(doc, filename="r.yaml")
    assert field in str(err.value) and says in str(err.value)


@pytest.mark.parametrize("kind", ["gcr", "cdevents", "generic-oidc"])
def test_apply_refuses_a_receiver_type_the_engine_does_not_verify(kind: str) -> None:
    doc = (
        "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata: {name: r}\n"
        f"spec:\n  type: {kind}\n  secretRef: {{name: t}}\n"
        "  resources:\n    - {kind: GitRepository, name: a}\n"
    )
    with pytest.raises(LoadError, match=f"spec.type: type '{kind}' is not verified by this engine"):
        load_text(doc, filename="r.yaml")

"""Loading and validating objects: every kind, every error naming file, line, object and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gitops_tasks.objects import (
    KINDS,
    OWN_API_VERSION,
    QUEUE_BY_KIND,
    LoadError,
    Object,
    ObjectRef,
    dependents_of,
    format_duration,
    interval_s,
    kind_from_cli,
    load_paths,
    load_text,
    parse_duration,
    retry_interval_s,
    source_ref,
    timeout_s,
)


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _errors(text: str, filename: str = "bad.yaml") -> list[str]:
    with pytest.raises(LoadError) as info:
        load_text(_yaml(text), filename=filename)
    return info.value.errors


FLUX_DOCS = {
    "GitRepository": """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata:
          name: podinfo
          namespace: flux-system
        spec:
          interval: 5m0s
          timeout: 60s
          url: https://github.com/stefanprodan/podinfo
          ref:
            branch: master
          secretRef:
            name: https-credentials
          ignore: |
            /*
            !/deploy
          include:
            - repository:
                name: shared-config
              fromPath: base
              toPath: shared
          sparseCheckout:
            - deploy
    """,
    "ImageRepository": """
        apiVersion: image.toolkit.fluxcd.io/v1beta2
        kind: ImageRepository
        metadata:
          name: podinfo
          namespace: flux-system
        spec:
          image: ghcr.io/stefanprodan/podinfo
          interval: 1h
          provider: generic
          exclusionList:
            - "^.*\\\\.sig$"
            - "^sha-.*"
          certSecretRef:
            name: registry-ca
    """,
    "ImagePolicy": """
        apiVersion: image.toolkit.fluxcd.io/v1
        kind: ImagePolicy
        metadata:
          name: podinfo
          namespace: flux-system
        spec:
          imageRepositoryRef:
            name: podinfo
          filterTags:
            pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)'
            extract: '$ts'
          policy:
            numerical:
              order: asc
    """,
    "ImageUpdateAutomation": """
        apiVersion: image.toolkit.fluxcd.io/v1beta2
        kind: ImageUpdateAutomation
        metadata:
          name: flux-system
          namespace: flux-system
        spec:
          interval: 30m
          sourceRef:
            kind: GitRepository
            name: flux-system
          git:
            checkout:
              ref:
                branch: main
            commit:
              author:
                email: fluxcdbot@users.noreply.github.com
                name: fluxcdbot
              messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}'
            push:
              branch: main
          update:
            path: ./clusters/my-cluster
            strategy: Setters
    """,
    "Kustomization": """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: podinfo
          namespace: flux-system
        spec:
          interval: 10m
          retryInterval: 2m
          targetNamespace: default
          sourceRef:
            kind: GitRepository
            name: podinfo
          path: "./kustomize"
          prune: true
          wait: true
          timeout: 1m
          dependsOn:
            - name: infrastructure
          postBuild:
            substitute:
              cluster_env: "prod"
              replicas: "2"
            substituteFrom:
              - kind: ConfigMap
                name: cluster-vars
                optional: true
          healthChecks:
            - apiVersion: apps/v1
              kind: Deployment
              name: podinfo
              namespace: default
          patches:
            - patch: |
                - op: replace
                  path: /spec/replicas
                  value: 3
              target:
                kind: Deployment
                name: podinfo
          images:
            - name: ghcr.io/stefanprodan/podinfo
              newTag: 6.5.0
    """,
    "Provider": """
        apiVersion: notification.toolkit.fluxcd.io/v1beta3
        kind: Provider
        metadata:
          name: slack-bot
          namespace: flux-system
        spec:
          type: slack
          channel: general
          address: https://slack.com/api/chat.postMessage
          secretRef:
            name: slack-bot-token
    """,
    "Alert": """
        apiVersion: notification.toolkit.fluxcd.io/v1beta3
        kind: Alert
        metadata:
          name: on-call
          namespace: flux-system
        spec:
          providerRef:
            name: slack-bot
          eventSeverity: error
          eventSources:
            - kind: GitRepository
              name: '*'
            - kind: Kustomization
              name: '*'
          eventMetadata:
            env: prod
          exclusionList:
            - ".*no changes.*"
    """,
    "Receiver": """
        apiVersion: notification.toolkit.fluxcd.io/v1
        kind: Receiver
        metadata:
          name: github-receiver
          namespace: flux-system
        spec:
          type: github
          events:
            - "ping"
            - "push"
          secretRef:
            name: receiver-token
          resources:
            - apiVersion: source.toolkit.fluxcd.io/v1
              kind: GitRepository
              name: podinfo
    """,
}
FLUX_DOCS = {kind: _yaml(text) for kind, text in FLUX_DOCS.items()}


def _with_spec(kind: str, *lines: str) -> str:
    """The kind's Flux document with ``lines`` appended to its spec (spec is always last)."""
    return FLUX_DOCS[kind] + "".join(f"  {line}\n" for line in lines)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_loads_a_flux_document_unchanged(kind: str) -> None:
    (obj,) = load_text(FLUX_DOCS[kind], filename="flux.yaml")
    assert (obj.kind, obj.namespace, obj.source) == (kind, "flux-system", "flux.yaml:1")
    assert obj.api_version.split("/")[0].endswith("fluxcd.io")
    assert obj.spec and "status" not in obj.to_dict()


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_loads_with_our_own_api_version(kind: str) -> None:
    flux_version, rest = FLUX_DOCS[kind].split("\n", 1)
    (obj,) = load_text(f"apiVersion: {OWN_API_VERSION}\n{rest}", filename="own.yaml")
    assert flux_version.startswith("apiVersion: ") and obj.api_version == OWN_API_VERSION


def test_kustomization_keeps_spec_field_names_and_values() -> None:
    (obj,) = load_text(FLUX_DOCS["Kustomization"], filename="k.yaml")
    assert obj.spec["postBuild"]["substitute"] == {"cluster_env": "prod", "replicas": "2"}
    assert obj.spec["sourceRef"] == {"kind": "GitRepository", "name": "podinfo"}
    assert Object.from_json(obj.to_json()).spec == obj.spec


def test_errors_name_file_line_object_and_field_exactly() -> None:
    errors = _errors(
        """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata:
          name: podinfo
        spec:
          interval: 0s
          url: ftp://example.com/repo
          ref:
            branch: 3
          include:
            - repository:
                nam: shared
          timeout: soon
          sparseCheckout: [deploy, 7]
        """,
        filename="examples/bad.yaml",
    )
    assert errors == [
        "examples/bad.yaml:6: GitRepository default/podinfo: spec.interval: must be greater than 0, got '0s'",
        "examples/bad.yaml:7: GitRepository default/podinfo: spec.url: expected an http(s)://, ssh://, "
        "git://, file:// or scp-like user@host:path URL, got 'ftp://example.com/repo'",
        "examples/bad.yaml:9: GitRepository default/podinfo: spec.ref.branch: expected a string, got 3",
        "examples/bad.yaml:11: GitRepository default/podinfo: spec.include[0].repository.name: "
        "required field is missing",
        "examples/bad.yaml:12: GitRepository default/podinfo: spec.include[0].repository.nam: "
        "unknown field 'nam' (did you mean 'name'?)",
        "examples/bad.yaml:13: GitRepository default/podinfo: spec.timeout: "
        "expected a duration such as 30s, 5m or 1h30m, got 'soon'",
        "examples/bad.yaml:14: GitRepository default/podinfo: spec.sparseCheckout[1]: "
        "expected a string, got 7",
    ]


def test_all_documents_and_files_report_together_and_nothing_loads(tmp_path: Path) -> None:
    # Given one valid file and two files with one bad document each
    (tmp_path / "a-good.yaml").write_text(FLUX_DOCS["GitRepository"])
    (tmp_path / "b-bad.yaml").write_text(FLUX_DOCS["Provider"].replace("type: slack", "type: pigeon"))
    (tmp_path / "c-bad.yaml").write_text(FLUX_DOCS["Alert"].replace("name: slack-bot", "name: 5"))
    # When the directory is loaded
    with pytest.raises(LoadError) as info:
        load_paths([tmp_path])
    # Then both problems are reported and no object is returned
    assert len(info.value.errors) == 2
    assert info.value.errors[0].startswith(
        f"{tmp_path}/b-bad.yaml:7: Provider flux-system/slack-bot: spec.type:"
    )
    assert info.value.errors[1] == (
        f"{tmp_path}/c-bad.yaml:8: Alert flux-system/on-call: spec.providerRef.name: expected a string, got 5"
    )
    assert "2 errors, nothing loaded" in str(info.value)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "spec:\n  url: https://x/y\n  interval: 1m\n  branch: main\n",
            "spec.branch: unknown field 'branch'",
        ),
        (
            "spec:\n  url: https://x/y\n  intervall: 1m\n",
            "spec.intervall: unknown field 'intervall' (did you mean",
        ),
        ("spec:\n  url: https://x/y\n  interval: 1m\nextra: 1\n", "extra: unknown field"),
        ("spec:\n  url: https://x/y\n", "spec.interval: required field is missing"),
        ("spec:\n  url: https://x/y\n  interval: 60\n", "spec.interval: expected a duration"),
        (
            "spec:\n  url: https://x/y\n  interval: 1m\n  suspend: 'yes'\n",
            "spec.suspend: expected true or false",
        ),
        (
            "spec:\n  url: https://x/y\n  interval: 1m\n  ref: main\n",
            "spec.ref: expected a mapping, got 'main'",
        ),
        ("spec: []\n", "spec: expected a mapping, got a list"),
        ("", "spec: required field is missing"),
    ],
)
def test_gitrepository_field_errors(snippet: str, expected: str) -> None:
    head = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: app\n"
    with pytest.raises(LoadError) as info:
        load_text(head + snippet, filename="g.yaml")
    assert any(expected in error for error in info.value.errors), info.value.errors


@pytest.mark.parametrize("semver", ["1x", "x1", ">=1.0<2.0", "1.2.3.4", "||", "latest"])
def test_gitrepository_invalid_ref_semver_is_refused_at_apply(semver: str) -> None:
    text = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: app\n"
        "  namespace: flux-system\nspec:\n  url: https://x/y\n  interval: 1m\n  ref:\n"
        f"    semver: '{semver}'\n"
    )
    with pytest.raises(LoadError) as info:
        load_text(text, filename="g.yaml")
    assert info.value.errors == [
        f"g.yaml:10: GitRepository flux-system/app: spec.ref.semver: semver range '{semver}': "
        + info.value.errors[0].split(f"semver range '{semver}': ", 1)[1]
    ]
    assert "expected comparators such as" in info.value.errors[0]


@pytest.mark.parametrize("semver", ["1.x", ">=1.0.0 <2.0.0", "~1.2 || ^2", ""])
def test_gitrepository_valid_or_empty_ref_semver_loads(semver: str) -> None:
    text = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: app}\n"
        f"spec: {{url: 'https://x/y', interval: 1m, ref: {{semver: '{semver}'}}}}\n"
    )
    assert load_text(text, filename="g.yaml")[0].spec["ref"]["semver"] == semver


def _git_repo(url: str) -> str:
    return (
        "kind: GitRepository\napiVersion: source.toolkit.fluxcd.io/v1\nmetadata: {name: a}\n"
        f"spec: {{url: '{url}', interval: 1m}}\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo",
        "http://gitea.local:3000/org/repo.git",
        "ssh://git@github.com/org/repo",
        "git://example.com/repo.git",
        "file:///srv/git/repo",
        "git@github.com:org/repo.git",
    ],
)
def test_gitrepository_accepts_url_forms(url: str) -> None:
    assert load_text(_git_repo(url))[0].spec["url"] == url


@pytest.mark.parametrize("url", ["ftp://example.com/repo", "github.com/org/repo", "https://", "/srv/repo"])
def test_gitrepository_refuses_other_urls(url: str) -> None:
    with pytest.raises(LoadError, match=r"<text>:4: GitRepository default/a: spec.url: expected an http"):
        load_text(_git_repo(url))


def test_unknown_kind_names_the_kind_and_lists_accepted_ones() -> None:
    errors = _errors(
        """
        apiVersion: v1
        kind: Secret
        metadata:
          name: git-credentials
        stringData:
          password: hunter2
        """
    )
    assert errors[0] == (
        "bad.yaml:2: Secret default/git-credentials: kind: kind Secret is not one gitops-tasks reconciles; "
        "supported kinds: "
        "GitRepository, ImageRepository, ImagePolicy, ImageUpdateAutomation, Kustomization, Provider, "
        "Alert, Receiver"
    )


def test_unknown_api_version_lists_accepted_versions() -> None:
    errors = _errors(
        FLUX_DOCS["Kustomization"].replace(
            "kustomize.toolkit.fluxcd.io/v1", "kustomize.config.k8s.io/v1beta1"
        )
    )
    assert errors == [
        "bad.yaml:1: Kustomization flux-system/podinfo: apiVersion: unknown apiVersion "
        "'kustomize.config.k8s.io/v1beta1' for Kustomization; accepted: kustomize.toolkit.fluxcd.io/v1, "
        "kustomize.toolkit.fluxcd.io/v1beta2, gitops-tasks.io/v1"
    ]


def test_duplicate_identity_names_both_locations(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(FLUX_DOCS["GitRepository"])
    (tmp_path / "two.yaml").write_text("---\n" + FLUX_DOCS["GitRepository"])
    with pytest.raises(LoadError) as info:
        load_paths([tmp_path / "one.yaml", tmp_path / "two.yaml"])
    assert info.value.errors == [
        f"{tmp_path}/two.yaml:2: GitRepository flux-system/podinfo: duplicate object; "
        f"first declared at {tmp_path}/one.yaml:1"
    ]


def test_same_name_in_other_namespace_or_kind_is_not_a_duplicate() -> None:
    text = (
        FLUX_DOCS["GitRepository"]
        + "---\n"
        + FLUX_DOCS["GitRepository"].replace("namespace: flux-system", "namespace: apps")
    )
    assert [o.ref.key for o in load_text(text)] == [
        "GitRepository/flux-system/podinfo",
        "GitRepository/apps/podinfo",
    ]


def test_bad_regex_in_image_policy_filter() -> None:
    errors = _errors(FLUX_DOCS["ImagePolicy"].replace("(?P<ts>[0-9]+)", "(?P<ts>[0-9]+"))
    assert len(errors) == 1
    assert errors[0].startswith(
        "bad.yaml:10: ImagePolicy flux-system/podinfo: spec.filterTags.pattern: invalid RE2 regular "
        "expression: missing ): ^main-[a-f0-9]+-(?P<ts>[0-9]+ (pattern '^main-[a-f0-9]+-(?P<ts>[0-9]+')"
    )


def test_bad_regex_in_exclusion_list_points_at_the_item() -> None:
    errors = _errors(
        """
        apiVersion: image.toolkit.fluxcd.io/v1
        kind: ImageRepository
        metadata:
          name: app
        spec:
          image: ghcr.io/org/app
          interval: 5m
          exclusionList:
            - "^.*\\\\.sig$"
            - "[unclosed"
        """
    )
    assert len(errors) == 1
    assert errors[0].startswith(
        "bad.yaml:10: ImageRepository default/app: spec.exclusionList[1]: invalid RE2 regular"
    )


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "{semver: {range: '>=1.0.0'}, alphabetical: {order: asc}}",
            "set only one of semver, alphabetical, numerical",
        ),
        ("{}", "set exactly one of semver, alphabetical, numerical"),
        ("{numerical: {order: up}}", "spec.policy.numerical.order: expected one of asc, desc; got 'up'"),
        ("{semver: {}}", "spec.policy.semver.range: required field is missing"),
        ("{semver: {range: '1x'}}", "spec.policy.semver.range: semver range '1x': '1x' is not a version"),
    ],
)
def test_image_policy_choice(policy: str, expected: str) -> None:
    text = (
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: app}\nspec:\n"
        f"  imageRepositoryRef: {{name: app}}\n  policy: {policy}\n"
    )
    with pytest.raises(LoadError) as info:
        load_text(text, filename="p.yaml")
    assert any("p.yaml:6: ImagePolicy default/app: " in e and expected in e for e in info.value.errors), (
        info.value.errors
    )


def test_image_policy_extract_must_name_a_pattern_group() -> None:
    errors = _errors(FLUX_DOCS["ImagePolicy"].replace("extract: '$ts'", "extract: '$stamp'"))
    assert errors == [
        "bad.yaml:11: ImagePolicy flux-system/podinfo: spec.filterTags.extract: "
        "refers to $stamp, a group the pattern lacks"
    ]


def test_image_policy_always_reflecting_digests_needs_an_interval() -> None:
    errors = _errors(_with_spec("ImagePolicy", "digestReflectionPolicy: Always"))
    assert errors == [
        "bad.yaml:6: ImagePolicy flux-system/podinfo: spec.interval: "
        "required when digestReflectionPolicy is Always"
    ]


KIND_CHECKS = [
    # (kind, text in its Flux document, replacement, expected error)
    ("ImageRepository", "podinfo\n  interval", "podinfo:6.5.0\n  interval",
     "spec.image: expected an image name without a tag"),
    ("Kustomization", "kind: GitRepository", "kind: HelmRepository",
     "spec.sourceRef.kind: expected one of GitRepository, OCIRepository, Bucket, ExternalArtifact"),
    ("Kustomization", 'replicas: "2"', "replicas: 2",
     "spec.postBuild.substitute.replicas: expected a string, got 2"),
    ("Kustomization", "prune: true", "prune: yes please",
     "spec.prune: expected true or false, got 'yes please'"),
    ("ImageUpdateAutomation", "strategy: Setters", "strategy: Regex",
     "spec.update.strategy: expected one of Setters; got 'Regex'"),
    ("ImageUpdateAutomation", "email: fluxcdbot@", "mail: fluxcdbot@",
     "spec.git.commit.author.mail: unknown field"),
    ("Receiver", "secretRef:\n    name: receiver-token", "suspend: false",
     "spec.secretRef: required field is missing"),
    ("Alert", "eventSeverity: error", "eventSeverity: warning",
     "spec.eventSeverity: expected one of info, error; got 'warning'"),
    ("Provider", "channel: general", "proxy: socks5://proxy:1080",
     "spec.proxy: expected an http:// or https:// URL"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "old", "new", "expected"), KIND_CHECKS)
def test_kind_specific_checks(kind: str, old: str, new: str, expected: str) -> None:
    assert old in FLUX_DOCS[kind]
    errors = _errors(FLUX_DOCS[kind].replace(old, new))
    assert any(expected in error for error in errors), errors


def _kustomization(post_build: str) -> str:
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps}\n"
        "spec:\n  interval: 1m\n  prune: true\n  sourceRef: {kind: GitRepository, name: repo}\n"
        f"  postBuild: {post_build}\n"
    )


@pytest.mark.parametrize("strategy", ["Always", "WithVariables"])
def test_kustomization_accepts_flux_substitute_strategy(strategy: str) -> None:
    loaded = load_text(_kustomization(f"{{substituteStrategy: {strategy}}}"), filename="k.yaml")
    assert loaded[0].spec["postBuild"] == {"substituteStrategy": strategy}


def test_kustomization_refuses_an_unknown_substitute_strategy_listing_the_values() -> None:
    with pytest.raises(LoadError) as info:
        load_text(_kustomization("{substituteStrategy: Never}"), filename="k.yaml")
    assert info.value.errors == [
        "k.yaml:8: Kustomization default/apps: spec.postBuild.substituteStrategy: "
        "expected one of WithVariables, Always; got 'Never'"
    ]


def test_kustomization_kubeconfig_needs_exactly_one_reference() -> None:
    errors = _errors(
        _with_spec("Kustomization", "kubeConfig: {secretRef: {name: a}, configMapRef: {name: b}}")
    )
    assert errors == [
        "bad.yaml:43: Kustomization flux-system/podinfo: spec.kubeConfig: "
        "set only one of secretRef, configMapRef; got secretRef, configMapRef"
    ]


def test_legacy_fields_are_refused_in_current_versions_only() -> None:
    legacy = _with_spec("GitRepository", "gitImplementation: go-git")
    errors = _errors(legacy)
    assert errors == [
        "bad.yaml:24: GitRepository flux-system/podinfo: spec.gitImplementation: "
        "not supported in source.toolkit.fluxcd.io/v1 (Flux removed it)"
    ]
    (obj,) = load_text(legacy.replace("source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2"))
    assert obj.spec["gitImplementation"] == "go-git"


METADATA_ERRORS = [
    ("metadata: {namespace: apps}",
     "<text>:3: GitRepository apps/<unnamed>: metadata.name: required field is missing"),
    ("metadata: {name: Pod_Info}",
     "<text>:3: GitRepository default/Pod_Info: metadata.name: 'Pod_Info' is not a valid name"),
    ("metadata: {name: app, namespace: Apps}",
     "<text>:3: GitRepository default/app: metadata.namespace: 'Apps' is not a valid namespace"),
    ("metadata: {name: app, labels: {tier: 1}}",
     "<text>:3: GitRepository default/app: metadata.labels.tier: expected a string, got 1"),
    ("metadata: null", "<text>:3: GitRepository default/<unnamed>: metadata: required field is missing"),
]  # fmt: skip


@pytest.mark.parametrize(("metadata", "expected"), METADATA_ERRORS)
def test_metadata_errors(metadata: str, expected: str) -> None:
    text = (
        f"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n{metadata}\n"
        "spec: {url: 'https://x/y', interval: 1m}\n"
    )
    with pytest.raises(LoadError) as info:
        load_text(text)
    assert any(error.startswith(expected) for error in info.value.errors), info.value.errors


def test_metadata_keeps_labels_and_annotations_and_ignores_server_fields() -> None:
    doc = FLUX_DOCS["Provider"].replace(
        "  namespace: flux-system\n",
        "  namespace: flux-system\n  uid: 1234\n  resourceVersion: '99'\n  generation: 3\n"
        "  creationTimestamp: 2024-01-01T00:00:00Z\n  labels: {team: web}\n  annotations: {note: x}\n",
    )
    (obj,) = load_text(doc + "status:\n  conditions: []\n")
    assert obj.metadata == {"labels": {"team": "web"}, "annotations": {"note": "x"}}


def test_namespace_defaults_to_the_given_default() -> None:
    doc = FLUX_DOCS["Receiver"].replace("  namespace: flux-system\n", "")
    assert load_text(doc)[0].namespace == "default"
    assert load_text(doc, default_namespace="ci")[0].namespace == "ci"


def test_null_fields_count_as_absent() -> None:
    doc = FLUX_DOCS["GitRepository"].replace("  timeout: 60s\n", "  timeout:\n  proxySecretRef: ~\n")
    (obj,) = load_text(doc)
    assert "timeout" not in obj.spec and "proxySecretRef" not in obj.spec and timeout_s(obj) == 60.0


def test_yaml_syntax_error_names_file_and_line() -> None:
    errors = _errors(
        "apiVersion: v1\nkind: GitRepository\nmetadata:\n  name: [a, b\nspec: {}\n", filename="s.yaml"
    )
    assert len(errors) == 1 and errors[0].startswith("s.yaml:5: YAML syntax error: ")


def test_empty_documents_are_skipped_and_sources_point_at_document_starts() -> None:
    text = "---\n---\n# nothing here\n---\n" + FLUX_DOCS["Alert"] + "---\n" + FLUX_DOCS["Provider"] + "---\n"
    alert, provider = load_text(text, filename="n.yaml")
    assert (alert.kind, alert.source) == ("Alert", "n.yaml:5")
    assert (provider.kind, provider.source) == ("Provider", "n.yaml:24")


@pytest.mark.parametrize(("doc", "got"), [("- a\n- b\n", "a list"), ("just text\n", "str 'just text'")])
def test_document_that_is_not_a_mapping(doc: str, got: str) -> None:
    assert _errors(doc) == [f"bad.yaml:1: document is not a mapping (got {got}); expected an object"]


def test_duplicate_yaml_keys_are_errors() -> None:
    errors = _errors(_with_spec("Provider", "channel: random"))
    assert errors == ["bad.yaml:12: Provider flux-system/slack-bot: spec.channel: duplicate key 'channel'"]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as info:
        load_paths([tmp_path / "nope.yaml"])
    assert info.value.errors == [f"{tmp_path}/nope.yaml: no such file or directory"]


def test_directory_loading_recurses_sorted_and_skips_hidden_dirs(tmp_path: Path) -> None:
    # Given a tree with YAML at several depths, a hidden directory and non-YAML files
    def put(rel: str, kind: str, name: str) -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FLUX_DOCS[kind].replace("name: slack-bot\n  namespace", f"name: {name}\n  namespace"))

    put("b/nested/deep.yml", "Provider", "deep")
    put("a.yaml", "Provider", "top")
    put("b/mid.yaml", "Provider", "mid")
    put(".git/ignored.yaml", "Provider", "hidden")
    (tmp_path / "README.md").write_text("kind: nonsense")
    (tmp_path / "b" / "notes.txt").write_text("{{")
    # When the directory is loaded (and one file named again explicitly)
    objects = load_paths([str(tmp_path), tmp_path / "a.yaml"])
    # Then each YAML file is read once, in sorted path order, hidden directories skipped
    assert [o.name for o in objects] == ["top", "mid", "deep"]
    assert objects[2].source == f"{tmp_path}/b/nested/deep.yml:1"


def test_explicit_file_is_read_whatever_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "objects.txt"
    path.write_text(FLUX_DOCS["Alert"])
    assert [o.kind for o in load_paths([path])] == ["Alert"]


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [
        ("gitrepository", "GitRepository"),
        ("gitrepositories", "GitRepository"),
        ("gitrepo", "GitRepository"),
        ("GitRepository", "GitRepository"),
        ("gitrepositories.source.toolkit.fluxcd.io", "GitRepository"),
        ("imagerepo", "ImageRepository"),
        ("image-policy", "ImagePolicy"),
        ("imagepolicies", "ImagePolicy"),
        ("imageupdateautomations", "ImageUpdateAutomation"),
        ("ks", "Kustomization"),
        ("KUSTOMIZATIONS", "Kustomization"),
        ("providers", "Provider"),
        ("alert", "Alert"),
        ("receivers", "Receiver"),
    ],
)
def test_kind_from_cli_aliases(spelling: str, kind: str) -> None:
    assert kind_from_cli(spelling) == kind


def test_kind_from_cli_lists_valid_kinds_on_error() -> None:
    with pytest.raises(ValueError, match=r"unknown kind 'helmrelease'; valid kinds: GitRepository, "):
        kind_from_cli("helmrelease")


def test_every_kind_has_a_queue() -> None:
    assert set(QUEUE_BY_KIND) == set(KINDS)
    assert QUEUE_BY_KIND["GitRepository"] == "git" and QUEUE_BY_KIND["ImagePolicy"] == "registry"
    assert QUEUE_BY_KIND["Kustomization"] == "sync" and QUEUE_BY_KIND["Receiver"] == "notify"


def _all_objects() -> list[Object]:
    return load_text("---\n".join(FLUX_DOCS[kind] for kind in KINDS))


def test_source_ref_resolves_the_object_namespace_by_default() -> None:
    by_kind = {o.kind: o for o in _all_objects()}
    assert source_ref(by_kind["Kustomization"]) == ObjectRef("GitRepository", "flux-system", "podinfo")
    assert source_ref(by_kind["ImagePolicy"]) == ObjectRef("ImageRepository", "flux-system", "podinfo")
    assert source_ref(by_kind["ImageUpdateAutomation"]) == ObjectRef(
        "GitRepository", "flux-system", "flux-system"
    )
    assert source_ref(by_kind["GitRepository"]) is None and source_ref(by_kind["Alert"]) is None


def test_dependents_of_finds_objects_pointing_at_a_ref() -> None:
    objects = _all_objects()
    objects.append(
        Object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "other-ns", "apps",
               {"sourceRef": {"kind": "GitRepository", "name": "podinfo", "namespace": "flux-system"}})
    )  # fmt: skip
    git = ObjectRef("GitRepository", "flux-system", "podinfo")
    assert dependents_of(git, objects) == [
        ObjectRef("Kustomization", "apps", "other-ns"),
        ObjectRef("Kustomization", "flux-system", "podinfo"),
    ]
    assert dependents_of(ObjectRef("ImageRepository", "flux-system", "podinfo"), objects) == [
        ObjectRef("ImagePolicy", "flux-system", "podinfo")
    ]
    assert dependents_of(ObjectRef("GitRepository", "default", "podinfo"), objects) == []


@pytest.mark.parametrize(
    ("kind", "interval", "timeout", "retry"),
    [
        ("GitRepository", 300.0, 60.0, 300.0),
        ("ImageRepository", 3600.0, 3600.0, 3600.0),
        ("ImagePolicy", 0.0, 60.0, 0.0),
        ("ImageUpdateAutomation", 1800.0, 210.0, 1800.0),
        ("Kustomization", 600.0, 60.0, 120.0),
        ("Provider", 600.0, 15.0, 600.0),
        ("Alert", 0.0, 60.0, 0.0),
        ("Receiver", 600.0, 60.0, 600.0),
    ],
)
def test_interval_and_timeout_follow_flux_defaults(
    kind: str, interval: float, timeout: float, retry: float
) -> None:
    (obj,) = load_text(FLUX_DOCS[kind])
    assert (interval_s(obj), timeout_s(obj), retry_interval_s(obj)) == (interval, timeout, retry)


def test_kustomization_timeout_defaults_to_its_interval() -> None:
    (obj,) = load_text(FLUX_DOCS["Kustomization"].replace("  timeout: 1m\n", ""))
    assert timeout_s(obj) == 600.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("5m0s", 300.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("0", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1d", "m5", "5m 3s", "-1s"])
def test_parse_duration_refuses_non_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m30s"), (3600, "1h"), (0.25, "250ms"), (0, "0ms"), (3661, "1h1m1s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_dependents_include_kustomizations_depending_on_one() -> None:
    from gitops_tasks.objects import dependents_of, load_text

    objects = load_text(
        """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: infra, namespace: flux-system}
spec: {interval: 1m, path: ./infra, prune: true, sourceRef: {kind: GitRepository, name: fleet}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 1m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: other}
  dependsOn: [{name: infra}]
""",
        filename="deps.yaml",
    )
    infra = objects[0].ref
    assert [r.name for r in dependents_of(infra, objects)] == ["apps"]

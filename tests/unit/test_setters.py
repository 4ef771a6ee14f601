"""Setters: only the marked values change, every other byte of the file stays as it was."""

from __future__ import annotations

import pytest

from gitops_tasks.automation.setters import MARKER_TOKEN, PolicyImage, parse_marker, update_text

POLICIES = {
    "apps:app": PolicyImage("ghcr.io/org/app", "1.2.0"),
    "apps:db": PolicyImage("docker.io/library/postgres", "16.2", "sha256:" + "a" * 64),
    "other:app": PolicyImage("ghcr.io/org/other", "9.9.9"),
    "apps:num": PolicyImage("ghcr.io/org/num", "2.10"),
}
M = '# {"$imagepolicy": "apps:app"}'


def rewrite(text: str, *, namespace: str | None = "apps") -> str:
    result = update_text(text, POLICIES, path="f.yaml", namespace=namespace)
    assert result.skipped is None
    return result.text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            f"image: ghcr.io/org/app:1.0.0 {M}\n",
            f"image: ghcr.io/org/app:1.2.0 {M}\n",
            id="plain",
        ),
        pytest.param(
            f'image: "ghcr.io/org/app:1.0.0"   {M}   \n',
            f'image: "ghcr.io/org/app:1.2.0"   {M}   \n',
            id="double-quoted-and-trailing-spaces",
        ),
        pytest.param(
            f"image: 'ghcr.io/org/app:1.0.0' {M}\n",
            f"image: 'ghcr.io/org/app:1.2.0' {M}\n",
            id="single-quoted",
        ),
        pytest.param(
            f"containers:\n- name: a\n  image: ghcr.io/org/app:1.0.0 {M}\n",
            f"containers:\n- name: a\n  image: ghcr.io/org/app:1.2.0 {M}\n",
            id="list-item-mapping",
        ),
        pytest.param(
            f"images:\n  - ghcr.io/org/app:1.0.0 {M}\n  - other:1\n",
            f"images:\n  - ghcr.io/org/app:1.2.0 {M}\n  - other:1\n",
            id="sequence-scalar",
        ),
        pytest.param(
            f"a: 1\r\n\r\n# comment\r\nimage: ghcr.io/org/app:1.0.0 {M}\r\nb: x\r\n",
            f"a: 1\r\n\r\n# comment\r\nimage: ghcr.io/org/app:1.2.0 {M}\r\nb: x\r\n",
            id="crlf",
        ),
        pytest.param(
            f"image: ghcr.io/org/app:1.0.0 {M}",
            f"image: ghcr.io/org/app:1.2.0 {M}",
            id="no-final-newline",
        ),
        pytest.param(
            f"\ufeffimage: ghcr.io/org/app:1.0.0 {M}\n",
            f"\ufeffimage: ghcr.io/org/app:1.2.0 {M}\n",
            id="byte-order-mark",
        ),
        pytest.param(
            f"image: ghcr.io/org/app:1.0.0    #{M[2:]}\n",
            f"image: ghcr.io/org/app:1.2.0    #{M[2:]}\n",
            id="no-space-after-hash",
        ),
        pytest.param(
            'repo: ghcr.io/org/x # {"$imagepolicy": "apps:app:name"}\n'
            'tag: "1.0.0" # {"$imagepolicy": "apps:app:tag"}\n'
            'digest: sha256:0 # {"$imagepolicy": "apps:db:digest"}\n'
            'full: postgres:15 # {"$imagepolicy": "apps:db"}\n',
            'repo: ghcr.io/org/app # {"$imagepolicy": "apps:app:name"}\n'
            'tag: "1.2.0" # {"$imagepolicy": "apps:app:tag"}\n'
            f'digest: sha256:{"a" * 64} # {{"$imagepolicy": "apps:db:digest"}}\n'
            f'full: docker.io/library/postgres:16.2@sha256:{"a" * 64} # {{"$imagepolicy": "apps:db"}}\n',
            id="tag-name-digest-suffixes",
        ),
        pytest.param(
            f"image: &img ghcr.io/org/app:1.0.0 {M}\nsame: *img\nt: !!str 'ghcr.io/org/app:1.0.0' {M}\n",
            f"image: &img ghcr.io/org/app:1.2.0 {M}\nsame: *img\nt: !!str 'ghcr.io/org/app:1.2.0' {M}\n",
            id="anchor-and-tag-kept",
        ),
        pytest.param(
            'version: 1.0 # {"$imagepolicy": "apps:num:tag"}\n',
            'version: "2.10" # {"$imagepolicy": "apps:num:tag"}\n',
            id="plain-number-becomes-quoted-string",
        ),
        pytest.param(
            "values:\n  image: {repository: ghcr.io/org/app, tag: 1.0.0} " + M + "\n",
            "values:\n  image: {repository: ghcr.io/org/app, tag: 1.0.0} " + M + "\n",
            id="marker-after-flow-mapping-is-not-a-scalar-marker",
        ),
        pytest.param(
            f"spec: {{image: 'ghcr.io/org/app:1.0.0'}}\nx: [a, 'ghcr.io/org/app:1.0.0'] {M}\n",
            f"spec: {{image: 'ghcr.io/org/app:1.0.0'}}\nx: [a, 'ghcr.io/org/app:1.0.0'] {M}\n",
            id="flow-sequence-untouched",
        ),
        pytest.param(
            f'cmd: "echo {M.replace(chr(34), chr(92) + chr(34))}"\n',
            f'cmd: "echo {M.replace(chr(34), chr(92) + chr(34))}"\n',
            id="marker-text-inside-a-string",
        ),
        pytest.param(
            f"image: {M}\n  ghcr.io/org/app:1.0.0\n",
            f"image: {M}\n  ghcr.io/org/app:1.0.0\n",
            id="marker-on-the-key-line-only",
        ),
        pytest.param(
            'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "other:app"}\n',
            'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "other:app"}\n',
            id="other-namespace-untouched",
        ),
        pytest.param(
            'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "apps:unknown"}\n',
            'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "apps:unknown"}\n',
            id="unknown-policy-untouched",
        ),
        pytest.param(
            'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": apps:app}\n'
            'tag: 1.0.0 # {"$imagepolicy": "apps:app:version"}\n',
            'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": apps:app}\n'
            'tag: 1.0.0 # {"$imagepolicy": "apps:app:version"}\n',
            id="malformed-markers-untouched",
        ),
        pytest.param(
            f"key: |\n  image: ghcr.io/org/app:1.0.0 {M}\n",
            f"key: |\n  image: ghcr.io/org/app:1.0.0 {M}\n",
            id="inside-a-block-scalar",
        ),
    ],
)
def test_only_marked_values_change(before: str, after: str) -> None:
    assert rewrite(before) == after


def test_multiple_documents_keep_separators_and_name_their_objects() -> None:
    text = (
        "# leading comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
        f"  namespace: apps\nspec:\n  image: ghcr.io/org/app:1.0.0 {M}\n...\n---\n"
        f"kind: HelmRelease\nmetadata: {{name: chart}}\nspec:\n  values:\n    tag: 1.0.0 "
        '# {"$imagepolicy": "apps:app:tag"}\n\n\n'
    )
    result = update_text(text, POLICIES, path="apps/all.yaml", namespace="apps")
    assert result.text == text.replace("app:1.0.0", "app:1.2.0").replace("tag: 1.0.0", "tag: 1.2.0")
    assert [(c.line, c.kind, c.name, c.namespace, c.api_version) for c in result.changes] == [
        (9, "Deployment", "web", "apps", "apps/v1"),
        (16, "HelmRelease", "chart", None, None),
    ]
    first = result.changes[0]
    assert (first.file, first.old_value, first.new_value, first.setter, first.policy) == (
        "apps/all.yaml",
        "ghcr.io/org/app:1.0.0",
        "ghcr.io/org/app:1.2.0",
        "apps:app",
        "apps:app",
    )


def test_a_value_already_current_is_not_a_change() -> None:
    text = f"image: ghcr.io/org/app:1.2.0 {M}\n"
    result = update_text(text, POLICIES, namespace="apps")
    assert (result.text, result.changes) == (text, [])


def test_without_a_namespace_every_given_policy_applies() -> None:
    text = 'image: x:1 # {"$imagepolicy": "other:app"}\n'
    assert rewrite(text, namespace=None) == 'image: ghcr.io/org/other:9.9.9 # {"$imagepolicy": "other:app"}\n'


def test_ignored_markers_say_why() -> None:
    text = (
        'a: x:1 # {"$imagepolicy": "other:app"}\nb: x:1 # {"$imagepolicy": "apps:nope"}\n'
        'c: x # {"$imagepolicy": "apps:app:digest"}\n'
    )
    result = update_text(text, POLICIES, namespace="apps")
    assert result.changes == []
    assert result.ignored == [
        "line 1: other:app names namespace other, not apps",
        "line 2: no ready ImagePolicy apps:nope",
        "line 3: ImagePolicy apps:app has no digest for apps:app:digest",
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"image: [unclosed {M}\n", id="unparsable-yaml"),
        pytest.param(
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  image: {{ .Values.image }} "
            f"{M}\n{{{{- if .Values.x }}}}\nx: 1\n{{{{- end }}}}\n",
            id="helm-template",
        ),
        pytest.param(f"[general]\nimage = app:1 {M}\n  bad: indentation: here\n", id="not-yaml"),
        # PyYAML refuses a tab before a comment (YAML 1.2 allows it): skipped, never mangled.
        pytest.param(f"image: ghcr.io/org/app:1.0.0\t{M}\n", id="tab-before-comment"),
    ],
)
def test_files_that_do_not_parse_are_skipped_unchanged(text: str) -> None:
    result = update_text(text, POLICIES, path="t.yaml", namespace="apps")
    assert result.text == text
    assert result.changes == []
    assert result.skipped is not None and result.skipped.startswith("not valid YAML (line ")


def test_files_without_the_token_are_not_even_parsed() -> None:
    text = "{{ this is a helm template }}\n: : :\n"
    result = update_text(text, POLICIES)
    assert (result.text, result.skipped, result.changes) == (text, None, [])
    assert MARKER_TOKEN not in text


def test_policy_values_may_be_plain_mappings() -> None:
    result = update_text(f"image: a:1 {M}\n", {"apps:app": {"image": "a", "tag": "2"}})
    assert result.text == f"image: a:2 {M}\n"


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ('{"$imagepolicy": "ns:name"}', ("ns:name", "ns", "name", None)),
        ('{"$imagepolicy": "ns:name:tag"}', ("ns:name:tag", "ns", "name", "tag")),
        ('{"$imagepolicy": "ns:name:name"}', ("ns:name:name", "ns", "name", "name")),
        ('{"$imagepolicy": "ns:name:digest"}', ("ns:name:digest", "ns", "name", "digest")),
        ('{"$imagepolicy": "name"}', None),
        ('{"$imagepolicy": "ns:name:other"}', None),
        ('{"$imagepolicy": ":name"}', None),
        ('{"$other": "ns:name"}', None),
        ("{not json}", None),
    ],
)
def test_parse_marker(comment: str, expected: tuple[str, str, str, str | None] | None) -> None:
    marker = parse_marker(comment)
    got = None if marker is None else (marker.setter, marker.namespace, marker.name, marker.part)
    assert got == expected

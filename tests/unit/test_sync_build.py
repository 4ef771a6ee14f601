"""Building manifests from a checkout: plain trees, kustomize overlays, and the repository boundary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops_tasks.sync.build import Builder, build, find_kubectl, resolve_path
from gitops_tasks.sync.errors import BuildError, PathError
from gitops_tasks.sync.overlay import apply_common_metadata, apply_kustomize_fields

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)


def cm(name: str, namespace: str | None = None, **data: str) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    body = "".join(f"\n  {k}: {v!r}" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}\ndata:{body or ' {}'}\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names(manifests: list) -> list[str]:
    return [m.obj["metadata"]["name"] for m in manifests]


def test_plain_tree_is_read_recursively_in_name_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "apps/b.yaml": cm("b"),
            "apps/a.yml": cm("a") + "---\n" + cm("a2"),
            "apps/sub/c.yaml": cm("c"),
            "apps/notes.txt": "not yaml",
            "apps/.hidden/d.yaml": cm("hidden-dir"),
            "apps/.gitlab-ci.yml": "stages: [x]\n",
            "apps/chart/Chart.yaml": "apiVersion: v2\nname: chart\n",
            "apps/chart/templates/x.yaml": "{{ .Values.broken }}",
            "other/e.yaml": cm("elsewhere"),
        },
    )
    manifests = build(tmp_path, "./apps")
    assert names(manifests) == ["a", "a2", "b", "c"]
    assert manifests[1].origin == "apps/a.yml: document 2 (line 7)"


def test_list_documents_contribute_their_items(tmp_path: Path) -> None:
    write(tmp_path, {"l.yaml": "apiVersion: v1\nkind: List\nitems:\n- " + cm("x").replace("\n", "\n  ")})
    assert names(build(tmp_path, None)) == ["x"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            cm("ok") + "---\nkind: ConfigMap\nmetadata: {name: x}\n",
            "bad.yaml: document 2 (line 7): ConfigMap is missing apiVersion",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {}\n",
            "bad.yaml: document 1 (line 1): Secret is missing metadata.name",
        ),
        (
            "- just\n- a list\n",
            "bad.yaml: document 1 (line 1): expected a Kubernetes object (a mapping), got list",
        ),
        ("apiVersion: v1\nkind: [unclosed\n", "bad.yaml: invalid YAML at line 3"),
    ],
)
def test_invalid_manifests_are_refused_naming_file_document_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    write(tmp_path, {"good.yaml": cm("good"), "bad.yaml": text})
    with pytest.raises(BuildError) as err:
        build(tmp_path, ".")
    assert expected in err.value.message


def test_timestamps_stay_strings(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {when: 2024-01-01}\n"},
    )
    assert build(tmp_path, ".")[0].obj["data"]["when"] == "2024-01-01"


@pytest.mark.parametrize("path", ["../outside", "apps/../../outside", "apps/../.."])
def test_path_leading_out_of_the_repository_is_refused(tmp_path: Path, path: str) -> None:
    root = write(tmp_path / "repo", {"apps/a.yaml": cm("a")})
    write(tmp_path, {"outside/x.yaml": cm("x")})
    with pytest.raises(PathError, match="leads outside the repository"):
        build(root, path)


def test_absolute_path_means_the_repository_root_as_in_flux(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"apps/a.yaml": cm("a")})
    assert names(build(root, "/apps")) == ["a"]
    assert resolve_path(root, "/") == root.resolve()


def test_symlinks_leading_out_of_the_repository_are_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"secret.yaml": cm("stolen")})
    root = write(tmp_path / "repo", {"apps/a.yaml": cm("a")})
    (root / "linked").symlink_to(outside)
    with pytest.raises(PathError, match=r"resolves .*outside the repository"):
        build(root, "linked")
    (root / "apps" / "dir-link").symlink_to(outside)
    with pytest.raises(PathError, match="apps/dir-link is a symlink leading outside"):
        build(root, "apps")
    (root / "apps" / "dir-link").unlink()
    (root / "apps" / "file-link.yaml").symlink_to(outside / "secret.yaml")
    with pytest.raises(PathError, match=r"apps/file-link\.yaml is a symlink leading outside"):
        build(root, "apps")


def test_symlinks_inside_the_repository_are_followed_once(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"base/a.yaml": cm("a"), "apps/b.yaml": cm("b")})
    (root / "apps" / "base").symlink_to(root / "base")
    (root / "apps" / "loop").symlink_to(root / "apps")
    assert names(build(root, "apps")) == ["b", "a"]  # b.yaml sorts before base/


def test_missing_path_and_file_path_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": cm("a")})
    with pytest.raises(PathError, match="kustomization path not found"):
        build(tmp_path, "nope")
    with pytest.raises(PathError, match="is a file"):
        build(tmp_path, "a.yaml")


def test_missing_kubectl_is_a_build_error_naming_the_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BuildError, match="kubectl") as err:
        find_kubectl({"PATH": str(tmp_path)})
    assert "KUBECTL" in err.value.message
    write(tmp_path, {"k/kustomization.yaml": "resources: [a.yaml]\n", "k/a.yaml": cm("a")})
    monkeypatch.setenv("KUBECTL", "no-such-kubectl")
    with pytest.raises(BuildError, match="'no-such-kubectl' was not found: install kubectl or set KUBECTL"):
        build(tmp_path, "k")


OVERLAY = {
    "base/kustomization.yaml": "resources: [cm.yaml]\n",
    "base/cm.yaml": cm("settings", level="base"),
    "prod/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\nnamespace: prod\n",
}


@needs_kubectl
def test_kustomize_overlay_is_built_with_kubectl(tmp_path: Path) -> None:
    write(tmp_path, OVERLAY)
    manifests = build(tmp_path, "prod")
    assert [(m.obj["metadata"]["name"], m.obj["metadata"]["namespace"]) for m in manifests] == [
        ("prod-settings", "prod")
    ]
    assert manifests[0].origin == "kustomize build of prod: document 1"


@needs_kubectl
def test_a_subdirectory_with_a_kustomization_is_built_as_one_overlay(tmp_path: Path) -> None:
    write(tmp_path, {**OVERLAY, "clusters/x/plain.yaml": cm("plain")})
    (tmp_path / "clusters" / "x" / "prod").symlink_to(tmp_path / "prod")
    assert names(build(tmp_path, "clusters")) == ["plain", "prod-settings"]


@needs_kubectl
def test_kustomize_failure_is_reported_with_kustomize_words(tmp_path: Path) -> None:
    write(tmp_path, {"k/kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(BuildError, match=r"kustomize build of k failed: .*missing\.yaml"):
        build(tmp_path, "k")


def test_overlay_resources_leading_out_of_the_repository_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere", {"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": cm("x")})
    root = write(tmp_path / "repo", {"k/kustomization.yaml": "resources: [../../elsewhere]\n"})
    with pytest.raises(
        PathError, match=r"k/kustomization.yaml: resources entry '../../elsewhere' leads outside"
    ):
        Builder(root, kubectl="/bin/false").build("k")


@needs_kubectl
def test_spec_patches_images_prefix_and_common_metadata_apply_to_plain_trees(tmp_path: Path) -> None:
    deploy = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
        "      containers: [{name: web, image: nginx:1.0}]\n"
    )
    write(tmp_path, {"apps/web.yaml": deploy, "comp/kustomization.yaml": COMPONENT})
    spec = {
        "namePrefix": "x-",
        "images": [{"name": "nginx", "newTag": "2.0"}],
        "patches": [
            {
                "patch": "- op: add\n  path: /metadata/annotations/patched\n  value: 'yes'\n",
                "target": {"kind": "Deployment"},
            }
        ],
        "components": ["../comp"],
        "commonMetadata": {"labels": {"team": "a"}},
    }
    builder = Builder(tmp_path)
    manifests = apply_kustomize_fields(
        builder.build("apps"),
        spec,
        root=tmp_path,
        directory=tmp_path / "apps",
        kustomize=lambda d: builder.kustomize(d, check_refs=False),
    )
    apply_common_metadata(manifests, spec)
    (obj,) = [m.obj for m in manifests]
    assert obj["metadata"]["name"] == "x-web"
    assert obj["metadata"]["annotations"] == {"patched": "yes", "component": "on"}
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2.0"


COMPONENT = """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
- target: {kind: Deployment}
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: any, annotations: {component: "on"}}
"""


def test_missing_component_fails_unless_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"apps/a.yaml": cm("a")})
    builder = Builder(tmp_path, kubectl="/bin/false")
    kwargs = {"root": tmp_path, "directory": tmp_path / "apps", "kustomize": lambda d: []}
    with pytest.raises(BuildError, match=r"spec\.components entry 'nope'"):
        apply_kustomize_fields(builder.build("apps"), {"components": ["nope"]}, **kwargs)
    with pytest.raises(PathError, match="leads outside"):
        apply_kustomize_fields(builder.build("apps"), {"components": ["../../x"]}, **kwargs)
    spec = {"components": ["nope"], "ignoreMissingComponents": True}
    assert apply_kustomize_fields(builder.build("apps"), spec, **kwargs) == []


@needs_kubectl
def test_kustomize_output_past_the_build_budget_stops_kubectl_at_the_budget(tmp_path: Path) -> None:
    # Given an overlay generating a ConfigMap of 2 MB, built with a budget of 64 KiB
    write(
        tmp_path,
        {
            "k/kustomization.yaml": "configMapGenerator:\n- name: big\n  files: [big.txt]\n",
            "k/big.txt": "x" * 2_000_000,
        },
    )
    builder = Builder(tmp_path, max_bytes=64 * 1024)

    # When it is built, then the build fails naming the overlay and the budget
    with pytest.raises(BuildError) as info:
        builder.build("k")
    assert info.value.message == (
        "kustomize build of k (stopped at the limit): the build reads more than 65536 bytes of YAML; "
        "split spec.path over several Kustomizations"
    )
    # and kubectl's output was read no further than the budget
    assert builder.read_bytes <= 64 * 1024 + 1


@needs_kubectl
def test_the_build_budget_counts_bytes_not_characters(tmp_path: Path) -> None:
    # Given an overlay printing 30,000 two-byte characters (60 kB), and a budget of 40 kB
    write(
        tmp_path,
        {
            "k/kustomization.yaml": "configMapGenerator:\n- name: accents\n  literals:\n  - v="
            + "é" * 30_000
            + "\n"
        },
    )
    assert len(Builder(tmp_path, max_bytes=80_000).build("k")) == 1

    # Then it is over the budget
    with pytest.raises(BuildError, match="the build reads more than 40000 bytes of YAML"):
        Builder(tmp_path, max_bytes=40_000).build("k")

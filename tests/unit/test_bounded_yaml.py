"""Every YAML reader refuses alias bombs and runaway nesting, and still reads ordinary anchors.

A bomb of ``levels`` nested anchors, each aliasing the previous one nine times, is about 10 lines
of text and expands to ``9 ** levels`` scalars. Six levels (531,441) are enough to cross the bound
while staying small enough that a reader without it only wastes a few hundred megabytes (so the
tests also show what an unbounded reader does: it loads the bomb); nine levels (387 million) are
the bomb of the issue, refused before anything is built.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from gitops_tasks.automation.setters import update_text
from gitops_tasks.automation.v1 import workloads_in_text
from gitops_tasks.automation.yamltext import YAMLTextError
from gitops_tasks.boundedyaml import ALIAS_FLOOR_NODES, MAX_DEPTH, YAMLLimitError, safe_load
from gitops_tasks.objects import LoadError, load_text
from gitops_tasks.settings import Settings
from gitops_tasks.sync.build import Builder, build
from gitops_tasks.sync.cluster import Cluster, KubeConfigError
from gitops_tasks.sync.errors import BuildError
from gitops_tasks.sync.manifests import ManifestError, parse

REFUSED = f"YAML aliases expand to more than {ALIAS_FLOOR_NODES} nodes"


def bomb(levels: int, *, head: str = "", indent: str = "") -> str:
    """``levels`` anchors under ``head``, each a list of nine aliases of the one before."""
    lines = [f"{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return head + "\n".join(lines) + "\n"


def configmap_bomb(levels: int) -> str:
    return bomb(levels, head="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: boom}\ndata:\n", indent="  ")


ANCHORS = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: &labels {app: web, tier: frontend}
    spec:
      selector: {matchLabels: *labels}
      template:
        metadata: {labels: *labels}
        spec:
          containers:
            - &container
              name: web
              image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "default:web"}
              env: &env [{name: A, value: "1"}, {name: B, value: "2"}]
            - <<: *container
              name: sidecar
              env: *env
    """
)


def test_ordinary_anchors_and_merge_keys_still_load_in_every_reader(tmp_path: Path) -> None:
    data = safe_load(ANCHORS)
    assert data["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
    assert data["spec"]["template"]["spec"]["containers"][1]["image"] == "ghcr.io/org/web:1.0.0"
    (tmp_path / "web.yaml").write_text(ANCHORS)
    assert [m.obj["metadata"]["name"] for m in build(tmp_path, ".")] == ["web"]
    assert [w.id for w in workloads_in_text(ANCHORS, "web.yaml")] == ["Deployment/default/web"]
    assert update_text(
        ANCHORS, {"default:web": {"image": "ghcr.io/org/web", "tag": "1.1.0"}}, path="web.yaml"
    ).changes


def test_a_big_document_may_use_aliases_up_to_ten_times_its_size() -> None:
    # 20,000 keys aliasing one 5-item anchor: 140,013 nodes expanded from 20,008 written
    shared = "shared: &s [" + ", ".join(str(i) for i in range(5)) + "]\n"
    text = shared + "".join(f"k{i}: *s\n" for i in range(20_000))
    assert len(safe_load(text)) == 20_001


@pytest.mark.timeout(30)
def test_the_billion_laughs_is_refused_before_it_is_built() -> None:
    with pytest.raises(YAMLLimitError) as info:
        safe_load(bomb(9))
    assert info.value.problem is not None and info.value.problem.startswith(REFUSED)


def test_apply_refuses_a_bomb_naming_file_and_line() -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: fine}\n---\n" + configmap_bomb(6)
    with pytest.raises(LoadError) as info:
        load_text(text, filename="objects.yaml")
    assert info.value.errors == [f"objects.yaml:5: {REFUSED} (the document has 32)"]


def test_sync_build_refuses_a_bomb_naming_file_document_and_line(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n")
    (tmp_path / "bomb.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n" + configmap_bomb(6)
    )
    with pytest.raises(BuildError) as info:
        build(tmp_path, ".")
    assert info.value.message == f"bomb.yaml: document 2 (line 5): {REFUSED} (the document has 32)"


def test_sync_build_refuses_a_bomb_in_a_kustomization_file(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\n" + bomb(6))
    with pytest.raises(BuildError) as info:
        build(tmp_path, ".", kubectl="kubectl")
    assert "kustomization.yaml: invalid kustomization: line 1: " + REFUSED in info.value.message


def test_manifests_count_aliases_across_the_documents_of_a_file() -> None:
    # Each document alone stays under the floor; together they would expand past it.
    one = configmap_bomb(5).replace("boom", "part")
    with pytest.raises(ManifestError, match=r"many\.yaml: document 2 \(line 11\): " + REFUSED):
        parse("---\n".join([one] * 40), "many.yaml")


def test_a_kubeconfig_from_a_secret_refuses_a_bomb() -> None:
    with pytest.raises(KubeConfigError, match=f"secret kube/cfg: invalid kubeconfig: .*{REFUSED}"):
        Cluster.from_kubeconfig_text(bomb(6), origin="secret kube/cfg")


def test_the_settings_file_refuses_a_bomb(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(bomb(6))
    with pytest.raises(ValueError, match=f"settings file {config}: .*{REFUSED}"):
        Settings.from_env({"GITOPS_TASKS_CONFIG": str(config)})


def test_setters_and_flux_v1_readers_refuse_a_bomb() -> None:
    text = configmap_bomb(6) + '  image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "default:web"}\n'
    result = update_text(
        text, {"default:web": {"image": "ghcr.io/org/web", "tag": "1.1.0"}}, path="bomb.yaml"
    )
    assert result.skipped is not None and REFUSED in result.skipped and result.text == text
    workload = bomb(
        6, head="apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n", indent="  "
    )
    with pytest.raises(YAMLTextError, match="line 1: " + REFUSED):
        workloads_in_text(workload, "w.yaml")


def test_an_anchor_inside_itself_is_refused() -> None:
    with pytest.raises(YAMLLimitError, match="refers to its own anchor"):
        safe_load("a: &a [1, *a]\n")
    with pytest.raises(LoadError, match="refers to its own anchor"):
        load_text("apiVersion: v1\nkind: X\nmetadata: &m {name: x, self: *m}\n", filename="c.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "- " * 50_000 + "x\n",  # block sequences, one level per two characters
        "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)) + " " * 400 + "end\n",
        "k: " + "[" * 300 + "]" * 300 + "\n",
        "k: " + "{a: " * 300 + "x" + "}" * 300 + "\n",
    ],
)
def test_nesting_deeper_than_the_bound_is_a_clear_error_in_every_reader(text: str, tmp_path: Path) -> None:
    deep = f"YAML nesting deeper than {MAX_DEPTH} levels"
    with pytest.raises(YAMLLimitError, match=deep):
        safe_load(text)
    with pytest.raises(ManifestError, match=deep):
        parse(text, "deep.yaml")
    with pytest.raises(LoadError, match=deep):
        load_text(text, filename="deep.yaml")
    with pytest.raises(YAMLTextError, match=deep):
        workloads_in_text(text, "deep.yaml")


def test_nesting_within_the_bound_loads() -> None:
    data = safe_load("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    for _ in range(MAX_DEPTH - 1):
        (data,) = data
    assert data == []


def test_safe_load_reads_one_document_as_yaml_safe_load_does() -> None:
    assert safe_load("") is None
    assert safe_load("a: 1\n") == {"a": 1}
    with pytest.raises(yaml.YAMLError, match="expected a single document"):
        safe_load("a: 1\n---\nb: 2\n")


def test_a_build_reading_more_yaml_than_its_budget_is_refused_naming_the_file(tmp_path: Path) -> None:
    padding = "#" + "x" * 600 + "\n"
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(
            padding + f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name[0]}}}\n"
        )
    assert len(Builder(tmp_path, max_bytes=2000).build(".")) == 2
    with pytest.raises(BuildError) as info:
        Builder(tmp_path, max_bytes=1000).build(".")
    assert info.value.message == (
        "b.yaml: the build reads more than 1000 bytes of YAML; split spec.path over several Kustomizations"
    )

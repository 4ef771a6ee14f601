"""update_tree: which files are looked at, where it refuses to go, how files are written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops_tasks.automation.tree import UpdatePathError, resolve_update_path, update_tree

M = '# {"$imagepolicy": "apps:app"}'
POLICIES = {"apps:app": {"image": "ghcr.io/org/app", "tag": "2.0.0"}}
MARKED = f"image: ghcr.io/org/app:1.0.0 {M}\n"
UPDATED = f"image: ghcr.io/org/app:2.0.0 {M}\n"


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode())


def test_only_yaml_files_and_kustomization_are_rewritten(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "apps/a.yaml": MARKED,
            "apps/nested/b.yml": MARKED,
            "apps/Kustomization": MARKED,
            "apps/c.json": MARKED,
            "apps/d.txt": MARKED,
            "apps/e.yaml.tpl": MARKED,
            ".git/config.yaml": MARKED,
            "apps/.git/x.yaml": MARKED,
        },
    )
    result = update_tree(tmp_path, ".", POLICIES, namespace="apps")
    assert sorted(f.path for f in result.files) == ["apps/Kustomization", "apps/a.yaml", "apps/nested/b.yml"]
    for rel in ("apps/a.yaml", "apps/nested/b.yml", "apps/Kustomization"):
        assert (tmp_path / rel).read_text() == UPDATED
    for rel in ("apps/c.json", "apps/d.txt", "apps/e.yaml.tpl", ".git/config.yaml", "apps/.git/x.yaml"):
        assert (tmp_path / rel).read_text() == MARKED
    assert [c.file for c in result.changes] == ["apps/Kustomization", "apps/a.yaml", "apps/nested/b.yml"]


def test_update_path_limits_the_walk_and_may_name_a_file(tmp_path: Path) -> None:
    write(tmp_path, {"apps/a.yaml": MARKED, "infra/b.yaml": MARKED})
    assert [f.path for f in update_tree(tmp_path, "./apps", POLICIES).files] == ["apps/a.yaml"]
    assert (tmp_path / "infra/b.yaml").read_text() == MARKED
    assert [f.path for f in update_tree(tmp_path, "/infra/b.yaml", POLICIES).files] == ["infra/b.yaml"]


@pytest.mark.parametrize("path", ["..", "../x", "apps/../../x", "/../x"])
def test_paths_leaving_the_repository_are_refused(tmp_path: Path, path: str) -> None:
    (tmp_path / "apps").mkdir()
    with pytest.raises(UpdatePathError, match="outside the repository") as info:
        resolve_update_path(tmp_path, path)
    assert not info.value.missing


def test_a_link_leading_out_is_refused_and_linked_files_are_not_followed(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    write(outside, {"x.yaml": MARKED})
    write(repo, {"apps/a.yaml": MARKED})
    (repo / "escape").symlink_to(outside)
    (repo / "apps" / "linked.yaml").symlink_to(outside / "x.yaml")
    with pytest.raises(UpdatePathError, match="through a link"):
        update_tree(repo, "escape", POLICIES)
    result = update_tree(repo, ".", POLICIES)
    assert [f.path for f in result.files] == ["apps/a.yaml"]
    assert result.skipped == [("apps/linked.yaml", "symbolic link (not followed)")]
    assert (outside / "x.yaml").read_text() == MARKED


def test_a_missing_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(UpdatePathError, match="does not exist") as info:
        update_tree(tmp_path, "nope", POLICIES)
    assert info.value.missing


def test_unparsable_and_non_utf8_files_are_reported_and_left_alone(tmp_path: Path) -> None:
    bad = f"a: [unclosed {M}\n"
    latin = f"name: caf\xe9\nimage: ghcr.io/org/app:1.0.0 {M}\n".encode("latin-1")
    write(tmp_path, {"a.yaml": bad, "b.yaml": latin, "c.yaml": MARKED})
    result = update_tree(tmp_path, ".", POLICIES)
    assert [f.path for f in result.files] == ["c.yaml"]
    assert [(p, why.split(" (")[0]) for p, why in result.skipped] == [
        ("a.yaml", "not valid YAML"),
        ("b.yaml", "not UTF-8 text"),
    ]
    assert (tmp_path / "a.yaml").read_text() == bad
    assert (tmp_path / "b.yaml").read_bytes() == latin


def test_write_false_reports_without_writing(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": MARKED})
    result = update_tree(tmp_path, ".", POLICIES, write=False)
    assert [c.new_value for c in result.changes] == ["ghcr.io/org/app:2.0.0"]
    assert (tmp_path / "a.yaml").read_text() == MARKED


def test_rewritten_files_keep_their_mode_and_leave_no_temp_files(tmp_path: Path) -> None:
    write(tmp_path, {"run.yaml": MARKED})
    os.chmod(tmp_path / "run.yaml", 0o700)
    update_tree(tmp_path, ".", POLICIES)
    assert (tmp_path / "run.yaml").stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]


def test_ignored_markers_are_listed_with_their_file(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": 'x: y # {"$imagepolicy": "other:app"}\n'})
    result = update_tree(tmp_path, ".", POLICIES, namespace="apps")
    assert result.ignored == ["a.yaml: line 1: other:app names namespace other, not apps"]
    assert not result.changed

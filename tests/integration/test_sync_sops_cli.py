"""``gitops-tasks build`` / ``diff`` with ``--decryption-secret``: real sops, real age keys, the CLI
as a subprocess; Secret values masked unless asked for, the user's files never decrypted."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.tasks.context import Context
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_cli import Cli, cli, declare, gt_env, kube, reconcile  # noqa: F401
from tests.integration.test_sync_world import dump, namespace
from tests.kubeapi.fixtures import KubeTarget, unique_name
from tests.sopskeys import AgeKey, age_key, encrypt

PLAINTEXT = "s3cret-cli-7f3a"


@pytest.fixture(scope="module")
def key() -> AgeKey:
    return age_key()


def sealed_secret(name: str, ns: str, key: AgeKey) -> str:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}}
    return encrypt(dump({**secret, "stringData": {"password": PLAINTEXT}}), "yaml", age=key.recipient)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed")
def test_build_path_decrypts_with_a_key_file_and_never_decrypts_the_users_files(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
    key: AgeKey,
) -> None:
    # Given an overlay with an encrypted Secret and a secretGenerator over an encrypted env file
    app = tmp_path / "app"
    app.mkdir()
    files = {
        "kustomization.yaml": "resources: [db.yaml]\n"
        "generatorOptions: {disableNameSuffixHash: true}\n"
        "secretGenerator:\n- name: env\n  envs: [app.env]\n",
        "db.yaml": sealed_secret("db", "apps", key),
        "app.env": encrypt(f"PASSWORD={PLAINTEXT}\n", "dotenv", age=key.recipient),
    }
    for name, text in files.items():
        (app / name).write_text(text)
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# created: by the test\n{key.identity}\n")
    # When it is built with the key
    masked = cli("build", str(app), "--decryption-secret", str(key_file))
    shown = cli("build", str(app), "--decryption-secret", str(key_file), "--show-secrets")
    # Then values are masked, or shown when asked for, decrypted
    assert masked.returncode == 0, masked.stderr
    built = {o["metadata"]["name"]: o for o in yaml.safe_load_all(masked.stdout)}
    assert built["db"]["stringData"] == {"password": "***"} and built["env"]["data"] == {"PASSWORD": "***"}
    assert PLAINTEXT not in masked.stdout + masked.stderr and "ENC[" not in masked.stdout
    assert shown.returncode == 0, shown.stderr
    revealed = {o["metadata"]["name"]: o for o in yaml.safe_load_all(shown.stdout)}
    assert revealed["db"]["stringData"] == {"password": PLAINTEXT}
    # And the user's files stay as they were, encrypted
    assert {name: (app / name).read_text() for name in files} == files
    # Without a key nothing is decrypted; with the wrong one the build fails naming the file
    plain = cli("build", str(app))
    assert plain.returncode == 0 and "ENC[" in plain.stdout and PLAINTEXT not in plain.stdout
    (tmp_path / "other.agekey").write_text(age_key().identity)
    wrong = cli("build", str(app), "--decryption-secret", str(tmp_path / "other.agekey"))
    assert wrong.returncode == 1 and "no key of the decryption Secret decrypts" in wrong.stderr, wrong.stderr
    assert "app.env" in wrong.stderr or "db.yaml" in wrong.stderr
    not_a_key = cli("build", str(app), "--decryption-secret", str(app / "db.yaml"))
    assert not_a_key.returncode == 1 and "neither an age identity nor" in not_a_key.stderr


@pytest.fixture
def sealed_repo(
    ctx: Context,
    kube: KubeTarget,  # noqa: F811
    file_remote: RemoteRepo,
    key: AgeKey,
) -> Iterator[str]:
    ns = unique_name("sops-cli")
    file_remote.commit(
        {"deploy/ns.yaml": dump(namespace(ns)), "deploy/db.yaml": sealed_secret("db", ns, key)}
    )
    # The decryption Secret is not readable here (as for a user without access to it)
    declare(
        ctx, file_remote, path="./deploy", decryption={"provider": "sops", "secretRef": {"name": "sops-age"}}
    )
    assert reconcile(ctx, ObjectRef("GitRepository", "default", "repo"))["result"] == "success"
    yield ns
    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    cluster.delete("v1", "Namespace", ns)
    cluster.close()


def test_build_and_diff_kustomization_decrypt_with_a_key_directory(
    cli: Cli,  # noqa: F811
    sealed_repo: str,
    tmp_path: Path,
    key: AgeKey,
) -> None:
    keys = tmp_path / "sops-age"
    keys.mkdir()
    (keys / "identity.agekey").write_text(key.identity)
    without = cli("build", "kustomization", "app")
    assert (
        without.returncode == 1
        and "spec.decryption.secretRef: Secret default/sops-age not found" in without.stderr
    )
    built = cli("build", "kustomization", "app", "--decryption-secret", str(keys))
    assert built.returncode == 0, built.stderr
    secret = next(o for o in yaml.safe_load_all(built.stdout) if o["kind"] == "Secret")
    assert secret["stringData"] == {"password": "***"} and "sops" not in secret
    shown = cli("build", "kustomization", "app", "--decryption-secret", str(keys), "--show-secrets")
    assert PLAINTEXT in shown.stdout
    diff = cli("diff", "kustomization", "app", "--decryption-secret", str(keys))
    assert diff.returncode == 1, diff.stderr
    assert f"+++ merged/Secret/{sealed_repo}/db" in diff.stdout and "***" in diff.stdout
    assert PLAINTEXT not in diff.stdout + diff.stderr and "ENC[" not in diff.stdout

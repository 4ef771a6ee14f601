"""SOPS decryption in a sync (``spec.decryption``), with the real sops binary and real age (and PGP)
keys, against a Kubernetes API (the emulator, or GITOPS_TASKS_TEST_KUBECONFIG's cluster)."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.sync.sops import find_sops
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import World, configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target
from tests.sopskeys import AgeKey, age_key, encrypt, gpg_available, pgp_key, stop_gpg_agent

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)
PLAINTEXT = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    find_sops()  # fails the module clearly when the sops binary is missing
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


@pytest.fixture(scope="module")
def key() -> AgeKey:
    return age_key()


@pytest.fixture
def world(tmp_path: Path, kube: KubeTarget, file_remote: RemoteRepo, key: AgeKey) -> Iterator[World]:
    w = World(tmp_path, kube, file_remote)
    keys = w.secrets_dir / "default" / "sops-age"
    keys.mkdir(parents=True)
    (keys / "identity.agekey").write_text(key.identity + "\n")
    yield w
    w.cleanup()


def secret(name: str, ns: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, **fields}


def sealed(obj: dict[str, Any], key: AgeKey) -> str:
    return encrypt(dump(obj), "yaml", age=key.recipient)


def decrypted(live: dict[str, Any] | None) -> dict[str, str]:
    assert live is not None
    return {k: base64.b64decode(v).decode() for k, v in (live.get("data") or {}).items()}


DECRYPTION = {"provider": "sops", "secretRef": {"name": "sops-age"}}


def test_an_encrypted_secret_is_applied_decrypted(world: World, key: AgeKey) -> None:
    ns = world.ns
    world.commit(
        {
            "deploy/ns.yaml": dump(namespace(ns)),
            "deploy/db.yaml": sealed(secret("db", ns, stringData={"password": PLAINTEXT}), key),
        }
    )
    world.repository()
    world.kustomization("app", path="./deploy", decryption=DECRYPTION)
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    live = world.get("Secret", "db", ns)
    assert decrypted(live) == {"password": PLAINTEXT}
    assert live is not None and "sops" not in live
    assert PLAINTEXT not in outcome.message


@needs_kubectl
def test_an_overlay_decrypts_its_resources_patches_and_secret_generator_env_and_json_files(
    world: World, key: AgeKey
) -> None:
    # Given an overlay that moves an encrypted Secret into a namespace (kustomize changes it, so
    # it must be decrypted before the build for its MAC to hold) and generates two Secrets from
    # an encrypted dotenv file and an encrypted JSON file
    ns = world.ns
    kustomization = (
        f"namespace: {ns}\n"
        "resources: [ns.yaml, db.yaml]\n"
        "generatorOptions: {disableNameSuffixHash: true}\n"
        "secretGenerator:\n"
        "- name: app-env\n  envs: [app.env]\n"
        "- name: app-files\n  files: [config.json=config.enc.json]\n"
        "patches:\n- path: patch.yaml\n"
    )
    patch = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "placeholder"},
        "stringData": {"extra": PLAINTEXT},
    }
    world.commit(
        {
            "overlay/kustomization.yaml": kustomization,
            "overlay/ns.yaml": dump(namespace(ns)),
            "overlay/db.yaml": sealed(secret("db", "placeholder", stringData={"password": PLAINTEXT}), key),
            "overlay/app.env": encrypt(f"USER=app\nPASSWORD={PLAINTEXT}\n", "dotenv", age=key.recipient),
            "overlay/patch.yaml": sealed(patch, key),
            "overlay/config.enc.json": encrypt(
                json.dumps({"token": PLAINTEXT}), "json", age=key.recipient, regex=None
            ),
        }
    )
    world.repository()
    world.kustomization("app", path="./overlay", decryption=DECRYPTION)
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    assert decrypted(world.get("Secret", "db", ns)) == {"password": PLAINTEXT, "extra": PLAINTEXT}
    assert decrypted(world.get("Secret", "app-env", ns)) == {"USER": "app", "PASSWORD": PLAINTEXT}
    files = decrypted(world.get("Secret", "app-files", ns))
    assert json.loads(files["config.json"]) == {"token": PLAINTEXT}


def test_a_secret_value_holding_an_encrypted_file_is_decrypted_in_its_format(
    world: World, key: AgeKey
) -> None:
    ns = world.ns
    inner = encrypt(json.dumps({"token": PLAINTEXT}), "json", age=key.recipient, regex=None)
    world.commit(
        {
            "ns.yaml": dump(namespace(ns)),
            "creds.yaml": dump(
                secret("creds", ns, data={"creds.json": base64.b64encode(inner.encode()).decode()})
            ),
        }
    )
    world.repository()
    world.kustomization("app", decryption=DECRYPTION)
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    assert json.loads(decrypted(world.get("Secret", "creds", ns))["creds.json"]) == {"token": PLAINTEXT}


def test_a_wrong_key_fails_with_decryption_failed_and_applies_nothing(world: World, key: AgeKey) -> None:
    ns = world.ns
    other = age_key()
    world.commit(
        {
            "deploy/ns.yaml": dump(namespace(ns)),
            "deploy/cm.yaml": dump(configmap("before-the-secret", ns)),
            "deploy/db.yaml": sealed(secret("db", ns, stringData={"password": PLAINTEXT}), other),
        }
    )
    world.repository()
    world.kustomization("app", path="./deploy", decryption=DECRYPTION)
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("stalled", "DecryptionFailed"), outcome.message
    assert outcome.message.startswith("deploy/db.yaml: no key of the decryption Secret decrypts its data key")
    assert other.recipient in outcome.message and PLAINTEXT not in outcome.message
    assert world.get("Namespace", ns) is None and world.get("ConfigMap", "before-the-secret", ns) is None
    assert "lastAppliedRevision" not in world.status_of("app")


def test_a_tampered_file_fails_its_mac_check(world: World, key: AgeKey) -> None:
    # Given a file whose unencrypted name was changed after encryption, and one whose ciphertext was
    text = sealed(secret("db", world.ns, stringData={"password": PLAINTEXT}), key)
    renamed = text.replace("name: db", "name: db-evil")
    start = text.index("data:", text.index("password: ENC[")) + len("data:")
    flipped = "A" if text[start] != "A" else "B"
    changed = text[:start] + flipped + text[start + 1 :]
    world.commit({"a/db.yaml": renamed, "b/db.yaml": changed})
    world.repository()
    world.kustomization("a", path="./a", decryption=DECRYPTION)
    world.kustomization("b", path="./b", decryption=DECRYPTION)
    # Then both fail, and name the file
    outcome = world.sync("a")
    assert (outcome.reason, outcome.message) == (
        "DecryptionFailed",
        "a/db.yaml: MAC mismatch: the file was changed after it was encrypted",
    )
    outcome = world.sync("b")
    assert (outcome.reason, outcome.message) == (
        "DecryptionFailed",
        "b/db.yaml: a value does not decrypt: it was changed after it was encrypted",
    )
    assert world.get("Secret", "db-evil", world.ns) is None and world.get("Secret", "db", world.ns) is None


def test_the_decrypt_disabled_annotation_leaves_a_secret_as_committed(world: World, key: AgeKey) -> None:
    ns = world.ns
    inner = encrypt(json.dumps({"token": PLAINTEXT}), "json", age=key.recipient, regex=None)
    value = base64.b64encode(inner.encode()).decode()
    annotations = {"kustomize.toolkit.fluxcd.io/decrypt": "disabled"}
    world.commit(
        {
            "ns.yaml": dump(namespace(ns)),
            "kept.yaml": dump(
                {
                    **secret("kept", ns, data={"f.json": value}),
                    "metadata": {"name": "kept", "namespace": ns, "annotations": annotations},
                }
            ),
        }
    )
    world.repository()
    world.kustomization("app", decryption=DECRYPTION)
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    live = world.get("Secret", "kept", ns)
    assert live is not None and live["data"] == {"f.json": value}


def test_an_encrypted_document_without_spec_decryption_is_refused(world: World, key: AgeKey) -> None:
    ns = world.ns
    world.commit(
        {"ns.yaml": dump(namespace(ns)), "db.yaml": sealed(secret("db", ns, stringData={"p": "x"}), key)}
    )
    world.repository()
    world.kustomization("app")
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("stalled", "DecryptionFailed")
    assert outcome.message == (
        f"db.yaml: document 1 (line 1): Secret/{ns}/db is SOPS-encrypted and spec.decryption is not set"
    )
    assert world.get("Namespace", ns) is None


def test_a_missing_decryption_secret_is_retried(world: World, key: AgeKey) -> None:
    world.commit({"db.yaml": sealed(secret("db", world.ns, stringData={"p": "x"}), key)})
    world.repository()
    world.kustomization("app", decryption={"provider": "sops", "secretRef": {"name": "absent"}})
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason, outcome.message) == (
        "transient",
        "DecryptionFailed",
        "spec.decryption.secretRef: Secret default/absent not found",
    )


def test_the_controller_age_secret_decrypts_from_the_cluster_without_a_secret_ref(
    world: World, key: AgeKey
) -> None:
    # Given the controller-wide age key in a cluster Secret of another namespace
    ns = world.ns
    home = f"{ns}-flux"
    world.cluster.apply(namespace(home))
    world.cleanups.append(("v1", "Namespace", home, None))
    data = {"age.agekey": base64.b64encode(key.identity.encode()).decode()}
    world.cluster.apply(secret("sops-age", home, data=data))
    world.commit(
        {
            "ns.yaml": dump(namespace(ns)),
            "db.yaml": sealed(secret("db", ns, stringData={"password": PLAINTEXT}), key),
        }
    )
    world.repository()
    world.kustomization("app", decryption={"provider": "sops"})
    # Without the setting there is no key
    assert world.sync("app").reason == "DecryptionFailed"
    outcome = world.sync("app", dataclasses.replace(world.config, sops_age_secret=f"{home}/sops-age"))
    assert outcome.ready, outcome.message
    assert decrypted(world.get("Secret", "db", ns)) == {"password": PLAINTEXT}


@pytest.mark.skipif(not gpg_available(), reason="gpg (GnuPG) is not installed")
def test_a_pgp_key_decrypts(world: World, tmp_path: Path) -> None:
    pgp = pgp_key(tmp_path / "gnupg")
    try:
        ns = world.ns
        text = encrypt(
            dump(secret("db", ns, stringData={"password": PLAINTEXT})),
            "yaml",
            pgp=pgp.fingerprint,
            gnupghome=pgp.home,
        )
    finally:
        stop_gpg_agent(pgp.home)
    keys = world.secrets_dir / "default" / "sops-gpg"
    keys.mkdir(parents=True)
    (keys / "sops.asc").write_text(pgp.armored_private)
    world.commit({"ns.yaml": dump(namespace(ns)), "db.yaml": text})
    world.repository()
    world.kustomization("app", decryption={"provider": "sops", "secretRef": {"name": "sops-gpg"}})
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    assert decrypted(world.get("Secret", "db", ns)) == {"password": PLAINTEXT}


def test_a_directory_of_encrypted_files_is_decrypted_with_one_sops_run_per_file(
    tmp_path: Path, key: AgeKey
) -> None:
    from gitops_tasks.sync import decrypt
    from gitops_tasks.sync.build import Builder
    from gitops_tasks.sync.errors import DecryptionError

    for index in range(5):
        obj = secret(f"s{index}", "apps", stringData={"password": f"{PLAINTEXT}-{index}"})
        (tmp_path / f"s{index}.yaml").write_text(sealed(obj, key))
    (tmp_path / "plain.yaml").write_text(dump(configmap("plain", "apps")))
    with decrypt.from_keys({"k.agekey": key.identity}, "test") as decryptor:
        built = decryptor.documents(Builder(tmp_path, decryptor=decryptor).build("."))
        assert decryptor.calls == 5
    assert [m.obj.get("stringData") for m in built] == [None] + [
        {"password": f"{PLAINTEXT}-{i}"} for i in range(5)
    ]
    # One file for another key among them: the build names it
    (tmp_path / "s3.yaml").write_text(sealed(secret("s3", "apps", stringData={"p": "x"}), age_key()))
    with (
        decrypt.from_keys({"k.agekey": key.identity}, "test") as decryptor,
        pytest.raises(DecryptionError, match=r"^s3\.yaml: no key of the decryption Secret"),
    ):
        Builder(tmp_path, decryptor=decryptor).build(".")


@needs_kubectl
def test_files_decrypted_for_kustomize_are_put_back_encrypted_once_it_has_read_them(
    tmp_path: Path, key: AgeKey
) -> None:
    from gitops_tasks.sync import decrypt
    from gitops_tasks.sync.build import Builder

    files = {
        "kustomization.yaml": "resources: [db.yaml]\ngeneratorOptions: {disableNameSuffixHash: true}\n"
        "secretGenerator:\n- name: env\n  envs: [app.env]\n",
        "db.yaml": sealed(secret("db", "apps", stringData={"password": PLAINTEXT}), key),
        "app.env": encrypt(f"TOKEN={PLAINTEXT}\n", "dotenv", age=key.recipient),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "app.env").chmod(0o640)
    with decrypt.from_keys({"k.agekey": key.identity}, "test") as decryptor:
        built = {m.obj["metadata"]["name"]: m.obj for m in Builder(tmp_path, decryptor=decryptor).build(".")}
    assert built["db"]["stringData"] == {"password": PLAINTEXT}
    assert base64.b64decode(built["env"]["data"]["TOKEN"]).decode() == PLAINTEXT
    assert {name: (tmp_path / name).read_text() for name in files} == files
    assert (tmp_path / "app.env").stat().st_mode & 0o777 == 0o640


@needs_kubectl
def test_a_secret_generator_file_over_5_mib_is_not_decrypted(tmp_path: Path, key: AgeKey) -> None:
    from gitops_tasks.sync import decrypt
    from gitops_tasks.sync.build import Builder
    from gitops_tasks.sync.errors import DecryptionError

    (tmp_path / "kustomization.yaml").write_text("secretGenerator:\n- name: big\n  files: [big.yaml]\n")
    (tmp_path / "big.yaml").write_text("sops:\n    mac: ENC[x]\n" + "#" * (5 * 2**20))
    with (
        decrypt.from_keys({"k.agekey": key.identity}, "test") as decryptor,
        pytest.raises(
            DecryptionError,
            match=r"^big\.yaml: cannot decrypt a file of 5242902 bytes \(the limit is 5 MiB\)$",
        ),
    ):
        Builder(tmp_path, decryptor=decryptor).build(".")


def test_a_substitution_error_in_a_decrypted_value_does_not_quote_it(world: World, key: AgeKey) -> None:
    # Given a decrypted password that breaks post-build substitution (it holds "${")
    ns = world.ns
    password = "pw${unclosed-0badc0de-value"
    world.commit({"db.yaml": sealed(secret("db", ns, stringData={"password": password}), key)})
    world.repository()
    world.kustomization("app", decryption=DECRYPTION, postBuild={"substitute": {"x": "1"}})
    outcome = world.sync("app")
    assert outcome.reason == "BuildFailed"
    assert "unterminated expression <redacted>" in outcome.message, outcome.message
    assert "0badc0de" not in outcome.message

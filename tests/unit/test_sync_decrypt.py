"""The pure parts of SOPS decryption: what sops' errors become, formats, markers, the annotation,
what is refused without keys, and the private key directory a keyring makes."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from gitops_tasks.cli.build import decryption_keys
from gitops_tasks.sync.decrypt import Decryptor, _detect, disabled, format_for_path
from gitops_tasks.sync.errors import DecryptionError
from gitops_tasks.sync.manifests import Manifest
from gitops_tasks.sync.sops import Keyring, summary

ENCRYPTED = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "db", "namespace": "apps"},
    "stringData": {"password": "ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]"},
    "sops": {"mac": "ENC[AES256_GCM,data:m,iv:x,tag:y,type:str]", "version": "3.11.0"},
}


def test_summary_never_repeats_a_value_or_a_hash_sops_quoted() -> None:
    quoted = (
        b"Error decrypting tree: Error walking tree: Could not decrypt value: "
        b"Input string hunter2 does not match sops' data format\n"
    )
    assert summary(quoted) == "a value that should be encrypted is not: it was changed after it was encrypted"
    mac = b"MAC mismatch. File has " + b"A1" * 64 + b", computed " + b"B2" * 64 + b"\n"
    assert summary(mac) == "MAC mismatch: the file was changed after it was encrypted"
    keys = (
        b"Failed to get the data key required to decrypt the SOPS file.\n\n"
        b"Group 0: FAILED\n  age1abc: FAILED\n    - | no identity\n"
    )
    assert summary(keys) == "no key of the decryption Secret decrypts its data key (recipients: age1abc)"
    other = b"[CMD]\t something odd " + b"c" * 70 + b"\nsecond line\n"
    assert summary(other) == "something odd <hash>"
    assert "hunter2" not in summary(b"weird: Input string hunter2 does not match whatever\n")
    assert summary(b'Error emitting: cannot use "hunter2" or `hunter2` here\n') == (
        "Error emitting: cannot use <redacted> or <redacted> here"
    )


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("a.yaml", "yaml"),
        ("a.YML", "yaml"),
        ("c.json", "json"),
        (".dockerconfigjson", "json"),
        ("app.env", "dotenv"),
        ("x.ini", "ini"),
        ("tls.crt", "binary"),
        ("password", "binary"),
    ],
)
def test_formats_follow_the_file_extension_as_in_flux(path: str, fmt: str) -> None:
    assert format_for_path(path) == fmt


def test_encrypted_files_in_secret_values_are_recognised_by_their_mac_marker() -> None:
    assert _detect(json.dumps({"data": "ENC[x]", "sops": {"mac": "ENC[y]"}}, indent=1).encode()) == "binary"
    assert _detect(json.dumps({"k": "ENC[x]", "sops": {"mac": "ENC[y]"}}, indent=1).encode()) == "json"
    assert _detect(b"k: ENC[x]\nsops:\n    mac: ENC[y]\n") == "yaml"
    assert _detect(b"K=ENC[x]\nsops_mac=ENC[y]\n") == "dotenv"
    assert _detect(b"plain: value\n") is None


def test_the_decrypt_annotation_is_compared_without_case() -> None:
    for value in ("Disabled", "disabled", "DISABLED"):
        assert disabled({"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/decrypt": value}}})
    assert not disabled({"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/decrypt": "enabled"}}})
    assert not disabled({"metadata": {}})


def test_without_spec_decryption_an_encrypted_document_is_refused_unless_disabled() -> None:
    decryptor = Decryptor(None)
    with pytest.raises(DecryptionError) as caught:
        decryptor.documents([Manifest(ENCRYPTED, "apps/db.yaml: document 1 (line 1)")])
    assert caught.value.message == (
        "apps/db.yaml: document 1 (line 1): Secret/apps/db is SOPS-encrypted and spec.decryption is not set"
    )
    kept = {
        **ENCRYPTED,
        "metadata": {"name": "db", "annotations": {"kustomize.toolkit.fluxcd.io/decrypt": "Disabled"}},
    }
    value = base64.b64encode(b"k: ENC[x]\nsops:\n    mac: ENC[y]\n").decode()
    holder = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "f"}, "data": {"f.yaml": value}}
    manifests = [Manifest(kept, "a.yaml"), Manifest(holder, "b.yaml")]
    assert decryptor.documents(manifests) == manifests
    assert decryptor.calls == 0


def test_a_keyring_keeps_keys_in_a_private_directory_and_removes_it(tmp_path: Path) -> None:
    aws = "aws_access_key_id: AKIA1\naws_secret_access_key: s3cr3t\n"
    keyring = Keyring({"a.agekey": "AGE-SECRET-KEY-1X\n", "sops.aws-kms": aws, "other": "ignored"}, "test")
    try:
        assert stat.S_IMODE(keyring.dir.stat().st_mode) == 0o700
        age = Path(keyring.env["SOPS_AGE_KEY_FILE"])
        assert age.parent == keyring.dir and stat.S_IMODE(age.stat().st_mode) == 0o600
        assert age.read_text() == "AGE-SECRET-KEY-1X\n"
        assert keyring.env["HOME"] == str(keyring.dir) and keyring.env["SOPS_DISABLE_VERSION_CHECK"] == "1"
        assert (keyring.env["AWS_ACCESS_KEY_ID"], keyring.env["AWS_SECRET_ACCESS_KEY"]) == ("AKIA1", "s3cr3t")
    finally:
        keyring.close()
    assert not keyring.dir.exists()
    with pytest.raises(DecryptionError) as caught:
        Keyring({"sops.aws-kms": "- not\n- a mapping: s3cr3t\n"}, "spec.decryption.secretRef: Secret a/b")
    assert (
        caught.value.message
        == "spec.decryption.secretRef: Secret a/b: key 'sops.aws-kms' is not a YAML or JSON mapping"
    )


def test_decryption_secret_takes_a_key_file_or_a_directory_of_keys(tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text("# created\nAGE-SECRET-KEY-1X\n")
    assert decryption_keys(tmp_path / "keys.txt") == {"identity.agekey": "# created\nAGE-SECRET-KEY-1X\n"}
    (tmp_path / "private.key").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n")
    assert list(decryption_keys(tmp_path / "private.key")) == ["key.asc"]
    (tmp_path / "sops.vault-token").write_text("hvs.x")
    assert decryption_keys(tmp_path / "sops.vault-token") == {"sops.vault-token": "hvs.x"}
    keys = tmp_path / "secret"
    keys.mkdir()
    (keys / "a.agekey").write_text("AGE-SECRET-KEY-1Y")
    (keys / "..data").write_text("hidden")
    assert decryption_keys(keys) == {"a.agekey": "AGE-SECRET-KEY-1Y"}
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="neither an age identity nor an armored PGP private key"):
        decryption_keys(tmp_path / "notes.txt")


def test_decrypted_values_are_redacted_from_messages_whole_or_quoted_in_part() -> None:
    decryptor = Decryptor(None)
    ciphertext = b"name: db\npassword: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n"
    decryptor._remember(ciphertext, b"name: db\npassword: hunter2-long\n", "yaml")
    decryptor._remember(b"K=ENC[x]\n", b"K=s3cr3t-env\n", "dotenv")
    message = "db: hunter2-long and s3cr3t-env; expression '${nter2-lo' near ${ter2-l} in db"
    assert (
        decryptor.redact(message)
        == "db: <redacted> and <redacted>; expression <redacted> near <redacted> in db"
    )
    assert decryptor.redact("nothing 'quoted' here") == "nothing 'quoted' here"

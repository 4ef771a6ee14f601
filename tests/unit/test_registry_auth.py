"""Where registry credentials come from: secretRef, docker config files, credential helpers."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from gitops_tasks.registry.auth import (
    Credentials,
    DockerConfigCache,
    credentials_from_docker_config,
    credentials_from_dockerconfig,
    resolve_credentials,
    tls_from_secret,
)
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.names import parse_image
from tests.registryfixtures import image_repository, write_dockerconfigjson


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def config(**entries: dict[str, str]) -> str:
    return json.dumps({"auths": entries})


def test_docker_hub_keys_in_every_spelling_match_docker_hub_images() -> None:
    for key in ("https://index.docker.io/v1/", "docker.io", "index.docker.io", "registry-1.docker.io"):
        found = credentials_from_dockerconfig(
            json.dumps({"auths": {key: {"auth": _auth("hub", "pw")}}}), parse_image("nginx"), source="s"
        )
        assert found is not None and (found.username, found.password) == ("hub", "pw"), key
    assert (
        credentials_from_dockerconfig(
            config(**{"ghcr.io": {"auth": _auth("a", "b")}}), parse_image("nginx"), source="s"
        )
        is None
    )


def test_the_most_specific_entry_wins_and_wildcards_match_hosts() -> None:
    data = json.dumps(
        {
            "auths": {
                "ghcr.io": {"username": "host", "password": "1"},
                "ghcr.io/org": {"username": "org", "password": "2"},
                "https://ghcr.io/org/team": {"username": "team", "password": "3"},
                "*.example.com": {"username": "wild", "password": "4"},
            }
        }
    )

    def user(image: str) -> str | None:
        found = credentials_from_dockerconfig(data, parse_image(image), source="s")
        return found.username if found else None

    assert user("ghcr.io/other/app") == "host"
    assert user("ghcr.io/org/app") == "org"
    assert user("ghcr.io/org/team/app") == "team"
    assert user("ghcr.io/organisation/app") == "host"
    assert user("registry.example.com/a/b") == "wild"
    assert user("quay.io/a/b") is None


def test_tokens_and_legacy_flat_configs() -> None:
    image = parse_image("registry.local:5000/a")
    identity = credentials_from_dockerconfig(
        config(**{"registry.local:5000": {"identitytoken": "refresh-me"}}), image, source="s"
    )
    assert identity is not None and identity.identity_token == "refresh-me" and not identity.has_basic
    legacy = credentials_from_dockerconfig(
        json.dumps({"registry.local:5000": {"auth": _auth("old", "cfg")}}), image, source="s"
    )
    assert legacy is not None and legacy.username == "old"


def test_malformed_configs_are_invalid_secrets_and_never_echo_the_data() -> None:
    image = parse_image("ghcr.io/a/b")
    for data in ("{not json", '["a"]', config(**{"ghcr.io": {"auth": "%%%not-base64-supersecret"}})):
        with pytest.raises(RegistryError) as caught:
            credentials_from_dockerconfig(data, image, source="secret default/x")
        assert caught.value.reason == "InvalidSecret" and caught.value.kind == "invalid"
        assert "supersecret" not in caught.value.message


def test_credentials_never_show_their_secrets() -> None:
    creds = Credentials("user", "hunter2-password", identity_token="idtok-123", source="secret default/x")
    assert "hunter2" not in repr(creds) and "idtok" not in repr(creds)
    assert creds.fingerprint != Credentials("user", "other").fingerprint
    assert "hunter2" not in creds.fingerprint


def test_secret_ref_is_read_from_the_mounted_secret_volume(tmp_path: Path) -> None:
    image = parse_image("ghcr.io/org/app")
    obj = image_repository("app", "ghcr.io/org/app", secretRef={"name": "regcred"})
    with pytest.raises(RegistryError, match="secret default/regcred not found") as missing:
        resolve_credentials(obj, image, secrets_dir=tmp_path, docker_config=False)
    assert missing.value.reason == "SecretNotFound"
    (tmp_path / "default" / "regcred").mkdir(parents=True)
    with pytest.raises(RegistryError, match=r"no \.dockerconfigjson or \.dockercfg key") as no_key:
        resolve_credentials(obj, image, secrets_dir=tmp_path, docker_config=False)
    assert no_key.value.reason == "InvalidSecret"
    write_dockerconfigjson(tmp_path, "default", "regcred", "ghcr.io", "bot", "s3cret-pw")
    found = resolve_credentials(obj, image, secrets_dir=tmp_path, docker_config=False)
    assert found is not None and (found.username, found.password) == ("bot", "s3cret-pw")
    assert "secret default/regcred" in found.source


def test_docker_config_file_and_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a docker config with a plain entry and a credential helper for another registry
    helper_dir = tmp_path / "bin"
    helper_dir.mkdir()
    helper = helper_dir / "docker-credential-gttest"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$1" = get ] && [ "$server" = helped.example.com ]; then\n'
        '  echo \'{"ServerURL": "helped.example.com", "Username": "from-helper", "Secret": "helper-pw"}\'\n'
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(0o755)
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(
        json.dumps(
            {
                "auths": {"plain.example.com": {"auth": _auth("from-file", "file-pw")}},
                "credHelpers": {"helped.example.com": "gttest"},
            }
        )
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("PATH", f"{helper_dir}{os.pathsep}{os.environ['PATH']}")

    # Then each registry gets its own credentials; others get none
    plain = credentials_from_docker_config(parse_image("plain.example.com/a"))
    assert plain is not None and (plain.username, plain.password) == ("from-file", "file-pw")
    helped = credentials_from_docker_config(parse_image("helped.example.com/a"))
    assert helped is not None and (helped.username, helped.password) == ("from-helper", "helper-pw")
    assert credentials_from_docker_config(parse_image("other.example.com/a")) is None
    # And a secretRef without an entry for the registry falls back to the docker config
    write_dockerconfigjson(tmp_path / "secrets", "default", "regcred", "ghcr.io", "bot", "pw")
    obj = image_repository("app", "plain.example.com/a", secretRef={"name": "regcred"})
    found = resolve_credentials(obj, parse_image("plain.example.com/a"), secrets_dir=tmp_path / "secrets")
    assert found is not None and found.username == "from-file"


def test_an_edited_docker_config_file_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a docker config file, read once
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "docker").mkdir()
    path = tmp_path / "docker" / "config.json"
    path.write_text(config(**{"edited.example.com": {"auth": _auth("first", "pw-1")}}))
    image = parse_image("edited.example.com/a")
    first = credentials_from_docker_config(image)
    assert first is not None and first.username == "first"
    assert credentials_from_docker_config(image) == first

    # When it is edited (same size; the mtime moves on as any write moves it)
    path.write_text(config(**{"edited.example.com": {"auth": _auth("other", "pw-2")}}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    # Then the next lookup sees the new entry, and once the file is gone, nothing
    second = credentials_from_docker_config(image)
    assert second is not None and (second.username, second.password) == ("other", "pw-2")
    path.unlink()
    assert credentials_from_docker_config(image) is None


def test_credential_helper_answers_are_reused_until_they_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a credential helper that counts its runs, and a cache whose clock the test moves
    helper_dir = tmp_path / "bin"
    helper_dir.mkdir()
    runs = tmp_path / "runs"
    helper = helper_dir / "docker-credential-gtcount"
    helper.write_text(
        f"#!/bin/sh\nread server\necho run >> {runs}\n"
        'echo \'{"ServerURL": "helped.example.com", "Username": "from-helper", "Secret": "helper-pw"}\'\n'
    )
    helper.chmod(0o755)
    (tmp_path / "docker").mkdir()
    path = tmp_path / "docker" / "config.json"
    path.write_text(json.dumps({"credHelpers": {"helped.example.com": "gtcount"}}))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("PATH", f"{helper_dir}{os.pathsep}{os.environ['PATH']}")
    now = [1000.0]
    cache = DockerConfigCache(helper_ttl_s=300, clock=lambda: now[0])
    image = parse_image("helped.example.com/a")

    def helper_runs() -> int:
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    # When the same registry is looked up three times within the TTL
    found = [cache.credentials(image) for _ in range(3)]

    # Then the helper ran once and its answer served every lookup
    assert helper_runs() == 1
    assert all(c is not None and (c.username, c.password) == ("from-helper", "helper-pw") for c in found)
    assert "helper-pw" not in repr(found)
    # And after the TTL it runs again; so it does after an edit of the config file
    now[0] += 301
    cache.credentials(image)
    assert helper_runs() == 2
    path.write_text(json.dumps({"credHelpers": {"helped.example.com": "gtcount"}, "auths": {}}))
    cache.credentials(image)
    assert helper_runs() == 3


def test_cert_secret_ref_files(tmp_path: Path) -> None:
    obj = image_repository("app", "ghcr.io/a/b", certSecretRef={"name": "tls"})
    assert tls_from_secret(image_repository("app", "ghcr.io/a/b"), secrets_dir=tmp_path) is None
    secret = tmp_path / "default" / "tls"
    secret.mkdir(parents=True)
    with pytest.raises(RegistryError, match=r"none of ca\.crt"):
        tls_from_secret(obj, secrets_dir=tmp_path)
    (secret / "ca.crt").write_text("CA")
    (secret / "tls.crt").write_text("CERT")
    with pytest.raises(RegistryError, match=r"both tls\.crt and tls\.key"):
        tls_from_secret(obj, secrets_dir=tmp_path)
    (secret / "tls.key").write_text("KEY")
    files = tls_from_secret(obj, secrets_dir=tmp_path)
    assert files is not None and files.ca_file == secret / "ca.crt" and files.key_file == secret / "tls.key"

"""Image name normalisation (docker's rules) and the installation's include/exclude globs."""

from __future__ import annotations

import pytest

from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.names import excluded_by, matching_glob, parse_image


@pytest.mark.parametrize(
    ("image", "registry", "host", "path", "canonical"),
    [
        ("nginx", "docker.io", "registry-1.docker.io", "library/nginx", "index.docker.io/library/nginx"),
        (
            "library/nginx",
            "docker.io",
            "registry-1.docker.io",
            "library/nginx",
            "index.docker.io/library/nginx",
        ),
        (
            "docker.io/nginx",
            "docker.io",
            "registry-1.docker.io",
            "library/nginx",
            "index.docker.io/library/nginx",
        ),
        ("docker.io/x/y", "docker.io", "registry-1.docker.io", "x/y", "index.docker.io/x/y"),
        ("index.docker.io/x/y", "docker.io", "registry-1.docker.io", "x/y", "index.docker.io/x/y"),
        (
            "registry-1.docker.io/library/redis",
            "docker.io",
            "registry-1.docker.io",
            "library/redis",
            "index.docker.io/library/redis",
        ),
        ("fluxcd/flux", "docker.io", "registry-1.docker.io", "fluxcd/flux", "index.docker.io/fluxcd/flux"),
        ("localhost:5000/x", "localhost:5000", "localhost:5000", "x", "localhost:5000/x"),
        ("localhost/team/app", "localhost", "localhost", "team/app", "localhost/team/app"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000", "127.0.0.1:5000", "a/b", "127.0.0.1:5000/a/b"),
        ("ghcr.io/a/b", "ghcr.io", "ghcr.io", "a/b", "ghcr.io/a/b"),
        (
            "ghcr.io/fluxcd/source-controller",
            "ghcr.io",
            "ghcr.io",
            "fluxcd/source-controller",
            "ghcr.io/fluxcd/source-controller",
        ),
        ("GHCR.io/a/b", "ghcr.io", "ghcr.io", "a/b", "ghcr.io/a/b"),
        (
            "quay.io/org/sub/app_x.y--z",
            "quay.io",
            "quay.io",
            "org/sub/app_x.y--z",
            "quay.io/org/sub/app_x.y--z",
        ),
    ],
)
def test_image_names_normalise_like_docker(
    image: str, registry: str, host: str, path: str, canonical: str
) -> None:
    name = parse_image(image)
    assert (name.registry, name.host, name.path, name.canonical) == (registry, host, path, canonical)
    assert name.name == f"{registry}/{path}"
    assert name.scope == f"repository:{path}:pull"


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("nginx:1.25", "without a tag"),
        ("ghcr.io/a/b:v1", "without a tag"),
        ("localhost:5000/x:latest", "without a tag"),
        ("nginx@sha256:" + "0" * 64, "without a digest"),
        ("https://ghcr.io/a/b", "scheme"),
        ("Nginx", "lower case"),
        ("ghcr.io/Org/app", "lower case"),
        ("ghcr.io", "repository path after the registry host"),
        ("localhost:5000", "repository path after the registry host"),
        ("a//b", "not valid"),
        ("-x/y", "not valid"),
        ("", "expected an image name"),
        ("ghcr.io/" + "a" * 300, "longer than"),
    ],
)
def test_bad_image_names_are_rejected_with_the_field_and_reason(image: str, why: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_image(image)
    assert caught.value.kind == "invalid" and caught.value.reason == "InvalidImage"
    assert caught.value.message.startswith("spec.image ")
    assert why in caught.value.message


def test_globs_match_any_spelling_of_the_image() -> None:
    nginx = parse_image("nginx")
    assert matching_glob(nginx, ["docker.io/*"]) == "docker.io/*"
    assert matching_glob(nginx, ["index.docker.io/library/*"]) == "index.docker.io/library/*"
    assert matching_glob(nginx, ["registry-1.docker.io/library/nginx"]) is not None
    assert matching_glob(nginx, ["*/library/*"]) is not None
    assert matching_glob(nginx, ["ghcr.io/*"]) is None
    # As in Flux v1, "*" crosses "/"
    assert matching_glob(parse_image("ghcr.io/org/team/app"), ["ghcr.io/org/*"]) is not None


def test_include_and_exclude_globs_decide_whether_an_image_is_scanned() -> None:
    app = parse_image("ghcr.io/org/app")
    assert excluded_by(app, include=[], exclude=[]) is None
    assert excluded_by(app, include=["ghcr.io/*"], exclude=[]) is None
    assert "include globs" in (excluded_by(app, include=["docker.io/*"], exclude=[]) or "")
    assert "'ghcr.io/org/*'" in (excluded_by(app, include=["ghcr.io/*"], exclude=["ghcr.io/org/*"]) or "")
    assert excluded_by(app, include=[], exclude=["k8s.gcr.io/*"]) is None

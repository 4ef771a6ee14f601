"""Pytest fixtures for real OCI registries (a plugin: ``pytest_plugins = ["tests.registryfixtures"]``).

``docker_registry`` and ``docker_registry_auth`` (Debian's distribution 2.8, shared by the session;
each test pushes to its own repository name, ``image_path``) skip with the reason when
``docker-registry`` is not installed. ``spec_registry`` is per test, since tests script its
failures and read its request log.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from gitops_tasks.objects.model import Object
from gitops_tasks.ratelimit import HostCircuit, RedisHostCircuit, RedisTokenBucket
from gitops_tasks.registry.client import RegistryClient
from gitops_tasks.registry.tags import RedisTagStore
from gitops_tasks.registry.tokens import RedisTokenCache
from gitops_tasks.registry.transport import Transport
from gitops_tasks.tasks.context import Context
from tests.registryservers import DockerRegistry, SpecRegistry, docker_registry_available

#: Credentials the ``docker_registry_auth`` registry accepts.
REGISTRY_USERNAME = "gt-reader"
REGISTRY_PASSWORD = "pw-7e6d5c4b3a-registry"

_counter = itertools.count()


@pytest.fixture(scope="session")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """``docker-registry`` on plain HTTP without auth."""
    ok, why = docker_registry_available()
    if not ok:
        pytest.skip(why)
    with DockerRegistry(tmp_path_factory.mktemp("docker-registry")) as registry:
        yield registry


@pytest.fixture(scope="session")
def docker_registry_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """``docker-registry`` requiring basic auth (:data:`REGISTRY_USERNAME`/:data:`REGISTRY_PASSWORD`)."""
    ok, why = docker_registry_available()
    if not ok:
        pytest.skip(why)
    directory = tmp_path_factory.mktemp("docker-registry-auth")
    with DockerRegistry(directory, htpasswd=(REGISTRY_USERNAME, REGISTRY_PASSWORD)) as registry:
        yield registry


@pytest.fixture
def spec_registry() -> Iterator[SpecRegistry]:
    """A :class:`SpecRegistry` of this test's own (pages of at most 100 tags, no auth)."""
    with SpecRegistry() as registry:
        yield registry


@pytest.fixture
def image_path(request: pytest.FixtureRequest) -> str:
    """A repository path unique in the session (``test/<test-name>-<n>``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"test/{slug}-{next(_counter)}"


def image_repository(
    name: str, image: str, *, namespace: str = "default", generation: int = 1, **spec: Any
) -> Object:
    """An ImageRepository object as the loader would make it (``interval: 1m`` unless given)."""
    return Object(
        api_version="image.toolkit.fluxcd.io/v1",
        kind="ImageRepository",
        name=name,
        namespace=namespace,
        spec={"image": image, "interval": "1m", **spec},
        metadata={"generation": generation},
    )


def write_dockerconfigjson(
    secrets_dir: Path, namespace: str, name: str, registry: str, username: str, password: str
) -> Path:
    """A ``kubernetes.io/dockerconfigjson`` Secret in the mounted-volume layout; returns its dir."""
    directory = secrets_dir / namespace / name
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {registry: {"username": username, "password": password, "auth": auth}}}
    (directory / ".dockerconfigjson").write_text(json.dumps(config))
    return directory


@dataclass
class RegistryKit:
    """A scan's collaborators on the test's Redis: limiter, shared token cache, tag store, client."""

    limiter: RedisTokenBucket
    tokens: RedisTokenCache
    store: RedisTagStore
    client: RegistryClient
    circuit: HostCircuit


@pytest.fixture
def registry_kit(ctx: Context) -> Iterator[Callable[..., RegistryKit]]:
    """``registry_kit(rps=…, burst=…)``: a fresh client and stores on the test's own Redis database.

    Kits share the limiter's buckets and the hosts' circuits (``circuit``: its options, or a
    circuit of the test's own), as workers do; ``caps`` are the client's
    ``max_pages``/``max_tags``/``max_response_bytes``.

    The limiter plans at exactly ``rps``/``burst`` (no margin) unless ``margin`` is given, so tests
    can assert exact rates."""
    binaries: list[redis.Redis] = []

    def make(
        *,
        rps: float = 1000.0,
        burst: int = 100,
        margin: float = 0.0,
        circuit: dict[str, Any] | HostCircuit | None = None,
        caps: dict[str, int] | None = None,
        **transport: Any,
    ) -> RegistryKit:
        limiter = RedisTokenBucket(ctx.client, ctx.keys, rps=rps, burst=burst, margin=margin)
        host_circuit = (
            circuit
            if isinstance(circuit, HostCircuit)
            else RedisHostCircuit(ctx.client, ctx.keys, **(circuit or {}))
        )
        tokens = RedisTokenCache(ctx.client, ctx.keys)
        binary = redis.Redis.from_url(ctx.settings.effective_redis_url())
        binaries.append(binary)
        client = RegistryClient(
            transport=Transport(limiter, circuit=host_circuit, **transport), tokens=tokens, **(caps or {})
        )
        return RegistryKit(limiter, tokens, RedisTagStore(binary, ctx.keys), client, host_circuit)

    yield make
    for binary in binaries:
        binary.close()

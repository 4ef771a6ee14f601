"""The registry client against a distribution-spec server of our own: pagination, bearer tokens
shared through Redis, 429/Retry-After with the global limiter, 5xx retries, global globs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.registry.client import RegistryClient
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.names import parse_image
from gitops_tasks.registry.reconcile import reconcile
from gitops_tasks.registry.tokens import RedisTokenCache
from gitops_tasks.tasks.context import Context
from tests.procs import REPO_ROOT
from tests.registryfixtures import RegistryKit, image_repository, write_dockerconfigjson
from tests.registryservers import SpecRegistry


def scan(kit: RegistryKit, obj: Object, secrets_dir: Path, **kw: Any) -> Outcome:
    return reconcile(
        obj, {}, client=kit.client, store=kit.store, secrets_dir=secrets_dir, docker_config=False, **kw
    )


@pytest.mark.parametrize("absolute_links", [False, True], ids=["relative-link", "absolute-link"])
def test_pagination_follows_every_link(registry_kit, tmp_path: Path, absolute_links: bool) -> None:
    # Given 2,500 tags served at most 100 per page
    with SpecRegistry(page_max=100, absolute_links=absolute_links) as registry:
        tags = [f"1.{minor}.{patch}" for minor in range(50) for patch in range(50)]
        registry.set_tags("team/big", tags)
        kit = registry_kit()

        # When the repository is scanned
        outcome = scan(kit, image_repository("big", f"{registry.host}/team/big", insecure=True), tmp_path)

        # Then every tag is found, in 25 requests that each carried n and (after the first) last
        assert outcome.result == "success", outcome.message
        assert outcome.facts["lastScanResult"]["tagCount"] == 2_500
        assert sorted(kit.store.get("ImageRepository/default/big") or []) == sorted(tags)
        pages = registry.requests_to("registry")
        assert len(pages) == 25
        assert all("n=" in p.path for p in pages) and all("last=" in p.path for p in pages[1:])


def test_bearer_token_is_fetched_once_and_shared_by_scans_and_processes(
    ctx: Context, registry_kit, tmp_path: Path
) -> None:
    # Given a registry whose token server wants basic credentials, and a secret holding them
    with SpecRegistry(
        token_auth=True, username="bot", password="token-pw-42", token_lifetime_s=120
    ) as registry:
        registry.set_tags("team/app", ["1.0.0", "1.1.0"])
        write_dockerconfigjson(tmp_path, "default", "creds", registry.host, "bot", "token-pw-42")
        obj = image_repository("app", f"{registry.host}/team/app", insecure=True, secretRef={"name": "creds"})

        # When one client scans twice, and a new client (as another worker would) scans again
        assert scan(registry_kit(), obj, tmp_path).result == "success"
        assert scan(registry_kit(), obj, tmp_path).result == "success"
        assert registry.token_requests == 1

        # And a scan runs in another process sharing the Redis
        script = (
            "import sys, redis\n"
            "from gitops_tasks.ratelimit import RedisTokenBucket\n"
            "from gitops_tasks.registry.auth import Credentials\n"
            "from gitops_tasks.registry.client import RegistryClient\n"
            "from gitops_tasks.registry.names import parse_image\n"
            "from gitops_tasks.registry.tokens import RedisTokenCache\n"
            "from gitops_tasks.registry.transport import Transport\n"
            "from gitops_tasks.store.keys import Keys\n"
            "client = redis.Redis.from_url(sys.argv[1]); keys = Keys(sys.argv[2])\n"
            "limiter = RedisTokenBucket(client, keys, rps=100, burst=10)\n"
            "rc = RegistryClient(transport=Transport(limiter), tokens=RedisTokenCache(client, keys))\n"
            "creds = Credentials('bot', 'token-pw-42')\n"
            "image = parse_image(sys.argv[3])\n"
            "listing = rc.list_tags(image, credentials=creds, insecure=True, timeout_s=10)\n"
            "print(len(listing.tags), listing.token_requests)\n"
        )
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                ctx.settings.effective_redis_url(),
                ctx.keys.prefix,
                obj.spec["image"],
            ],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=False,
            timeout=60,
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.split() == ["2", "0"]

        # Then the token endpoint was asked once in all; three scans sent one token each
        assert registry.token_requests == 1
        assert len(registry.requests_to("registry", status=401)) == 1
        assert len(registry.requests_to("registry", status=200)) == 3

        # And other credentials (here: none) never reuse that token: they ask for their own
        with pytest.raises(RegistryError) as caught:
            registry_kit().client.list_tags(parse_image(obj.spec["image"]), insecure=True, timeout_s=10)
        assert caught.value.kind == "auth"
        assert registry.token_requests == 2


def test_refused_token_request_is_authentication_failed(registry_kit, tmp_path: Path) -> None:
    with SpecRegistry(token_auth=True, username="bot", password="right") as registry:
        registry.set_tags("team/app", ["1.0.0"])
        write_dockerconfigjson(tmp_path, "default", "wrong", registry.host, "bot", "wrong-pw-77")
        obj = image_repository("app", f"{registry.host}/team/app", insecure=True, secretRef={"name": "wrong"})
        outcome = scan(registry_kit(), obj, tmp_path)
        assert (outcome.result, outcome.reason) == ("stalled", "AuthenticationFailed")
        assert "wrong-pw" not in outcome.message and "secret default/wrong" in outcome.message


def test_expired_cached_token_is_replaced(registry_kit, tmp_path: Path, ctx: Context) -> None:
    with SpecRegistry(token_auth=True) as registry:
        registry.set_tags("team/app", ["1.0.0"])
        kit = registry_kit()
        image = parse_image(f"{registry.host}/team/app")
        # A token the registry no longer accepts sits in the shared cache
        kit.tokens.put(image.host, image.scope, "anonymous", "revoked-token", ttl_s=60)
        listing = kit.client.list_tags(image, insecure=True, timeout_s=10)
        assert listing.tags == ["1.0.0"] and listing.token_requests == 1
        assert kit.tokens.get(image.host, image.scope, "anonymous") not in (None, "revoked-token")


class CountingTokenCache(RedisTokenCache):
    """The shared token cache, counting lookups (what an open host's scans should not make)."""

    def __init__(self, client: Any, keys: Any) -> None:
        super().__init__(client, keys)
        self.gets = 0

    def get(self, host: str, scope: str, identity: str) -> str | None:
        self.gets += 1
        return super().get(host, scope, identity)


def test_an_open_host_skips_the_token_cache_until_it_answers_401(
    spec_registry: SpecRegistry, registry_kit, ctx: Context
) -> None:
    # Given a registry that answers without any auth, and a client on the shared token cache
    spec_registry.set_tags("team/app", ["1.0.0"])
    tokens = CountingTokenCache(ctx.client, ctx.keys)
    client = RegistryClient(transport=registry_kit().client.transport, tokens=tokens, open_host_ttl_s=60)
    image = parse_image(f"{spec_registry.host}/team/app")

    def listed() -> list[str]:
        return client.list_tags(image, insecure=True, timeout_s=10).tags

    # When it is scanned twice
    assert listed() == ["1.0.0"] and listed() == ["1.0.0"]
    # Then only the first scan, before the host was known to be open, asked the token cache
    assert tokens.gets == 1

    # When the registry starts to require tokens
    spec_registry.token_auth = True
    assert listed() == ["1.0.0"]
    # Then its 401 ends the memory: the token cache is asked (empty), a token fetched and cached
    assert tokens.gets == 2 and spec_registry.token_requests == 1
    # And later scans use the shared cache again: the cached token serves without another 401
    assert listed() == ["1.0.0"]
    assert tokens.gets == 3 and spec_registry.token_requests == 1
    assert len(spec_registry.requests_to("registry", status=401)) == 1

    # And a host that answered 401 is not taken for open again at once (some of its repositories
    # may be open, others not): a scan without a token that succeeds still leaves it using the cache
    spec_registry.token_auth = False
    tokens.forget(image.host, image.scope, "anonymous")
    assert listed() == ["1.0.0"] and listed() == ["1.0.0"]
    assert tokens.gets == 5


def test_429_with_retry_after_throttles_the_host_for_everyone_and_is_retried(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    # Given a registry that answers the first request with 429 and Retry-After: 1
    spec_registry.set_tags("team/app", ["1.0.0"])
    spec_registry.fail(429, retry_after="1")
    kit = registry_kit(rps=40, burst=5)

    # When the repository is scanned
    started = time.monotonic()
    outcome = scan(kit, image_repository("app", f"{spec_registry.host}/team/app", insecure=True), tmp_path)

    # Then the scan waited out the Retry-After and succeeded
    assert outcome.result == "success", outcome.message
    assert time.monotonic() - started >= 0.9
    first, second = spec_registry.requests_to("registry")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95
    # And the host's shared bucket runs at half the configured rate
    state = kit.limiter.state(spec_registry.host)
    assert state["configured_rps"] == 40 and state["rate"] == pytest.approx(20)
    assert state["throttled_at"] is not None


def test_long_retry_after_requeues_instead_of_waiting(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    spec_registry.set_tags("team/app", ["1.0.0"])
    spec_registry.fail(429, retry_after="30")
    kit = registry_kit()
    started = time.monotonic()
    outcome = scan(kit, image_repository("app", f"{spec_registry.host}/team/app", insecure=True), tmp_path)
    assert time.monotonic() - started < 5
    assert (outcome.result, outcome.reason) == ("waiting", "RateLimited")
    assert outcome.retry_after_s is not None and 29 <= outcome.retry_after_s <= 37
    # Other scans of the same host wait too, without sending anything
    with pytest.raises(RegistryError) as caught:
        registry_kit().client.list_tags(
            parse_image(f"{spec_registry.host}/team/app"), insecure=True, timeout_s=5
        )
    assert caught.value.kind == "rate_limited"
    assert len(spec_registry.requests_to("registry")) == 1


def test_toomanyrequests_error_body_counts_as_a_429(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    spec_registry.set_tags("team/app", ["1.0.0"])
    spec_registry.fail(503, code="TOOMANYREQUESTS", retry_after="0")
    kit = registry_kit(rps=10, burst=5)
    outcome = scan(kit, image_repository("app", f"{spec_registry.host}/team/app", insecure=True), tmp_path)
    assert outcome.result == "success"
    assert kit.limiter.state(spec_registry.host)["rate"] == pytest.approx(5)


def test_5xx_is_retried_with_backoff_then_succeeds(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    spec_registry.set_tags("team/app", ["1.0.0", "1.0.1"])
    spec_registry.fail(503, count=2)
    outcome = scan(
        registry_kit(), image_repository("app", f"{spec_registry.host}/team/app", insecure=True), tmp_path
    )
    assert outcome.result == "success", outcome.message
    assert [r.status for r in spec_registry.requests_to("registry")] == [503, 503, 200]
    # Each retry came after the host's block (0.5 s, then doubled to 1 s), which starts when the
    # failed answer arrived: scheduling delays can only lengthen these gaps, never shorten them
    gaps = [b.at - a.at for a, b in zip(spec_registry.log, spec_registry.log[1:], strict=False)]
    assert gaps[0] >= 0.49 and gaps[1] >= 0.98, gaps


def test_persistent_5xx_is_a_transient_scan_failure(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    spec_registry.set_tags("team/app", ["1.0.0"])
    spec_registry.fail(500, count=10)
    outcome = scan(
        registry_kit(), image_repository("app", f"{spec_registry.host}/team/app", insecure=True), tmp_path
    )
    # Then 3 attempts went, after the host's doubling backoff; the third failure opened the host's
    # circuit, which ended the scan, and the status names the registry's own error
    assert (outcome.result, outcome.reason) == ("transient", "CircuitOpen")
    assert f"HTTP 500 from {spec_registry.host} (UNKNOWN: scripted failure)" in outcome.message
    assert "circuit open until" in outcome.message
    assert len(spec_registry.log) == 3


def test_connection_refused_is_a_transient_scan_failure(registry_kit, tmp_path: Path) -> None:
    from tests.procs import free_port

    port = free_port()
    obj = image_repository("app", f"127.0.0.1:{port}/team/app", insecure=True, timeout="3s")
    outcome = scan(registry_kit(), obj, tmp_path)
    # Three refused connections in a row (with the host's backoff between them) open its circuit
    assert (outcome.result, outcome.reason) == ("transient", "CircuitOpen")
    assert f"cannot reach 127.0.0.1:{port}" in outcome.message


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"scanning_disabled": True}, "ScanningDisabled"),
        ({"exclude_images": ["127.0.0.1:*"]}, "ImageExcluded"),
        ({"include_images": ["ghcr.io/*"]}, "ImageExcluded"),
    ],
)
def test_disabled_or_excluded_images_send_no_request(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path, settings: dict[str, Any], reason: str
) -> None:
    spec_registry.set_tags("team/app", ["1.0.0"])
    obj = image_repository("app", f"{spec_registry.host}/team/app", insecure=True)
    outcome = scan(registry_kit(), obj, tmp_path, **settings)
    assert (outcome.result, outcome.reason) == ("waiting", reason)
    assert outcome.retry_after_s == 60.0
    assert outcome.facts == {"canonicalImageName": f"{spec_registry.host}/team/app"}
    assert spec_registry.log == []
    # An include glob that matches lets it through
    allowed = scan(registry_kit(), obj, tmp_path, include_images=["127.0.0.1:*/team/*"])
    assert allowed.result == "success"


def test_scan_results_are_json_serialisable(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    spec_registry.set_tags("team/app", [f"v{i}" for i in range(30)])
    outcome = scan(
        registry_kit(), image_repository("app", f"{spec_registry.host}/team/app", insecure=True), tmp_path
    )
    facts = json.loads(json.dumps(outcome.facts))
    assert facts["lastScanResult"]["latestTags"] == sorted([f"v{i}" for i in range(30)], reverse=True)[:10]
    assert facts["lastScanResult"]["revision"].startswith("sha256:")

"""An OCI distribution client that lists tags (DESIGN §6).

``GET /v2/<name>/tags/list?n=…`` following ``Link: <…>; rel="next"`` (relative or absolute, same
origin only), with anonymous, basic and bearer-token auth: a 401 names the scheme in
``WWW-Authenticate``; a bearer token is fetched from the challenge's realm (with ``service`` and
``scope``, presenting basic credentials or an OAuth2 refresh token when there are some), cached in
the shared :mod:`.tokens` cache until shortly before it expires, and the request retried once.
Requests go through :class:`.transport.Transport` (rate limit, 429s, backoff, sessions).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from gitops_tasks.registry.auth import Credentials, TLSFiles
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.httpparse import (
    Challenge,
    error_codes,
    parse_next_link,
    parse_token_answer,
    parse_www_authenticate,
)
from gitops_tasks.registry.names import ImageName
from gitops_tasks.registry.tokens import DEFAULT_OPEN_HOST_TTL_S, OpenHosts, TokenCache, cache_ttl_s
from gitops_tasks.registry.transport import Call, Transport, ca_bundle, detail

#: Tags asked for per page (``?n=``); a registry may send fewer, with a ``Link`` to the rest.
DEFAULT_PAGE_SIZE = 1000
#: Pages followed per scan at most, so a ``Link`` chain that never ends stops. 50,000 tags (the
#: default tag cap) at 100 per page, the smallest page real registries send, is 500 pages.
DEFAULT_MAX_PAGES = 500
#: Tags per repository at most. The largest public repositories hold about 9,000 (Docker Hub's
#: most tagged official images) to 20,000 (CI images tagged per commit); 50,000 leaves room and
#: bounds a worker's memory (a list of that size is ~4 MB in Python).
DEFAULT_MAX_TAGS = 50_000
#: Bytes of one tag-list answer at most, read in chunks and never held past this. A page of 1,000
#: tags is ~30 KB; registries that send every tag in one answer with per-image details (GCR's
#: ``manifest`` map, ~300 bytes per image) reach ~15 MB at the tag cap.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: OAuth2 client id sent with a refresh-token grant.
OAUTH_CLIENT_ID = "gitops-tasks"


@dataclass(frozen=True)
class TagListing:
    """What one listing found, and what it cost."""

    tags: list[str]
    pages: int
    #: HTTP requests sent (registry and token server, retries included).
    requests: int
    #: Tokens fetched from the token server (0 when a cached or no token served).
    token_requests: int


@dataclass(kw_only=True)
class _Scan(Call):
    """The state of one listing: where, as whom, and the authorization to send."""

    image: ImageName
    credentials: Credentials | None = None
    scheme: str = "https"
    authorization: str | None = None
    cached_token: bool = False
    #: The host was open (:class:`~.tokens.OpenHosts`), so the token cache was not asked.
    skipped_token_cache: bool = False
    token_requests: int = 0

    @property
    def identity(self) -> str:
        return self.credentials.fingerprint if self.credentials else "anonymous"

    @property
    def who(self) -> str:
        if self.credentials is None:
            return "anonymous access"
        return f"the credentials from {self.credentials.source or 'the caller'}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


class RegistryClient:
    """Lists tags of image repositories. Thread-safe; keep one per process.

    ``transport`` meters and retries every request; ``tokens`` shares bearer tokens between workers.
    A host that answered without a challenge needs no token for ``open_host_ttl_s`` (or until it
    answers 401): its scans do not ask ``tokens``.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        tokens: TokenCache,
        page_size: int = DEFAULT_PAGE_SIZE,
        open_host_ttl_s: float = DEFAULT_OPEN_HOST_TTL_S,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_tags: int = DEFAULT_MAX_TAGS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        for name, value in (
            ("max_pages", max_pages),
            ("max_tags", max_tags),
            ("max_response_bytes", max_response_bytes),
        ):
            if value < 1:
                raise ValueError(f"registry {name}={value!r}: expected a whole number >= 1")
        self.transport = transport
        self.tokens = tokens
        self.page_size = page_size
        self.max_pages = max_pages
        self.max_tags = max_tags
        self.max_response_bytes = max_response_bytes
        #: Hosts that answered with a Basic challenge: later scans send credentials at once.
        self._basic_hosts: set[str] = set()
        self.open_hosts = OpenHosts(ttl_s=open_host_ttl_s)

    def list_tags(
        self,
        image: ImageName,
        *,
        credentials: Credentials | None = None,
        tls: TLSFiles | None = None,
        insecure: bool = False,
        timeout_s: float,
    ) -> TagListing:
        """Every tag of ``image``, in the registry's order (duplicates dropped).

        ``insecure`` speaks plain HTTP. Raises :class:`RegistryError`: ``auth`` (401/403),
        ``not_found`` (404), ``rate_limited`` (with ``retry_after_s``), ``transient`` (network,
        5xx, timeout, malformed answers), ``unavailable`` / ``busy`` (see :class:`.Transport`),
        ``limit`` (more than ``max_pages`` pages, ``max_tags`` tags or ``max_response_bytes`` in one
        answer: reasons ``TooManyPages`` and ``TagListTooLarge``).
        """
        scan = _Scan(
            label=image.name,
            timeout_s=timeout_s,
            verify=ca_bundle(tls.ca_file) if tls and tls.ca_file else True,
            cert=(str(tls.cert_file), str(tls.key_file)) if tls and tls.cert_file and tls.key_file else None,
            image=image,
            credentials=credentials,
            scheme="http" if insecure else "https",
        )
        scan.authorization = self._first_authorization(scan)
        url: str | None = f"{scan.scheme}://{image.host}/v2/{image.path}/tags/list?n={self.page_size}"
        seen: set[str] = set()
        tags: dict[str, None] = {}
        pages = 0
        while url is not None:
            if url in seen:
                raise RegistryError("transient", f"{image}: the tag list's Link pagination loops at {url}")
            if pages >= self.max_pages:
                raise RegistryError(
                    "limit",
                    f"{image}: the tag list goes on past {self.max_pages} pages ({len(tags)} tags so far; "
                    "the registry's Link pagination may never end); raise GITOPS_TASKS_REGISTRY_MAX_PAGES "
                    "if the repository really is that large",
                    reason="TooManyPages",
                )
            seen.add(url)
            response = self._get_authorized(scan, url)
            tags.update(dict.fromkeys(self._page_tags(scan, response)))
            pages += 1
            if len(tags) > self.max_tags:
                raise RegistryError(
                    "limit",
                    f"{image}: the repository has more than {self.max_tags} tags (limit "
                    "GITOPS_TASKS_REGISTRY_MAX_TAGS); raise it, or delete old tags in the registry",
                    reason="TagListTooLarge",
                )
            url = parse_next_link(response.headers.get("Link"), url)
            if url is not None and _origin(url) != (scan.scheme, image.host):
                raise RegistryError(
                    "transient", f"{image}: the tag list's next page is on another host ({_origin(url)[1]})"
                )
        return TagListing(list(tags), pages, scan.requests, scan.token_requests)

    # -- auth -------------------------------------------------------------------------------------

    def _first_authorization(self, scan: _Scan) -> str | None:
        creds = scan.credentials
        if creds and creds.registry_token:
            return f"Bearer {creds.registry_token}"
        if self.open_hosts.is_open(scan.image.host):
            scan.skipped_token_cache = True
        else:
            cached = self._cached_token(scan)
            if cached:
                return cached
        if creds and creds.has_basic and scan.image.host in self._basic_hosts:
            return _basic(creds)
        return None

    def _cached_token(self, scan: _Scan) -> str | None:
        cached = self.tokens.get(scan.image.host, scan.image.scope, scan.identity)
        if not cached:
            return None
        scan.cached_token = True
        return f"Bearer {cached}"

    def _get(self, scan: _Scan, url: str) -> requests.Response:
        try:
            return self.transport.request(
                scan, "GET", url, headers=self._auth_headers(scan), max_bytes=self.max_response_bytes
            )
        except RegistryError as exc:
            if exc.kind != "limit":
                raise
            raise RegistryError(
                "limit",
                f"{scan.image}: {scan.image.host} sent a tag list answer larger than "
                f"{self.max_response_bytes} bytes (limit GITOPS_TASKS_REGISTRY_MAX_RESPONSE_BYTES); the "
                "scan stopped reading it",
                reason="TagListTooLarge",
            ) from None

    def _get_authorized(self, scan: _Scan, url: str) -> requests.Response:
        response = self._get(scan, url)
        if response.status_code == 401:
            self.open_hosts.challenged(scan.image.host)
            if scan.skipped_token_cache and scan.authorization is None:
                # No longer open: a token another worker cached may serve, as for any challenging host.
                scan.skipped_token_cache = False
                scan.authorization = self._cached_token(scan)
                if scan.authorization is not None:
                    response = self._get(scan, url)
        elif response.status_code == 200 and scan.authorization is None:
            self.open_hosts.answered(scan.image.host)
        if response.status_code == 401:
            if scan.cached_token:
                self.tokens.forget(scan.image.host, scan.image.scope, scan.identity)
                scan.cached_token = False
            self._authenticate(scan, parse_www_authenticate(response.headers.get("WWW-Authenticate")))
            response = self._get(scan, url)
        if response.status_code in (401, 403):
            raise self._refused(scan, response, scan.image.host)
        if response.status_code == 404:
            codes = error_codes(response.content)
            why = "NAME_UNKNOWN" if "NAME_UNKNOWN" in codes else "404"
            raise RegistryError(
                "not_found",
                f"repository {scan.image.path} not found on {scan.image.host} ({why})",
                status_code=404,
            )
        if response.status_code != 200:
            raise RegistryError(
                "transient",
                f"{scan.image}: {scan.image.host} answered {response.status_code}{detail(response)}",
                status_code=response.status_code,
            )
        return response

    @staticmethod
    def _auth_headers(scan: _Scan) -> dict[str, str]:
        return {"Authorization": scan.authorization} if scan.authorization else {}

    def _authenticate(self, scan: _Scan, challenges: list[Challenge]) -> None:
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)
        if bearer is not None:
            scan.authorization = f"Bearer {self._fetch_token(scan, bearer)}"
            return
        if any(c.scheme == "basic" for c in challenges):
            if not (scan.credentials and scan.credentials.has_basic):
                raise RegistryError(
                    "auth",
                    f"{scan.image.host} requires credentials (basic auth) for {scan.image} and none were "
                    "found (spec.secretRef, docker config)",
                    status_code=401,
                )
            self._basic_hosts.add(scan.image.host)
            scan.authorization = _basic(scan.credentials)
            return
        schemes = ", ".join(c.scheme for c in challenges) or "none"
        raise RegistryError(
            "auth",
            f"{scan.image.host} answered 401 with no usable challenge (schemes: {schemes})",
            status_code=401,
        )

    def _fetch_token(self, scan: _Scan, challenge: Challenge) -> str:
        realm = challenge.params["realm"]
        if urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError("auth", f"{scan.image.host}: token realm {realm!r} is not an http(s) URL")
        if urlsplit(realm).scheme == "http" and scan.scheme == "https" and scan.credentials:
            raise RegistryError(
                "auth", f"{scan.image.host}: refusing to send credentials to a plain-HTTP token realm {realm}"
            )
        scope = challenge.params.get("scope") or scan.image.scope
        params = {
            "scope": scope,
            **({"service": challenge.params["service"]} if "service" in challenge.params else {}),
        }
        creds = scan.credentials
        scan.token_requests += 1
        if creds and creds.identity_token:
            form = {**params, "grant_type": "refresh_token", "refresh_token": creds.identity_token}
            response = self.transport.request(
                scan, "POST", realm, data={**form, "client_id": OAUTH_CLIENT_ID}
            )
        else:
            basic = (creds.username or "", creds.password or "") if creds and creds.has_basic else None
            response = self.transport.request(scan, "GET", realm, params=params, auth=basic)
        realm_host = urlsplit(realm).netloc
        if response.status_code in (401, 403):
            raise self._refused(scan, response, realm_host)
        answer = parse_token_answer(response.content) if response.status_code == 200 else None
        if answer is None:
            raise RegistryError(
                "transient",
                f"{scan.image}: token server {realm_host} answered {response.status_code} without a token"
                f"{detail(response)}",
                status_code=response.status_code,
            )
        ttl_s = cache_ttl_s(answer.lifetime_s)
        self.tokens.put(scan.image.host, scan.image.scope, scan.identity, answer.token, ttl_s=ttl_s)
        return answer.token

    def _refused(self, scan: _Scan, response: requests.Response, host: str) -> RegistryError:
        what = "denied" if response.status_code == 403 else "refused"
        hint = "" if scan.credentials else " (the repository may be private, or may not exist)"
        return RegistryError(
            "auth",
            f"{host} {what} {scan.who} for {scan.image}: {response.status_code}{detail(response)}{hint}",
            status_code=response.status_code,
        )

    def _page_tags(self, scan: _Scan, response: requests.Response) -> list[str]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryError("transient", f"{scan.image}: {scan.image.host} sent a malformed tag list")
        tags = body.get("tags")
        if tags is None:
            return []  # a repository without tags answers "tags": null
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise RegistryError("transient", f"{scan.image}: {scan.image.host} sent a malformed tag list")
        return tags


def _basic(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()

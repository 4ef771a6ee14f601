"""Image names as docker understands them, and the global include/exclude globs (pure).

``nginx`` is ``docker.io/library/nginx``: Docker Hub, whose API host is ``registry-1.docker.io``,
with ``library/`` added to one-component names. A first component is a registry host only when it
holds a ``.`` or a ``:`` or is ``localhost`` (docker's rule, via
:func:`docker.auth.resolve_repository_name`). ``spec.image`` names a repository: a tag or digest is
an error, since the scan lists the tags itself.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from docker import auth as docker_auth
from docker import errors as docker_errors

from gitops_tasks.registry.errors import RegistryError

#: Docker Hub as docker names it (the key credentials are stored under).
DOCKER_HUB = "docker.io"
#: Docker Hub's registry API host.
DOCKER_HUB_API_HOST = "registry-1.docker.io"
#: Docker Hub as go-containerregistry (and so Flux's ``canonicalImageName``) names it.
DOCKER_HUB_CANONICAL = "index.docker.io"
#: Other spellings of Docker Hub that name the same repositories.
DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, DOCKER_HUB_API_HOST, DOCKER_HUB_CANONICAL})
#: Longest repository name docker accepts (host and path).
MAX_NAME_LENGTH = 255

# The distribution reference grammar: lower-case components joined by "/", each made of
# alphanumerics separated by ".", "_", "__" or runs of "-".
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)


@dataclass(frozen=True)
class ImageName:
    """A normalised image repository (no tag, no digest)."""

    #: The registry as docker names it: ``docker.io``, ``ghcr.io``, ``localhost:5000``.
    registry: str
    #: The repository path: ``library/nginx``, ``org/app``.
    path: str

    @property
    def host(self) -> str:
        """The host (and port) the registry API is served on: ``registry-1.docker.io`` for Docker Hub."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/path`` as docker prints it: ``docker.io/library/nginx``."""
        return f"{self.registry}/{self.path}"

    @property
    def canonical(self) -> str:
        """Flux's ``canonicalImageName``: ``index.docker.io/library/nginx`` for Docker Hub."""
        registry = DOCKER_HUB_CANONICAL if self.registry == DOCKER_HUB else self.registry
        return f"{registry}/{self.path}"

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every ``host/path`` spelling of this repository, for glob matching."""
        forms = (self.name, self.canonical, f"{self.host}/{self.path}")
        return tuple(dict.fromkeys(forms))

    @property
    def scope(self) -> str:
        """The token scope a scan needs: ``repository:<path>:pull``."""
        return f"repository:{self.path}:pull"

    def __str__(self) -> str:
        return self.name


def parse_image(image: str, *, field: str = "spec.image") -> ImageName:
    """Normalise ``image`` as docker does. Raises :class:`RegistryError` (``invalid``, reason
    ``InvalidImage``) naming ``field`` when it holds a scheme, a tag, a digest or bad characters."""
    text = image.strip() if isinstance(image, str) else ""
    if not text:
        raise _invalid(field, image, "expected an image name such as ghcr.io/org/app")
    if "@" in text:
        raise _invalid(field, image, "expected a repository without a digest (the scan lists tags itself)")
    if "/" not in text and _looks_like_host(text):
        raise _invalid(field, image, "expected a repository path after the registry host")
    if ":" in text.rsplit("/", 1)[-1]:
        raise _invalid(field, image, "expected a repository without a tag (the scan lists tags itself)")
    try:
        registry, path = docker_auth.resolve_repository_name(text)
    except docker_errors.InvalidRepository as exc:
        raise _invalid(field, image, str(exc).split(" (", 1)[0].lower()) from None
    if not _HOST.fullmatch(registry):
        raise _invalid(field, image, f"registry host {registry!r} is not a valid host[:port]")
    registry = registry.lower()
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            hint = " (repository names are lower case)" if component.lower() != component else ""
            raise _invalid(field, image, f"path component {component!r} is not valid{hint}")
    normalised = ImageName(registry, path)
    if len(normalised.name) > MAX_NAME_LENGTH:
        raise _invalid(field, image, f"the name is longer than {MAX_NAME_LENGTH} characters")
    return normalised


def _looks_like_host(text: str) -> bool:
    """``ghcr.io`` or ``localhost:5000`` alone: a registry host without a repository path (docker
    would read ``ghcr.io`` as Docker Hub's ``library/ghcr.io``, which is never what was meant)."""
    head = text.split(":", 1)[0]
    return "." in head or head == "localhost"


def _invalid(field: str, image: object, why: str) -> RegistryError:
    return RegistryError("invalid", f"{field} {image!r}: {why}", reason="InvalidImage")


def matching_glob(image: ImageName, patterns: Iterable[str]) -> str | None:
    """The first of ``patterns`` (shell globs, ``*`` crossing ``/`` as in Flux v1) matching any
    spelling of ``image`` (``docker.io/library/nginx``, ``index.docker.io/...``,
    ``registry-1.docker.io/...``), or None."""
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(alias, pattern) for alias in image.aliases):
            return pattern
    return None


def excluded_by(image: ImageName, *, include: Iterable[str], exclude: Iterable[str]) -> str | None:
    """Why the installation's globs forbid scanning ``image``, or None when it may be scanned.

    Flux v1's rule: with include globs, an image must match one of them; an image matching an
    exclude glob is never scanned.
    """
    include = tuple(include)
    if include and matching_glob(image, include) is None:
        return f"matches none of the include globs {', '.join(include)}"
    pattern = matching_glob(image, exclude)
    if pattern is not None:
        return f"matches the exclude glob {pattern!r}"
    return None

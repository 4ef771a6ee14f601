"""Reading answers in bounded memory: a registry's body is read in chunks and never past a cap.

A tag list of a hundred megabytes (or one that never ends) must not grow a worker's memory: the
body is streamed, each chunk counted, and the connection dropped once the cap is passed, so at most
``limit`` bytes (plus one chunk) are ever held. A ``Content-Length`` above the cap is refused before
anything is read. The call's deadline is checked between chunks, so a server that drips bytes
slowly cannot hold a worker past ``spec.timeout`` either.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

#: Bytes read from the socket at a time.
CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The body is larger than the cap (``seen`` bytes were read, or announced by Content-Length)."""

    def __init__(self, limit: int, seen: int) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit
        self.seen = seen


class BodyTimedOut(Exception):
    """The call's deadline passed while the body was still arriving."""


def read_body(
    response: requests.Response, *, limit: int, truncate: bool, remaining_s: Callable[[], float]
) -> bytes:
    """Read ``response``'s body (a ``stream=True`` response), at most ``limit`` bytes.

    Over the cap: with ``truncate`` the first ``limit`` bytes are kept (for error bodies, which are
    only quoted), else :class:`BodyTooLarge` is raised. Either way the connection is closed rather
    than returned to the pool half-read. The body is also stored as ``response.content``. Raises
    :class:`BodyTimedOut` when ``remaining_s()`` reaches 0, and ``requests`` errors from the socket.
    """
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > limit and not truncate:
        response.close()
        raise BodyTooLarge(limit, int(announced))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        if size + len(chunk) > limit:
            response.close()
            if not truncate:
                raise BodyTooLarge(limit, size + len(chunk))
            chunks.append(chunk[: limit - size])
            break
        chunks.append(chunk)
        size += len(chunk)
        if remaining_s() <= 0:
            response.close()
            raise BodyTimedOut
    body = b"".join(chunks)
    response._content = body
    response._content_consumed = True
    return body

"""A lean HTTP/1.1 load client: keep-alive connections posting JSON bodies as fast as answered.

httpx spends milliseconds of CPU per request under concurrency, so on a shared two-core machine
it, not the gateway, would set the REST figures; this client costs a few microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlparse


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if not length and any(line.lower().startswith(b"transfer-encoding:") for line in lines):
        raise RuntimeError("chunked responses are not supported by the bench client")
    return status, await reader.readexactly(length)


async def post_all(
    base_url: str,
    path: str,
    headers: dict[str, str],
    bodies: Sequence[bytes],
    connections: int,
) -> None:
    """POST every body (JSON) to path over `connections` keep-alive connections; any answer
    other than 200 raises."""
    url = urlparse(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    prefix = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{extra}"
    ).encode()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                body = queue.get_nowait()
                writer.write(prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                status, answer = await _response(reader)
                if status != 200:
                    raise RuntimeError(f"POST {path} answered {status}: {answer[:300]!r}")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))

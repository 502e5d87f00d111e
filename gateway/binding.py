"""Reading what the contract's binders need from a Starlette request (its size-limited body)."""

from __future__ import annotations

from starlette.requests import Request

from gateway.http_errors import GatewayError


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, "payload_too_large", f"request body exceeds {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past limit bytes (declared or received)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)

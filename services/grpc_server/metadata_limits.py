"""Size limit of request metadata values, shared by the services and the gateway."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from services import errors

# Largest value of one request metadata entry (an API key, session or live token is < 200 bytes).
# The gateway refuses a larger forwarded header with 431; the services with INVALID_ARGUMENT.
MAX_VALUE_BYTES = 4096
# What the gRPC transport of the services accepts in all (soft and hard limit alike): far above
# MAX_VALUE_BYTES, so an oversized value reaches the check below instead of failing in the
# transport with RESOURCE_EXHAUSTED (or, between gRPC's default 8 and 16 KiB, at random).
TRANSPORT_MAX_BYTES = 256 * 1024


def too_large(name: str) -> errors.ApiError:
    """INVALID_ARGUMENT `request_header_too_large` naming the metadata entry."""
    return errors.ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "request_header_too_large",
        f"header '{name}' is larger than {MAX_VALUE_BYTES} bytes",
        name,
    )


def check_sizes(metadata: Iterable[tuple[str, str | bytes]]) -> None:
    """Refuse the first entry of metadata whose value exceeds MAX_VALUE_BYTES."""
    for name, value in metadata:
        size = len(value) if isinstance(value, bytes) else len(value.encode())
        if size > MAX_VALUE_BYTES:
            raise too_large(name)

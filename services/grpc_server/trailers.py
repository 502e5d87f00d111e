"""Names of the trailing metadata the services send and the gateway reads."""

from __future__ import annotations

# The workspace the call was authorized for (set by the auth interceptor on every authorized
# unary call); the gateway's snapshot cache keys on it: it only ever serves a snapshot to a token
# the service has recently authorized for that route, and only the snapshot of this workspace.
WORKSPACE_TRAILER = "x-linkpulse-workspace"

# Present when the answer must not be kept by a cache (it came from a stand-in source).
NO_STORE_TRAILER = "x-linkpulse-no-store"

# The HTTP status of a successful answer other than 200 (e.g. 202 for a queued job).
HTTP_STATUS_TRAILER = "x-http-status"

"""Names of the trailing metadata the services send and the gateway reads."""

from __future__ import annotations

# The workspace the call was authorized for (set by the auth interceptor on success); the
# gateway's snapshot cache keys on it.
WORKSPACE_TRAILER = "x-linkpulse-workspace"

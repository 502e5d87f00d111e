"""HTTP gateway: REST and WebSocket routes derived from the HttpRule annotations of linkpulse.v1."""

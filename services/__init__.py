"""linkpulse gRPC services and what they share."""

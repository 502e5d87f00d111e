"""What every gRPC service process shares: interceptors, start-up and shutdown, metadata names."""

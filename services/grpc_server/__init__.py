"""What every gRPC service process shares: policies, interceptors, start-up and shutdown."""

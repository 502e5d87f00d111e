"""The compiled contract read at the descriptor level: HTTP path templates, field facts, routes."""

"""Query service: analytics routes as presets over one typed event query."""

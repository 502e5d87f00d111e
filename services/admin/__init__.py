"""Administrative operations on tenants, credentials and links (used by the CLI and the demo)."""

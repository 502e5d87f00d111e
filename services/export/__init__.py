"""Export service."""

"""AuditService: reading and verifying the audit log."""

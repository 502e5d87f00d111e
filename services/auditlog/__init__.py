"""The audit log: hash-chained entries appended by every service and the server plumbing."""

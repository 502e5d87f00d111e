"""Local development stack: backends, ClickHouse and the linkpulse processes on loopback."""

"""Fault-injection suite (`make chaos`) against an isolated stack of its own."""

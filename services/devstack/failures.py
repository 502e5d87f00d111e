"""The one error type of the dev stack; its message is meant for the person at the terminal."""

from __future__ import annotations


class DevstackError(RuntimeError):
    """A dev-stack step failed; the message says what to look at."""

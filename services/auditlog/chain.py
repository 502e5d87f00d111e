"""The hash chain of a workspace's audit log: canonical form of an entry, its hash, verification."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

GENESIS = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Entry:
    """One audit entry as stored (hash and prev_hash included)."""

    workspace_id: int
    seq: int
    created_at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    request_id: str
    source_address: str
    prev_hash: bytes = GENESIS
    hash: bytes = b""
    id: int = 0

    @classmethod
    def from_row(cls, row: Any) -> Entry:
        """An Entry from a database row (mapping) of audit_log."""
        return cls(
            workspace_id=row["workspace_id"],
            seq=row["seq"],
            created_at=row["created_at"],
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            outcome=row["outcome"],
            request_id=row["request_id"],
            source_address=row["source_address"],
            prev_hash=bytes(row["prev_hash"]),
            hash=bytes(row["hash"]),
            id=row["id"],
        )


def micros(instant: datetime) -> int:
    """Microseconds since the epoch (exact, no float rounding)."""
    return (instant - _EPOCH) // _MICROSECOND


def canonical(entry: Entry) -> bytes:
    """The bytes an entry's hash covers: every recorded field, as sorted-key JSON."""
    return orjson.dumps(
        {
            "workspace_id": entry.workspace_id,
            "seq": entry.seq,
            "time_us": micros(entry.created_at),
            "actor": entry.actor,
            "action": entry.action,
            "target": entry.target,
            "outcome": entry.outcome,
            "request_id": entry.request_id,
            "source_address": entry.source_address,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def link_hash(prev_hash: bytes, entry: Entry) -> bytes:
    """sha256(prev_hash || canonical(entry))."""
    return hashlib.sha256(prev_hash + canonical(entry)).digest()


@dataclass(frozen=True)
class Problem:
    """The first place a chain stops verifying."""

    kind: str  # "altered" or "removed"
    seq: int
    id: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "seq": self.seq, "id": self.id, "detail": self.detail}


class Walker:
    """Checks a chain entry by entry (in seq order), so a long log need not be held at once."""

    def __init__(self) -> None:
        self.checked = 0
        self._previous: Entry | None = None

    def step(self, entry: Entry) -> Problem | None:
        """Check the next entry; the problem it reveals, if any."""
        self.checked += 1
        previous = self._previous
        expected_seq = previous.seq + 1 if previous is not None else 1
        if entry.seq != expected_seq:
            missing = (
                f"seq {expected_seq}"
                if entry.seq == expected_seq + 1
                else f"seq {expected_seq}..{entry.seq - 1}"
            )
            return Problem("removed", expected_seq, None, f"{missing} missing")
        if previous is not None and entry.prev_hash != previous.hash:
            # The successor recorded another hash for the previous entry: that one was rewritten.
            return Problem(
                "altered",
                previous.seq,
                previous.id,
                f"its hash differs from the one entry {entry.seq} was chained to",
            )
        prev_hash = previous.hash if previous is not None else GENESIS
        if entry.hash != link_hash(prev_hash, entry):
            return Problem("altered", entry.seq, entry.id, "its content does not match its hash")
        self._previous = entry
        return None

    def finish(self, head: tuple[int, bytes] | None) -> Problem | None:
        """Compare the last entry with the chain head (last seq and hash recorded at append
        time; None when the workspace never had an entry)."""
        previous = self._previous
        last_seq = previous.seq if previous is not None else 0
        if head is None:
            return None
        head_seq, head_hash = head
        if head_seq > last_seq:
            missing = f"seq {last_seq + 1}" + (f"..{head_seq}" if head_seq > last_seq + 1 else "")
            return Problem("removed", last_seq + 1, None, f"{missing} missing at the end")
        if previous is not None and head_seq == last_seq and head_hash != previous.hash:
            return Problem(
                "altered", previous.seq, previous.id, "its hash differs from the chain head's"
            )
        return None


def verify(entries: Iterable[Entry], head: tuple[int, bytes] | None) -> tuple[int, Problem | None]:
    """Walk entries in seq order; the number checked and the first altered or removed entry."""
    walker = Walker()
    for entry in entries:
        problem = walker.step(entry)
        if problem is not None:
            return walker.checked, problem
    return walker.checked, walker.finish(head)

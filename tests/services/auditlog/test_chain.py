"""The hash chain: each entry covers its content and predecessor; verify finds the first break."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.auditlog.chain import GENESIS, Entry, canonical, link_hash, verify

T0 = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)


def chain(n: int, workspace_id: int = 7) -> list[Entry]:
    """n entries chained as the recorder chains them."""
    out: list[Entry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        entry = Entry(
            workspace_id=workspace_id,
            seq=seq,
            created_at=T0 + timedelta(seconds=seq),
            actor=f"api_key:{seq}",
            action="apikey.created",
            target=f"api_key:{seq + 100}",
            outcome="success",
            request_id=f"req-{seq}",
            source_address="127.0.0.1",
            prev_hash=prev,
            id=seq * 10,
        )
        entry = replace(entry, hash=link_hash(prev, entry))
        out.append(entry)
        prev = entry.hash
    return out


def head_of(entries: list[Entry]) -> tuple[int, bytes]:
    return entries[-1].seq, entries[-1].hash


def test_an_intact_chain_verifies():
    entries = chain(5)
    assert verify(entries, head_of(entries)) == (5, None)
    assert verify([], None) == (0, None)


def test_canonical_form_is_stable_and_covers_every_field():
    entry = chain(1)[0]
    assert canonical(entry) == canonical(replace(entry, hash=b"x", id=99))
    for change in (
        {"actor": "user:1"},
        {"action": "x"},
        {"target": "y"},
        {"outcome": "denied"},
        {"request_id": "r"},
        {"source_address": "10.0.0.1"},
        {"seq": 2},
        {"workspace_id": 8},
        {"created_at": T0 + timedelta(microseconds=1)},
    ):
        assert canonical(replace(entry, **change)) != canonical(entry), change


def test_an_edited_entry_is_reported():
    entries = chain(5)
    entries[2] = replace(entries[2], actor="user:evil")
    _, problem = verify(entries, head_of(chain(5)))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.id) == ("altered", 3, 30)


def test_an_edit_with_a_recomputed_hash_is_still_reported():
    entries = chain(5)
    forged = replace(entries[2], actor="user:evil")
    entries[2] = replace(forged, hash=link_hash(forged.prev_hash, forged))
    _, problem = verify(entries, head_of(entries))
    assert problem is not None and (problem.kind, problem.seq) == ("altered", 3)


def test_a_removed_entry_is_reported():
    entries = chain(5)
    del entries[1]
    _, problem = verify(entries, head_of(entries))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.id) == ("removed", 2, None)


def test_removed_entries_at_the_end_are_reported_against_the_head():
    entries = chain(5)
    head = head_of(entries)
    _, problem = verify(entries[:3], head)
    assert problem is not None
    assert (problem.kind, problem.seq) == ("removed", 4)
    assert "4..5" in problem.detail


def test_a_rewritten_last_entry_is_reported_against_the_head():
    entries = chain(3)
    head = head_of(entries)
    forged = replace(entries[2], target="nothing")
    entries[2] = replace(forged, hash=link_hash(forged.prev_hash, forged))
    _, problem = verify(entries, head)
    assert problem is not None and (problem.kind, problem.seq) == ("altered", 3)


def test_chains_of_workspaces_are_independent():
    a, b = chain(2, workspace_id=1), chain(2, workspace_id=2)
    assert a[0].hash != b[0].hash
    assert verify([a[0], b[1]], None)[1] is not None

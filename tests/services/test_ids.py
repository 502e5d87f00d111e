"""Event ids: unique, ascending, within 53 bits, whether taken one at a time or in blocks."""

from __future__ import annotations

from services.ids import MAX_ID, SEQUENCE_BITS, EventIds


def test_next_and_take_interleave_ascending_and_unique() -> None:
    ids = EventIds(3)
    seen = [ids.next()]
    for count in (1, 5, 300, 0, 2000):
        block = ids.take(count)
        assert len(block) == count
        seen += block
        seen.append(ids.next())
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert all(0 < i <= MAX_ID for i in seen)


def test_take_carries_the_node_and_borrows_the_next_millisecond_when_full() -> None:
    ids = EventIds(7)
    block = ids.take(3 * (1 << SEQUENCE_BITS) + 10)  # more than one millisecond holds
    assert {(i >> SEQUENCE_BITS) & 0b11111 for i in block} == {7}
    assert len({i >> (SEQUENCE_BITS + 5) for i in block}) >= 4
    assert block == sorted(set(block))

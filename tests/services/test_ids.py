"""Event ids: unique, ascending, within 53 bits, whether taken one at a time or in blocks; above
every id of the former layout; never past a holder's reservation nor before its predecessor's."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.errors import ApiError
from services.ids import (
    LEGACY_LOW_BITS,
    MAX_ID,
    NODE_BITS,
    RESERVED_NODE_IDS,
    SEQUENCE_BITS,
    TIME_BITS,
    EventIds,
    id_ms,
    now_ms,
)


def _node(event_id: int) -> int:
    return (event_id >> SEQUENCE_BITS) & ((1 << NODE_BITS) - 1)


def _legacy_id(ms: int, node: int, sequence: int) -> int:
    """An id as the former layout minted it: 41 bits of ms, 5 of node, 7 of sequence."""
    return (ms << LEGACY_LOW_BITS) | (node << 7) | sequence


def test_layout_fits_53_bits_with_8_bits_of_node() -> None:
    assert TIME_BITS + NODE_BITS + SEQUENCE_BITS == 53
    assert NODE_BITS >= 8
    assert ((1 << TIME_BITS) - 1) << (NODE_BITS + SEQUENCE_BITS) | 0x1FFF == MAX_ID


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
    ids = EventIds(200)
    block = ids.take(3 * (1 << SEQUENCE_BITS) + 10)  # more than one millisecond holds
    assert {_node(i) for i in block} == {200}
    assert len({id_ms(i) for i in block}) >= 4
    assert block == sorted(set(block))


def test_next_borrows_the_next_millisecond_when_full() -> None:
    ids = EventIds(5, after_ms=now_ms() + 60_000)  # far ahead: every id in one millisecond
    singles = [ids.next() for _ in range(3 * (1 << SEQUENCE_BITS))]
    assert singles == sorted(set(singles))
    assert len({id_ms(i) for i in singles}) == 3


@given(
    ms=st.integers(min_value=1, max_value=(1 << TIME_BITS) - 1),
    node=st.integers(min_value=0, max_value=31),
    sequence=st.integers(min_value=0, max_value=127),
)
def test_an_id_minted_now_tops_every_former_id_of_its_time(
    ms: int, node: int, sequence: int
) -> None:
    # The smallest id of millisecond ms against the largest id of the former layout at ms.
    assert ms << (NODE_BITS + SEQUENCE_BITS) > _legacy_id(ms, node, sequence)
    # Former processes that ran ahead of the clock (borrowed milliseconds) are topped as well,
    # up to twice the time since the epoch.
    assert ms << (NODE_BITS + SEQUENCE_BITS) > _legacy_id(2 * ms - 1, 31, 127)


def test_ids_minted_now_top_former_ids_minted_up_to_now() -> None:
    former = _legacy_id(now_ms() + 1000, 30, 127)  # a former process a second ahead
    assert EventIds(0).take(1)[0] > former
    assert EventIds(0).next() > former


def test_ids_follow_the_previous_holder_and_stop_at_the_reservation() -> None:
    ahead = now_ms() + 10_000
    ids = EventIds(9, after_ms=ahead, ceiling_ms=ahead + 2)
    block = ids.take(2 * (1 << SEQUENCE_BITS))
    assert {id_ms(i) for i in block} == {ahead + 1, ahead + 2}
    with pytest.raises(ApiError) as refused:
        ids.take(1)
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ApiError):
        ids.next()
    ids.ceiling_ms = ahead + 3  # reserved further: minting goes on where it stopped
    assert ids.take(1)[0] > block[-1]


def test_node_ids_are_checked() -> None:
    with pytest.raises(ValueError):
        EventIds(1 << NODE_BITS)


def test_the_demo_loaders_node_is_reserved() -> None:
    from services.demo.events import DEMO_NODE_ID

    assert DEMO_NODE_ID in RESERVED_NODE_IDS

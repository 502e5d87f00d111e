"""Every key one ingest call touches is declared and in its workspace partition's slot, and
markers of the unpartitioned keys of earlier versions are still honoured on one Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.crc import key_slot

from services import partitions
from services.config import Settings
from services.live import feed
from services.live.stream import EventStream
from tests.services.live.conftest import PREFIX
from tests.services.live.test_stream import batch, click, ingest_stream, settings


def _declared_keys(command: tuple[object, ...]) -> list[bytes]:
    """The keys an EVALSHA/EVAL command declares."""
    name, _sha, count, *rest = command
    assert str(name).upper() in ("EVALSHA", "EVAL")
    return [str(k).encode() if not isinstance(k, bytes) else k for k in rest[: int(str(count))]]


def _slots(keys: list[bytes]) -> set[int]:
    return {key_slot(k) for k in keys}


def test_a_workspace_partition_tag_is_its_id_modulo_the_partitions() -> None:
    assert partitions.tag(17, 16) == "{p1}" and partitions.tag(16, 16) == "{p0}"
    assert partitions.workspace_stream("lp:ingest", 35, 16) == "lp:ingest:{p3}"
    assert partitions.streams("s", 2) == ["s:{p0}", "s:{p1}"]


async def test_ingest_feed_and_stats_of_a_call_stay_in_one_slot(redis: Redis) -> None:
    s = replace(settings("slots"), ingest_partitions=16)
    stream = EventStream(
        redis,
        s,
        lambda pipe, ws, kind, rows, stats: feed.publish(
            pipe, ws, kind, rows, stats, prefix=s.live_key_prefix, partitions=16
        ),
    )
    workspace = 1234
    events = batch(click(1, True, workspace), click(2, True, workspace), click(3, False, workspace))
    keys, _args = stream._call(workspace, events, b"\n".join(events.rows), datetime.now(UTC))
    # The dedup markers of earlier versions are declared too on one Redis.
    assert stream.legacy_dedup
    tagged = [k for k in keys if "{p" in k]
    assert len(keys) - len(tagged) == 2 and _slots([k.encode() for k in tagged]) == {
        key_slot(b"{p2}")
    }  # 1234 % 16 == 2
    async with redis.pipeline(transaction=True) as pipe:
        stream.publish(pipe, workspace, "click", b"\n".join(events.rows), events.stats)
        declared = [k for args, _ in pipe.command_stack for k in _declared_keys(args)]
    assert declared and _slots(declared) == {key_slot(b"{p2}")}
    assert _slots([ingest_stream(s, workspace).encode()]) == {key_slot(b"{p2}")}


async def test_a_marker_of_the_unpartitioned_keys_still_counts(redis: Redis) -> None:
    s: Settings = settings("legacy")
    stream = EventStream(redis, s, lambda *_: None)
    await redis.set(stream.keys.legacy_dedup(9, 77), "1", ex=60)  # written by the old code
    assert await stream.enqueue(9, batch(click(77, True, 9), click(78, True, 9))) == [False, True]
    # Not even the advisory check passes it, and the script alone refuses it too.
    stream._known_duplicates = _none  # type: ignore[method-assign]
    assert await stream.enqueue(9, click(77, True, 9)) == [False]
    assert await redis.xlen(ingest_stream(s, 9)) == 1
    assert await redis.exists(stream.keys.dedup(9, 78)) == 1
    assert stream.keys.dedup(9, 78).startswith(f"{PREFIX}:legacy:dedup:{{p9}}:")


async def _none(*_: object) -> set[int]:
    return set()

"""The snapshot cache's keys of one request share the slot of the workspace's partition."""

from __future__ import annotations

from redis.crc import key_slot

from gateway.cache import CacheKeys
from services.auth.ratelimit import bucket_key


def test_memo_snapshot_bucket_and_lock_of_a_workspace_share_one_slot() -> None:
    keys = CacheKeys("lp", "c" * 64, "analytics.clicks", "p" * 64, partitions=16)
    names = [keys.memo("42"), keys.snapshot("42"), keys.bucket("42"), keys.lock("42")]
    assert {key_slot(n.encode()) for n in names} == {key_slot(b"{p10}")}  # 42 % 16
    # The services' rate limiter spends from the very bucket the cache reads.
    assert keys.bucket("42") == bucket_key("lp", "c" * 64, 42, 16)
    assert keys.snapshot("42") != keys.snapshot("58")  # same partition, other workspace

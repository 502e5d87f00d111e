"""What ingestion fills in, end to end, on both ingestion paths (REST: Python; gRPC `Ingest`:
the compiled path): country from the address, bots, keyed visitor ids; and that the address
itself is stored nowhere (ClickHouse, Redis, logs)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from services import protos
from services.live.tables import CLICK_COLUMNS
from services.live.visitors import VisitorIds, visitor_key
from tests import ingest_streams

# Addresses no other test sends, so that finding them anywhere is this test's doing.
ADDRESSES = ("8.8.4.4", "2001:4860:4860::8844")
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CURL = "curl/8.4.0"


async def _redis_values(redis: Redis, keys: list[bytes]) -> list[bytes]:
    found: list[bytes] = []
    for key in keys:
        kind = (await redis.type(key)).decode()
        if kind == "string":
            found.append(await redis.get(key) or b"")
        elif kind == "hash":
            found += [k + b"=" + v for k, v in (await redis.hgetall(key)).items()]
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                found += [k + b"=" + v for k, v in fields.items()]
        elif kind == "list":
            found += await redis.lrange(key, 0, -1)
        elif kind == "set":
            found += list(await redis.smembers(key))
        elif kind == "zset":
            found += await redis.zrange(key, 0, -1)
    return found


def _logs(run_dir: Path) -> list[str]:
    return [path.read_text(errors="replace") for path in run_dir.rglob("*.log")]


async def test_clicks_get_country_bot_and_keyed_visitor_but_no_address_is_stored(
    system, http, ch, tenant, settings
):
    t = await tenant()
    v4, v6 = ADDRESSES
    rest = [
        {"ip": v4, "userAgent": CHROME},
        {"ip": v4, "userAgent": CURL, "country": "fr"},  # an explicit country wins
    ]
    for body in rest:
        body = {"linkId": t.link_ids[0], "timestamp": "2026-11-02T08:00:00Z", **body}
        r = await http.post("/api/track/click", json=body, headers=t.headers)
        assert r.status_code == 200, r.text
    wire = [
        protos.live_pb2.ClickEvent(
            link_id=t.link_ids[1], timestamp="2026-11-02T09:00:00Z", ip=ip, user_agent=agent
        )
        for ip, agent in ((v4, CHROME), (v6, CURL))
    ]
    async with system.channel("live") as channel:
        reply = await protos.live_pb2_grpc.LiveServiceStub(channel).Ingest(
            protos.live_pb2.IngestRequest(events=wire), metadata=t.metadata
        )
    assert reply.accepted == 2
    await system.drained()

    got = await ch.fetch(
        f"SELECT {', '.join(CLICK_COLUMNS)} FROM clicks WHERE workspace_id = %(w)s"
        " ORDER BY link_id, timestamp, is_bot",
        {"w": t.workspace_id},
    )
    clicks = [dict(zip(CLICK_COLUMNS, row, strict=True)) for row in got]
    summary = [(c["country"], c["continent"], c["device"], c["is_bot"]) for c in clicks]
    assert summary == [
        ("US", "NA", "desktop", 0),
        ("FR", "EU", "bot", 1),
        ("US", "NA", "desktop", 0),
        ("US", "NA", "bot", 1),
    ]
    visitors = VisitorIds(visitor_key(settings))
    # The same address and agent are one visitor on either path, under the deployment's key.
    assert clicks[0]["visitor_id"] == clicks[2]["visitor_id"] == visitors.of(v4, CHROME, 0)
    assert clicks[3]["visitor_id"] == visitors.of(v6, CURL, 0)

    stored = [str(value) for c in clicks for value in c.values()]
    redis = Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{settings.ingest_key_prefix}:*")]
        stored += [v.decode(errors="replace") for v in await _redis_values(redis, keys)]
        stored += [
            v.decode(errors="replace")
            for v in await _redis_values(
                redis, [s.encode() for s in ingest_streams.stream_names(settings)]
            )
        ]
    finally:
        await redis.aclose()
    stored += await asyncio.to_thread(_logs, Path(settings.run_dir))
    for address in ADDRESSES:
        assert not [text for text in stored if address in text], f"{address} was stored"

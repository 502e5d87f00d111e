"""The compiled click path (`_clickwire.c`) against accept_clicks, event by event: whatever it
accepts it must turn into exactly accept_clicks' rows, ids and stats; whatever accept_clicks
refuses it must leave to accept_clicks (None)."""

from __future__ import annotations

import hmac
import itertools
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import protos
from services.errors import ApiError
from services.live import compiled_clicks, rows
from services.live.accepted import Accepted
from services.live.compiled_clicks import accept_click_wire, scan_wire
from services.live.enrich import accept_clicks
from services.live.tables import CLICK_COLUMNS
from services.live.visitors import VisitorIds

pytestmark = pytest.mark.skipif(
    not compiled_clicks.enabled, reason="the compiled click path is not built"
)
NOW = datetime(2026, 11, 23, 12, 0, 0, 250_000, tzinfo=UTC)
Click = protos.live_pb2.ClickEvent
LINKS = {7: "https://example.com/7", 8: "https://example.com/ü?a=1", 9: 'https://x.test/"q"'}
AGENTS = (
    "",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "curl/8.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0.0.0 Safari/537.36",
)
VISITORS = VisitorIds(b"a deployment's visitor key")


def wire(data: bytes, new_ids: list[int], visitors: VisitorIds = VISITORS) -> Accepted | None:
    """The compiled path's outcome of IngestRequest bytes."""
    return accept_click_wire(
        data, workspace_id=4, destinations=LINKS, new_ids=new_ids, now=NOW, visitors=visitors
    )


def both(events: list[Click]) -> tuple[object, object]:
    """(accept_clicks' outcome or its ApiError, the compiled path's outcome) of one request."""
    data = protos.live_pb2.IngestRequest(events=events).SerializeToString()
    scanned = scan_wire(data)
    assert scanned is not None
    links, count, fresh = scanned
    assert (links, count) == ({e.link_id for e in events}, len(events))
    assert fresh == sum(1 for e in events if not e.event_id)
    new_ids = list(range(10_000, 10_000 + fresh))
    try:
        python: object = accept_clicks(
            events,
            workspace_id=4,
            destinations=LINKS,
            new_ids=iter(new_ids),
            now=NOW,
            visitors=VISITORS,
        )
    except ApiError as exc:
        python = exc
    return python, wire(data, new_ids)


def assert_agree(events: list[Click]) -> bool:
    """True when the compiled path took the request (and agreed), False when it left it."""
    python, compiled = both(events)
    if compiled is None:
        return False
    assert not isinstance(python, ApiError), f"compiled path accepted what fails: {python}"
    assert compiled.rows == python.rows  # type: ignore[attr-defined]
    assert compiled.event_ids == python.event_ids  # type: ignore[attr-defined]
    assert compiled.claimed == python.claimed  # type: ignore[attr-defined]
    assert compiled.stats == python.stats  # type: ignore[attr-defined]
    assert compiled.cache_fields == python.cache_fields  # type: ignore[attr-defined]
    return True


def stamp(delta: timedelta, form: str) -> str:
    at = NOW + delta
    if form == "naive":
        return at.replace(tzinfo=None).isoformat()
    if form == "z":
        return at.isoformat(timespec="seconds").replace("+00:00", "Z")
    if form == "offset":
        return at.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat()
    return at.isoformat()


times = st.one_of(
    st.just(""),
    st.builds(
        stamp,
        st.timedeltas(min_value=timedelta(days=-9000), max_value=timedelta(minutes=10)),
        st.sampled_from(["naive", "z", "offset", "iso"]),
    ),
    st.sampled_from(
        ["2026-11-23 11:00:00", "2026-11-23T11:00", "2026-02-30T00:00:00", "1999-12-31T23:59:59Z",
         "2026-11-23T11:00:00.", "2026-11-23T11:00:00,5", "2026-11-23T11:00:00+0100",
         "garbage", "2024-02-29T12:00:00.1234567+01:00", "2026-11-23T12:04:59.999999Z"]
    ),
)  # fmt: skip
words = st.one_of(
    st.sampled_from(["", "Berlin", "São Paulo", "qr", "eu", 'say "hi"', "a\\b", "tab\there"]),
    st.text(max_size=12),
)
clicks = st.builds(
    Click,
    link_id=st.sampled_from([7, 8, 9, 0, 12345]),
    timestamp=times,
    country=st.sampled_from(["", "de", "US", " fr ", "X1", "GBR", "ÄÖ"]),
    region=words,
    city=words,
    continent=st.sampled_from(["", "eu", "Na", "ü"]),
    device=st.sampled_from(["", "bot", "desktop"]),
    browser=st.sampled_from(["", "Firefox"]),
    os=words,
    referrer=st.sampled_from(["", "ref.example"]),
    referrer_url=st.sampled_from(["", "https://news.example.com/a?x=1", "not a url", "http://[::1]/"]),
    trigger=st.sampled_from(["", "qr", "api"]),
    visitor_id=st.sampled_from(["", "v-1", "visitor ü"]),
    rule_id=st.sampled_from([0, 3, -2]),
    condition_id=st.sampled_from([0, 9, 2**40]),
    user_agent=st.sampled_from(AGENTS),
    ip=st.sampled_from(
        ["", "10.0.0.1", "2001:db8::1", "8.8.8.8", "81.2.69.160", "2a00:1450:4001::1", "x.y"]
    ),
    event_id=st.sampled_from([0, 0, 55, 2**53 - 1, 2**53, -1]),
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(clicks, min_size=1, max_size=4))
def test_the_compiled_path_agrees_with_accept_clicks(events: list[Click]) -> None:
    assert_agree(events)


def test_ordinary_clicks_take_the_compiled_path() -> None:
    ordinary = [
        Click(
            link_id=7,
            timestamp=(NOW - timedelta(minutes=n)).isoformat(),
            country="de",
            city="München",
            user_agent=AGENTS[1 + n % 4],
            referrer_url="https://news.example.com/a",
            ip=f"10.0.0.{n}",
        )
        for n in range(50)
    ]
    ordinary += [Click(link_id=8), Click(link_id=7, event_id=99, visitor_id="v", device="bot")]
    assert assert_agree(ordinary)


def test_what_needs_escaping_or_naming_is_left_to_accept_clicks() -> None:
    assert not assert_agree([Click(link_id=7, city='say "hi"')])
    assert not assert_agree([Click(link_id=9)])  # the destination itself holds a quote
    assert not assert_agree([Click(link_id=12345)])  # unknown link: accept_clicks names it
    assert not assert_agree([Click(link_id=7, timestamp="2026-11-23T11:00:00+0100")])
    assert not assert_agree([Click(link_id=7, user_agent="x" * 3000)])


def test_long_text_in_the_row_is_left_to_accept_clicks() -> None:
    assert not assert_agree([Click(link_id=7, city="c" * 1500, region="r" * 1000)])


def test_unknown_fields_are_skipped_like_protobuf_does() -> None:
    event = Click(link_id=7, city="Oslo").SerializeToString()
    unknown = bytes([0xC8, 0x3E, 0x05]) + bytes([0xD2, 0x3E, 0x02]) + b"hi"  # fields 1001, 1002
    request = b"\x0a" + bytes([len(event) + len(unknown)]) + event + unknown
    request += bytes([0x10, 0x01])  # an unknown field of the request itself
    scanned = scan_wire(request)
    assert scanned == ({7}, 1, 1)
    compiled = wire(request, new_ids=[5])
    python = accept_clicks(
        list(protos.live_pb2.IngestRequest.FromString(request).events),
        workspace_id=4,
        destinations=LINKS,
        new_ids=itertools.count(5),
        now=NOW,
        visitors=VISITORS,
    )
    assert compiled is not None and compiled.rows == python.rows


def test_unreadable_bytes_are_left_to_protobuf() -> None:
    event = Click(link_id=7).SerializeToString()
    for data in (
        b"\x0a\x10" + event,  # length past the end
        b"\x0a" + bytes([len(event) + 2]) + event + b"\x9a\x01",  # field 19, truncated length
        b"\x0a\x03\x08\xff",  # truncated varint
        b"\x0a\x03\x1a\x01\xff",  # country not UTF-8
        b"\x0a\x02\x0a\x00" + b"\x0b",  # a group (wire type 3)
    ):
        assert scan_wire(data) is None or wire(data, new_ids=[1, 2]) is None, data


def _c_source() -> str:
    return (Path(compiled_clicks.__file__).parent / "_clickwire.c").read_text()


def test_the_field_numbers_of_the_c_reader_are_the_protos() -> None:
    source = _c_source()
    body = re.search(r"enum \{\s*(F_LINK_ID = 1,[^}]*)\}", source)
    assert body is not None, "the F_* enum of _clickwire.c"
    names = [n.strip() for n in body.group(1).replace("= 1", "").split(",") if n.strip()]
    assert names[-1] == "F_COUNT"
    numbers = {name[2:].lower(): at for at, name in enumerate(names[:-1], start=1)}
    fields = {f.name: f for f in Click.DESCRIPTOR.fields}
    # Every field of ClickEvent, by its number: a field the C reader does not know it would skip.
    assert numbers == {name: f.number for name, f in fields.items()}
    ints = set(re.findall(r"field == F_(\w+)", source))
    assert {n.lower() for n in ints} == {
        name for name, f in fields.items() if f.type != FieldDescriptor.TYPE_STRING
    }
    events = protos.live_pb2.IngestRequest.DESCRIPTOR.fields_by_name["events"]
    tags = re.findall(r"tag == \(\((\d+) << 3\) \| 2\)", source)
    assert tags == [str(events.number)]
    assert events.message_type is Click.DESCRIPTOR


# Message lengths around SHA-256's padding and block boundaries (55/56, 64, 119/120, 128 bytes).
@pytest.mark.parametrize(
    "length", [1, 53, 54, 55, 56, 62, 63, 64, 65, 118, 119, 120, 127, 128, 500]
)
def test_the_visitor_hash_is_hmac_sha256(length: int) -> None:
    for ip, agent in (("", "a" * length), ("10.0.0." + "1" * (length % 7), "ü" * (length // 2))):
        event = Click(link_id=7, ip=ip, user_agent=agent, timestamp=NOW.isoformat())
        data = protos.live_pb2.IngestRequest(events=[event]).SerializeToString()
        compiled = wire(data, new_ids=[1])
        assert compiled is not None, (ip, agent)
        visitor = rows.decode("click", compiled.rows[0])[CLICK_COLUMNS.index("visitor_id")]
        message = f"{ip}|{agent}".encode()
        assert visitor == hmac.new(VISITORS.key, message, "sha256").hexdigest()[:32]


@pytest.mark.parametrize("key", [b"k" * 16, b"k" * 64, b"a key longer than a block " * 4])
def test_the_visitor_hash_follows_its_key(key: bytes) -> None:
    event = Click(link_id=7, ip="203.0.113.9", user_agent=AGENTS[1], timestamp=NOW.isoformat())
    data = protos.live_pb2.IngestRequest(events=[event]).SerializeToString()
    for visitors in (VisitorIds(key), VISITORS, VisitorIds(key)):  # the key changes each call
        compiled = wire(data, new_ids=[1], visitors=visitors)
        assert compiled is not None
        visitor = rows.decode("click", compiled.rows[0])[CLICK_COLUMNS.index("visitor_id")]
        assert visitor == visitors.of(event.ip, event.user_agent, 1)


def test_a_click_without_a_country_gets_the_country_of_its_address() -> None:
    events = [
        Click(link_id=7, ip="8.8.8.8"),
        Click(link_id=7, ip="81.2.69.160", continent="xx"),
        Click(link_id=7, ip="8.8.8.8", country="fr"),
        Click(link_id=7, ip="10.0.0.1"),
    ]
    assert assert_agree(events)
    compiled = wire(protos.live_pb2.IngestRequest(events=events).SerializeToString(), [1, 2, 3, 4])
    assert compiled is not None
    found = [rows.decode("click", line)[4:8:3] for line in compiled.rows]
    assert found == [("US", "NA"), ("GB", "XX"), ("FR", "EU"), ("", "")]

"""Validating incoming clicks and filling what they leave out (device, country, visitor…)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlparse

from services import errors, protos
from services.geo import CONTINENT_OF
from services.ids import MAX_ID
from services.live import rows
from services.live.accepted import Accepted
from services.live.clients import client_info
from services.live.geoip import country_of_ip
from services.live.visitors import VisitorIds

MAX_FUTURE = timedelta(minutes=5)
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)
_OLDEST_SECONDS = OLDEST.timestamp()
MAX_FIELD = 2048


def event_time(field: str, value: str, now: datetime) -> datetime:
    """An ISO-8601 event time (UTC when no offset), not in the future and not before 2000."""
    if not value:
        return now
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise errors.invalid_argument(field, f"{field} must be an ISO-8601 date-time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if parsed > now + MAX_FUTURE:
        raise errors.invalid_argument(field, f"{field} is in the future")
    if parsed < OLDEST:
        raise errors.invalid_argument(field, f"{field} is before 2000-01-01")
    return parsed


def _epoch(value: str, latest: float) -> int:
    """Epoch seconds of a strict ISO-8601 time in [2000, latest]; ValueError otherwise."""
    parsed = datetime.fromisoformat(value)
    seconds = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if not _OLDEST_SECONDS <= seconds <= latest:
        raise ValueError(value)
    return int(seconds)


@lru_cache(maxsize=8192)
def referrer_host(url: str) -> str:
    """The host of a referring URL ('' when it has none)."""
    return urlparse(url).hostname or ""


def _check_lengths(prefix: str, event: protos.live_pb2.ClickEvent) -> None:
    if event.ByteSize() <= MAX_FIELD:
        return  # no field can be longer than the whole message
    for descriptor, value in event.ListFields():
        if isinstance(value, str) and len(value) > MAX_FIELD:
            raise errors.invalid_argument(
                f"{prefix}{descriptor.name}",
                f"{prefix}{descriptor.name} is longer than {MAX_FIELD}",
            )


def _where(offset: int | None, at: int, field: str) -> str:
    """The name of field of the event at position at: `events[i].field` in a batch."""
    return field if offset is None else f"events[{offset + at}].{field}"


def _unknown_link(where: str, link_id: int) -> errors.ApiError:
    if link_id <= 0:
        return errors.invalid_argument(where, f"{where} is required")
    return errors.not_found(f"link {link_id}", where, in_workspace=True)


def accept_clicks(
    events: Sequence[protos.live_pb2.ClickEvent],
    *,
    workspace_id: int,
    destinations: Mapping[int, str],
    new_ids: Iterator[int],
    now: datetime,
    visitors: VisitorIds,
    offset: int | None = 0,
) -> Accepted:
    """Validate every click (all or nothing) and build its clicks-table row; events without
    an id take the next of new_ids, events without a visitor id get visitors' hash and events
    without a country the country of their address. offset: the first event's position in its
    request (errors name `events[i].field`), None for a single click (errors name the bare
    field)."""
    accepted = Accepted("click")
    received, latest = int(now.timestamp()), (now + MAX_FUTURE).timestamp()
    add_row, add_id = accepted.rows.append, accepted.event_ids.append
    add_claimed, add_stat = accepted.claimed.append, accepted.stats.append
    add_field = accepted.cache_fields.append
    for at, event in enumerate(events):
        link_id = event.link_id
        destination = destinations.get(link_id)
        if destination is None:
            raise _unknown_link(_where(offset, at, "link_id"), link_id)
        event_id = event.event_id
        if event_id and not 0 < event_id <= MAX_ID:
            where = _where(offset, at, "event_id")
            raise errors.invalid_argument(where, f"{where} must be in [1, 2^53)")
        add_claimed(bool(event_id))
        event_id = event_id or next(new_ids)
        country, user_agent, ip = event.country, event.user_agent, event.ip
        if country:
            country = country.strip().upper()
            if country and (len(country) != 2 or not country.isalpha()):
                where = _where(offset, at, "country")
                raise errors.invalid_argument(where, f"{where} must be ISO-3166 alpha-2")
        if not country and ip:
            country = country_of_ip(ip)
        stamp = event.timestamp
        try:
            seconds = _epoch(stamp, latest) if stamp else received
        except ValueError:  # event_time says what is wrong, or takes the looser forms
            seconds = int(event_time(_where(offset, at, "timestamp"), stamp, now).timestamp())
        if len(user_agent) > MAX_FIELD or len(ip) > MAX_FIELD:
            _check_lengths(_where(offset, at, ""), event)
        device, browser, os = event.device, event.browser, event.os
        is_bot = device == "bot"
        if user_agent:
            info = client_info(user_agent)
            is_bot = is_bot or info.is_bot
            device, browser, os = device or info.device, browser or info.browser, os or info.os
        referrer_url = event.referrer_url
        referrer = event.referrer or (referrer_host(referrer_url) if referrer_url else "")
        visitor = event.visitor_id or visitors.of(ip, user_agent, event_id)
        row = rows.encode(
            (
                event_id, workspace_id, link_id, seconds, country, event.region, event.city,
                event.continent.upper() or CONTINENT_OF.get(country, ""), device, browser, os,
                referrer or "(direct)", referrer_url, event.trigger or "link", visitor,
                event.rule_id, event.condition_id, destination, 1 if is_bot else 0,
            )
        )  # fmt: skip
        if len(row) > MAX_FIELD:  # every other text field is in the row: none can be longer
            _check_lengths(_where(offset, at, ""), event)
        add_row(row)
        add_id(event_id)
        add_stat(("click", seconds, link_id, visitor))
        add_field(str(event_id))
    return accepted

"""Validating one incoming click and filling what it leaves out (device, continent, visitor…)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from user_agents import parse as parse_ua

from services import errors, pb
from services.geo import continent_of
from services.ids import MAX_ID

MAX_FUTURE = timedelta(minutes=5)
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FIELD = 2048

CLICK_COLUMNS = (
    "event_id", "workspace_id", "link_id", "timestamp", "country", "region", "city", "continent",
    "device", "browser", "os", "referrer", "referrer_url", "trigger", "visitor_id", "rule_id",
    "condition_id", "destination_url", "is_bot",
)  # fmt: skip


@dataclass(frozen=True)
class ClientInfo:
    """What a user agent says about the client."""

    device: str
    browser: str
    os: str
    is_bot: bool


@lru_cache(maxsize=4096)
def client_info(user_agent: str) -> ClientInfo:
    """Device type (desktop, mobile, tablet, bot, other), browser and OS families of a UA string."""
    ua = parse_ua(user_agent)
    if ua.is_bot:
        device = "bot"
    elif ua.is_tablet:
        device = "tablet"
    elif ua.is_mobile:
        device = "mobile"
    elif ua.is_pc:
        device = "desktop"
    else:
        device = "other"
    return ClientInfo(device, ua.browser.family, ua.os.family, bool(ua.is_bot))


def event_time(field: str, value: str, now: datetime) -> datetime:
    """An ISO-8601 event time (UTC when no offset), not in the future and not before 2000."""
    if not value:
        return now
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


def _visitor(event: pb.live_pb2.ClickEvent, event_id: int) -> str:
    if event.visitor_id:
        return event.visitor_id
    if event.ip or event.user_agent:
        return hashlib.sha256(f"{event.ip}|{event.user_agent}".encode()).hexdigest()[:32]
    return f"anon:{event_id}"


@lru_cache(maxsize=8192)
def referrer_host(url: str) -> str:
    """The host of a referring URL ('' when it has none)."""
    return urlparse(url).hostname or ""


def _check_lengths(prefix: str, event: pb.live_pb2.ClickEvent) -> None:
    if event.ByteSize() <= MAX_FIELD:
        return  # no field can be longer than the whole message
    for descriptor, value in event.ListFields():
        if isinstance(value, str) and len(value) > MAX_FIELD:
            raise errors.invalid_argument(
                f"{prefix}{descriptor.name}",
                f"{prefix}{descriptor.name} is longer than {MAX_FIELD}",
            )


def click_row(
    prefix: str,
    event: pb.live_pb2.ClickEvent,
    *,
    workspace_id: int,
    destination_url: str,
    event_id: int,
    now: datetime,
) -> dict[str, Any]:
    """The clicks-table row (column -> value, CLICK_COLUMNS order) of a validated event."""
    _check_lengths(prefix, event)
    if event.event_id and not 0 < event.event_id <= MAX_ID:
        raise errors.invalid_argument(f"{prefix}event_id", f"{prefix}event_id must be in [1, 2^53)")
    info = client_info(event.user_agent) if event.user_agent else None
    country = event.country.strip().upper()
    if country and (len(country) != 2 or not country.isalpha()):
        raise errors.invalid_argument(
            f"{prefix}country", f"{prefix}country must be ISO-3166 alpha-2"
        )
    referrer = event.referrer or (referrer_host(event.referrer_url) if event.referrer_url else "")
    is_bot = bool(info and info.is_bot) or event.device == "bot"
    return {
        "event_id": event_id,
        "workspace_id": workspace_id,
        "link_id": event.link_id,
        "timestamp": event_time(f"{prefix}timestamp", event.timestamp, now),
        "country": country,
        "region": event.region,
        "city": event.city,
        "continent": event.continent.upper() or continent_of(country),
        "device": event.device or (info.device if info else ""),
        "browser": event.browser or (info.browser if info else ""),
        "os": event.os or (info.os if info else ""),
        "referrer": referrer or "(direct)",
        "referrer_url": event.referrer_url,
        "trigger": event.trigger or "link",
        "visitor_id": _visitor(event, event_id),
        "rule_id": event.rule_id,
        "condition_id": event.condition_id,
        "destination_url": destination_url,
        "is_bot": int(is_bot),
    }

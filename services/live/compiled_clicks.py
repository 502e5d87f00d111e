"""The compiled click path over IngestRequest bytes (`_clickwire.c`), when it was built.

Without it (no gcc where the package was installed) every request takes the Python path,
enrich.accept_clicks, which also takes everything the compiled path leaves to it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from types import ModuleType

from services.geo import CONTINENT_OF
from services.live.accepted import Accepted
from services.live.clients import client_info
from services.live.enrich import MAX_FUTURE, referrer_host
from services.live.geoip import country_of_ip
from services.live.visitors import VisitorIds

log = logging.getLogger("linkpulse.live")


def _load() -> ModuleType | None:
    try:
        from services.live import _clickwire
    except ImportError:
        log.warning("compiled click path unavailable, using Python")
        return None
    return _clickwire


_extension = _load()
# Whether requests take the compiled path: never without the extension; tests turn it off.
enabled = _extension is not None


def scan_wire(data: bytes) -> tuple[set[int], int, int] | None:
    """(link ids, events, events without an id) of IngestRequest bytes; None when the compiled
    path is off or leaves them to protobuf."""
    if not enabled or _extension is None:
        return None
    found: tuple[set[int], int, int] | None = _extension.scan(data)
    return found


def accept_click_wire(
    data: bytes,
    *,
    workspace_id: int,
    destinations: dict[int, str],
    new_ids: list[int],
    now: datetime,
    visitors: VisitorIds,
) -> Accepted | None:
    """accept_clicks over IngestRequest bytes, done by the compiled path: the same rows, ids and
    stats, events without an id taking new_ids in order. None when the path is off or the
    request holds anything it leaves to accept_clicks: an error to name, a looser time form,
    text JSON must escape, a wire form it does not read."""
    if not enabled or _extension is None:
        return None
    found = _extension.accept(
        data, workspace_id, destinations, new_ids, int(now.timestamp()),
        (now + MAX_FUTURE).timestamp(), CONTINENT_OF, client_info, referrer_host, visitors.key,
        country_of_ip,
    )  # fmt: skip
    if found is None:
        return None
    accepted = Accepted("click")
    accepted.rows, accepted.event_ids, accepted.claimed, accepted.stats = found[:4]
    accepted.cache_fields = found[4]
    return accepted

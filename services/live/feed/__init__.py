"""The live event feed: a capped Redis Stream per workspace, listed backwards and followed.

Keys (all under the workspace's hash tag, so one workspace's keys share a cluster slot):

- ``lp:live:{<workspace>}`` — Stream, one entry per accepted batch of one kind, fields ``k``
  (the kind), ``n`` (its number of events) and ``r`` (their table rows as the ingestion stream
  encodes them, one a line, so accepting an event encodes it once). Readers turn rows into the
  feed's fields; only the LiveEvent fields ever leave the service.
- the stats keys of ``services.live.stats`` (written by the same ``publish``).

Every event has a position, its cursor: an entry's id is the position of its first event and
the others follow it in the id's sequence part (entry ``<t>-<s>`` holds ``<t>-<s>`` …
``<t>-<s+n-1>``); the next entry takes the position after the last one's last event, so a
stream's positions are ``<t>-0``, ``<t>-1``, … with ``t`` the time the stream began. Entries
written by earlier versions hold one event each, their id its position; the stream goes on
after them. The stream is trimmed by events (XADD MINID), to about ``STREAM_MAXLEN`` of them.

A cursor is opaque to clients (today a position such as ``1732363626000-42``). Resuming a
subscription from a cursor older than what the stream still holds fails with OUT_OF_RANGE on
field ``cursor`` rather than silently skipping the trimmed events (a cursor exactly at the
trim boundary may be refused too: the stream does not record what trimming cut).

Two ways to follow a feed, same contract: ``subscribe()`` (``follow``) runs one XREAD loop per
subscriber; ``FeedHub.subscribe()`` (``hub``) shares one XREAD loop per workspace among the
subscribers of a process (decoding each entry once), and a subscriber that falls more than
``HUB_INBOX`` events behind re-reads from the stream instead of buffering more. A campaign
filter is resolved to its links once, when the subscription starts.

Modules: ``publishing`` (appending), ``requests`` (filters, limit, cursor), ``entries`` (positions,
events, messages), ``reads`` (stream reads both ways share), ``listing``, ``follow``, ``hub``.
"""

from __future__ import annotations

from services.live.feed.follow import subscribe
from services.live.feed.hub import FeedHub
from services.live.feed.listing import list_live
from services.live.feed.publishing import publish
from services.live.stats import KEY_PREFIX, live_stats, stream_key

__all__ = ["KEY_PREFIX", "FeedHub", "list_live", "live_stats", "publish", "stream_key", "subscribe"]

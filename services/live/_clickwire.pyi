"""Types of the compiled click ingestion path (_clickwire.c); see services.live.compiled_clicks."""

from collections.abc import Callable

# rows, event ids, claimed, stats events (kind, seconds, link id, visitor), cache fields
Accepted = tuple[list[bytes], list[int], list[bool], list[tuple[str, float, int, str]], list[str]]

def scan(data: bytes, /) -> tuple[set[int], int, int] | None: ...
def accept(
    data: bytes,
    workspace_id: int,
    destinations: dict[int, str],
    new_ids: list[int],
    received: int,
    latest: float,
    continents: dict[str, str],
    client_info: Callable[[str], tuple[str, str, str, bool]],
    referrer_host: Callable[[str], str],
    visitor_key: bytes,
    country_of_ip: Callable[[str], str],
    /,
) -> Accepted | None: ...

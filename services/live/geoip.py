"""Country of a client address, offline, from the regional internet registries' delegations
(the `iptocc` package ships them; no network lookup)."""

from __future__ import annotations

from iptocc import country_code

from services.geo import CONTINENT_OF


def country_of_ip(ip: str) -> str:
    """ISO-3166 alpha-2 country of an IPv4 or IPv6 address; '' when unknown, private or not an
    address (registry codes that are not a country, such as EU or AP, are unknown too)."""
    found = country_code(ip)
    return found if found is not None and found in CONTINENT_OF else ""

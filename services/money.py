"""Currencies and FX: which display currency applies and the factors that convert into it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

_RATES_SQL = """
SELECT c.code, c.minor_units,
       (SELECT r.usd_per_unit FROM fx_rates r
         WHERE r.currency = c.code AND r.rate_date <= current_date
         ORDER BY r.rate_date DESC LIMIT 1) AS usd_per_unit
FROM currencies c
"""


@dataclass(frozen=True)
class Currency:
    """A supported currency: decimals of its minor unit and its latest value in USD."""

    code: str
    minor_units: int
    usd_per_unit: float


class FxTable:
    """The supported currencies and latest rates from PostgreSQL, refreshed every `ttl` seconds."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 300.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._loaded_at = float("-inf")
        self._currencies: dict[str, Currency] = {}

    async def currencies(self) -> dict[str, Currency]:
        """Code -> Currency for every supported currency that has a rate."""
        if time.monotonic() - self._loaded_at > self._ttl:
            rows = await self._pool.fetch(_RATES_SQL)
            self._currencies = {
                r["code"].strip(): Currency(
                    r["code"].strip(), r["minor_units"], float(r["usd_per_unit"])
                )
                for r in rows
                if r["usd_per_unit"] is not None
            }
            self._loaded_at = time.monotonic()
        return self._currencies

    async def choose(self, requested: str, workspace_default: str) -> tuple[str, list[str]]:
        """The display currency: requested if supported, else the workspace default, else USD."""
        supported = await self.currencies()
        code = requested.strip().upper()
        if not code or code in supported:
            chosen = code or (workspace_default if workspace_default in supported else "USD")
            return chosen, []
        fallback = workspace_default if workspace_default in supported else "USD"
        return fallback, [f"currency '{requested}' is not supported; amounts are in {fallback}"]

    async def factors(self, target: str) -> dict[str, float]:
        """Per source currency: multiply an amount in its minor units by this to get `target`."""
        supported = await self.currencies()
        into = supported[target]
        return {
            c.code: c.usd_per_unit / (10**c.minor_units) / into.usd_per_unit
            for c in supported.values()
        }

"""How each demo link behaves: popularity, spikes, QR share, conversion and referrer mix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from random import Random

from services.demo.audience import Referrer, referrer_pool
from services.demo.catalog import CAMPAIGNS, LinkSpec
from services.demo.rhythm import Spike
from services.demo.rules import Rule
from services.demo.weighted import Weighted

ZIPF_EXPONENT = 1.1


@dataclass(frozen=True)
class LinkProfile:
    """A stored link and the traffic it draws."""

    link_id: int
    destination_url: str
    popularity: float
    qr_share: float
    # Lead rate relative to the workspace average.
    conversion: float
    referrers: Weighted[Referrer]
    rules: tuple[Rule, ...] = ()
    spike: Spike | None = None

    def weight(self, day: float) -> float:
        """Relative share of clicks `day` days after the range start."""
        return self.popularity * (self.spike.factor(day) if self.spike else 1.0)


def link_profiles(
    specs: Sequence[LinkSpec],
    link_ids: Sequence[int],
    rules: Mapping[int, tuple[Rule, ...]],
    span_days: float,
    rng: Random,
) -> list[LinkProfile]:
    """Profiles of the links (specs in popularity order, ids aligned; rules by link id)."""
    campaigns = {c.name: c for c in CAMPAIGNS}
    pools = {name: referrer_pool(c.referrer_boost) for name, c in campaigns.items()}
    plain = referrer_pool()
    spikes = {
        name: Spike(c.spike_at * span_days, c.spike_height)
        for name, c in campaigns.items()
        if c.spike_at is not None
    }
    profiles = []
    for rank, (spec, link_id) in enumerate(zip(specs, link_ids, strict=True), start=1):
        profiles.append(
            LinkProfile(
                link_id=link_id,
                destination_url=spec.destination_url,
                popularity=rank**-ZIPF_EXPONENT * rng.lognormvariate(0.0, 0.2),
                qr_share=spec.qr_share,
                conversion=rng.uniform(0.5, 1.5),
                referrers=pools.get(spec.campaign or "", plain),
                rules=rules.get(link_id, ()),
                spike=spikes.get(spec.campaign or ""),
            )
        )
    return profiles

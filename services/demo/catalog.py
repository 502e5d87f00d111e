"""What the demo workspace holds: campaigns with budgets, folders, tags, links and rules."""

from __future__ import annotations

from dataclasses import dataclass, field

DOMAIN = "lp.link"
SITE = "https://www.example.com"
SHOP = "https://shop.example.com"


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign, its budget and how its traffic differs (a spike, favoured referrers)."""

    name: str
    budget_major: int
    currency: str
    cost_per_click_minor: int
    # Where in the range (0..1) the campaign's spike peaks, and how many times the usual traffic.
    spike_at: float | None = None
    spike_height: float = 0.0
    referrer_boost: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkSpec:
    """A link; listed in order of popularity (the first gets the most clicks)."""

    slug: str
    destination_url: str
    campaign: str | None = None
    folder: str | None = None
    tags: tuple[str, ...] = ()
    qr_share: float = 0.03
    domain: str = DOMAIN


@dataclass(frozen=True)
class RuleSpec:
    """A redirect rule of the link with `slug`; it matches when any of its conditions does."""

    slug: str
    name: str
    destination_url: str
    conditions: tuple[tuple[str, str, str], ...]
    priority: int = 0


CAMPAIGNS = (
    CampaignSpec("Spring Sale", 15_000, "USD", 45, spike_at=0.35, spike_height=4.0,
                 referrer_boost={"facebook.com": 2.5, "instagram.com": 3.0}),
    CampaignSpec("Product Launch", 20_000, "USD", 60, spike_at=0.72, spike_height=7.0,
                 referrer_boost={"t.co": 2.0, "news.ycombinator.com": 5.0, "producthunt.com": 20.0,
                                 "techcrunch.com": 3.0, "theverge.com": 3.0}),
    CampaignSpec("Webinar Series", 6_000, "USD", 80, referrer_boost={"linkedin.com": 4.0}),
    CampaignSpec("Newsletter", 2_500, "USD", 12,
                 referrer_boost={"mail.google.com": 12.0, "outlook.live.com": 12.0,
                                 "(direct)": 1.5}),
    CampaignSpec("EMEA Expansion", 9_000, "EUR", 35,
                 referrer_boost={"linkedin.com": 2.0, "bbc.co.uk": 3.0}),
)  # fmt: skip

FOLDERS = ("Marketing", "Social", "Print & QR", "Product")

TAGS = (
    ("promo", "#ef4444"), ("evergreen", "#22c55e"), ("paid", "#f59e0b"),
    ("organic", "#3b82f6"), ("email", "#8b5cf6"), ("qr", "#111827"),
)  # fmt: skip

LINKS = (
    LinkSpec("home", f"{SITE}/", folder="Marketing", tags=("evergreen", "organic")),
    LinkSpec("spring-sale", f"{SHOP}/sale?utm_campaign=spring", "Spring Sale", "Marketing",
             ("promo", "paid")),
    LinkSpec("launch", f"{SITE}/launch", "Product Launch", "Product", ("promo",)),
    LinkSpec("pricing", f"{SITE}/pricing", folder="Product", tags=("evergreen",)),
    LinkSpec("app", f"{SITE}/app", "Product Launch", "Product", ("evergreen",), qr_share=0.15),
    LinkSpec("blog-growth", "https://blog.example.com/growth-playbook", folder="Social",
             tags=("organic",)),
    LinkSpec("webinar", f"{SITE}/webinars/live", "Webinar Series", "Marketing", ("email",)),
    LinkSpec("ig-bio", f"{SHOP}/?utm_source=instagram", "Spring Sale", "Social", ("organic",)),
    LinkSpec("nl-weekly", f"{SITE}/newsletter/latest", "Newsletter", "Marketing", ("email",)),
    LinkSpec("store-window", f"{SHOP}/in-store", "Spring Sale", "Print & QR", ("qr", "promo"),
             qr_share=0.85),
    LinkSpec("docs", "https://docs.example.com/", folder="Product", tags=("evergreen",)),
    LinkSpec("eu-launch", f"{SITE}/eu", "EMEA Expansion", "Marketing", ("paid",)),
    LinkSpec("sale-shoes", f"{SHOP}/sale/shoes", "Spring Sale", "Marketing", ("promo", "paid")),
    LinkSpec("changelog", f"{SITE}/changelog", "Product Launch", "Product", ("organic",)),
    LinkSpec("demo-video", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "Product Launch",
             "Social", ("organic",)),
    LinkSpec("webinar-replay", f"{SITE}/webinars/replay", "Webinar Series", "Marketing",
             ("email", "evergreen")),
    LinkSpec("poster-nyc", f"{SHOP}/nyc", "Spring Sale", "Print & QR", ("qr",), qr_share=0.9),
    LinkSpec("careers", f"{SITE}/careers", folder="Social", tags=("organic",)),
    LinkSpec("uk", "https://www.example.co.uk/", "EMEA Expansion", "Marketing", ("paid",)),
    LinkSpec("case-study", f"{SITE}/customers/northwind", "Webinar Series", "Marketing",
             ("evergreen",)),
    LinkSpec("nl-offer", f"{SHOP}/members?utm_source=newsletter", "Newsletter", "Marketing",
             ("email", "promo")),
    LinkSpec("sale-bags", f"{SHOP}/sale/bags", "Spring Sale", "Marketing", ("promo",)),
    LinkSpec("de", "https://www.example.de/", "EMEA Expansion", "Marketing", ("paid",)),
    LinkSpec("launch-tw", f"{SITE}/launch?utm_source=twitter", "Product Launch", "Social",
             ("organic",)),
    LinkSpec("flyer", f"{SHOP}/flyer", "Spring Sale", "Print & QR", ("qr",), qr_share=0.95),
    LinkSpec("api-docs", "https://docs.example.com/api", folder="Product", tags=("evergreen",)),
    LinkSpec("webinar-q2", f"{SITE}/webinars/q2", "Webinar Series", "Marketing", ("email",)),
    LinkSpec("podcast", "https://podcast.example.com/episodes/42", folder="Social",
             tags=("organic",)),
    LinkSpec("fr", "https://www.example.fr/", "EMEA Expansion", "Marketing", ("paid",)),
    LinkSpec("gift-cards", f"{SHOP}/gift-cards", "Spring Sale", "Marketing", ("promo",)),
    LinkSpec("status", "https://status.example.com/", tags=("evergreen",)),
    LinkSpec("event-badge", f"{SITE}/events/summit", "Product Launch", "Print & QR", ("qr",),
             qr_share=0.8),
    LinkSpec("nl-archive", f"{SITE}/newsletter/archive", "Newsletter", "Marketing", ("email",)),
    LinkSpec("referral", f"{SITE}/refer?ref=demo", folder="Marketing", tags=("promo",)),
    LinkSpec("partners", f"{SITE}/partners", "EMEA Expansion", "Marketing"),
    LinkSpec("press", f"{SITE}/press", folder="Social", tags=("organic",)),
    LinkSpec("menu", f"{SHOP}/cafe-menu", folder="Print & QR", tags=("qr",), qr_share=0.97),
    LinkSpec("survey", "https://forms.example.com/feedback", "Webinar Series", "Marketing",
             ("email",)),
    LinkSpec("security", f"{SITE}/security"),
    LinkSpec("old-promo", f"{SHOP}/winter", "Spring Sale", tags=("promo", "paid")),
)  # fmt: skip

RULES = (
    RuleSpec("app", "iOS to the App Store", "https://apps.apple.com/app/id1234567890",
             (("os", "eq", "iOS"),), priority=1),
    RuleSpec("app", "Android to Google Play",
             "https://play.google.com/store/apps/details?id=com.example.app",
             (("os", "eq", "Android"),), priority=2),
    RuleSpec("pricing", "UK and Ireland pricing", "https://www.example.co.uk/pricing",
             (("country", "eq", "GB"), ("country", "eq", "IE")), priority=1),
    RuleSpec("pricing", "Euro pricing", f"{SITE}/eu/pricing",
             (("country", "in", "DE,FR,ES,IT,NL,PL,SE"),), priority=2),
    RuleSpec("spring-sale", "Mobile storefront", "https://m.shop.example.com/sale",
             (("device", "eq", "mobile"), ("device", "eq", "tablet")), priority=1),
)  # fmt: skip

# Sale prices in minor units of each currency (JPY has none), with relative weights.
PRICES: dict[str, tuple[tuple[int, float], ...]] = {
    "USD": ((1900, 20), (2900, 30), (4900, 25), (9900, 15), (19900, 7), (49900, 3)),
    "EUR": ((1900, 20), (2900, 30), (4500, 25), (8900, 15), (17900, 7), (45900, 3)),
    "GBP": ((1500, 20), (2500, 30), (3900, 25), (7900, 15), (15900, 7), (39900, 3)),
    "JPY": ((2900, 20), (4500, 30), (7800, 25), (14800, 15), (29800, 7), (74800, 3)),
}

LEAD_EVENTS = (("Sign up", 70.0), ("Demo request", 20.0), ("Newsletter signup", 10.0))
SALE_EVENTS = (("Purchase", 80.0), ("Subscription", 20.0))

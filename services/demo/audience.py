"""Who clicks in the demo: where they are, what they browse with and where they came from."""

from __future__ import annotations

from dataclasses import dataclass

from services.demo.weighted import Weighted
from services.geo import continent_of
from services.live.clients import client_info


@dataclass(frozen=True)
class Place:
    """A city with its region and country, the currency people there pay in, mobile share."""

    country: str
    region: str
    city: str
    continent: str
    currency: str
    mobile_share: float


@dataclass(frozen=True)
class Client:
    """Device, browser and OS families of one user agent (parsed once, at import)."""

    device: str
    browser: str
    os: str
    is_bot: bool


@dataclass(frozen=True)
class Referrer:
    """A referring host and the URLs it links from."""

    host: str
    urls: tuple[str, ...]


DIRECT = "(direct)"

_Regions = tuple[tuple[str, tuple[tuple[str, float], ...]], ...]

# country: (share of traffic, currency, mobile share, ((region, ((city, weight), ...)), ...))
_COUNTRIES: dict[str, tuple[float, str, float, _Regions]] = {
    "US": (38.0, "USD", 0.55, (
        ("US-CA", (("Los Angeles", 5), ("San Francisco", 4), ("San Diego", 2), ("San Jose", 2))),
        ("US-NY", (("New York", 8), ("Brooklyn", 2), ("Buffalo", 1))),
        ("US-TX", (("Austin", 3), ("Houston", 3), ("Dallas", 3))),
        ("US-WA", (("Seattle", 3), ("Spokane", 0.5))),
        ("US-IL", (("Chicago", 4),)),
        ("US-MA", (("Boston", 3), ("Cambridge", 1))),
        ("US-FL", (("Miami", 2.5), ("Orlando", 1.5), ("Tampa", 1))),
        ("US-GA", (("Atlanta", 2.5),)),
        ("US-CO", (("Denver", 2), ("Boulder", 0.5))),
        ("US-VA", (("Arlington", 1), ("Richmond", 0.8))),
    )),
    "GB": (9.0, "GBP", 0.6, (
        ("GB-ENG", (("London", 8), ("Manchester", 2), ("Birmingham", 1.5), ("Bristol", 1))),
        ("GB-SCT", (("Edinburgh", 1), ("Glasgow", 1))),
        ("GB-WLS", (("Cardiff", 0.6),)),
    )),
    "DE": (7.0, "EUR", 0.5, (
        ("DE-BE", (("Berlin", 5),)),
        ("DE-BY", (("Munich", 3), ("Nuremberg", 1))),
        ("DE-HH", (("Hamburg", 2.5),)),
        ("DE-HE", (("Frankfurt am Main", 2),)),
        ("DE-NW", (("Cologne", 2), ("Düsseldorf", 1.5))),
    )),
    "IN": (7.0, "USD", 0.8, (
        ("IN-MH", (("Mumbai", 5), ("Pune", 2))),
        ("IN-KA", (("Bengaluru", 5),)),
        ("IN-DL", (("New Delhi", 4),)),
        ("IN-TG", (("Hyderabad", 3),)),
        ("IN-TN", (("Chennai", 2),)),
    )),
    "BR": (5.0, "USD", 0.75, (
        ("BR-SP", (("São Paulo", 6), ("Campinas", 1))),
        ("BR-RJ", (("Rio de Janeiro", 3),)),
        ("BR-MG", (("Belo Horizonte", 1.5),)),
    )),
    "FR": (5.0, "EUR", 0.55, (
        ("FR-IDF", (("Paris", 6),)),
        ("FR-ARA", (("Lyon", 2),)),
        ("FR-PAC", (("Marseille", 1.5), ("Nice", 0.8))),
        ("FR-OCC", (("Toulouse", 1),)),
    )),
    "CA": (5.0, "USD", 0.55, (
        ("CA-ON", (("Toronto", 5), ("Ottawa", 1.5))),
        ("CA-BC", (("Vancouver", 3),)),
        ("CA-QC", (("Montreal", 2.5),)),
        ("CA-AB", (("Calgary", 1.2),)),
    )),
    "JP": (4.0, "JPY", 0.7, (
        ("JP-13", (("Tokyo", 7),)),
        ("JP-27", (("Osaka", 3),)),
        ("JP-14", (("Yokohama", 1.5),)),
        ("JP-40", (("Fukuoka", 1),)),
    )),
    "AU": (3.0, "USD", 0.6, (
        ("AU-NSW", (("Sydney", 4),)),
        ("AU-VIC", (("Melbourne", 3.5),)),
        ("AU-QLD", (("Brisbane", 1.5),)),
    )),
    "NL": (2.0, "EUR", 0.5, (
        ("NL-NH", (("Amsterdam", 4),)), ("NL-ZH", (("Rotterdam", 1.5), ("The Hague", 1))),
    )),
    "ES": (2.0, "EUR", 0.6, (("ES-MD", (("Madrid", 3),)), ("ES-CT", (("Barcelona", 3),)))),
    "IT": (1.8, "EUR", 0.6, (("IT-25", (("Milan", 3),)), ("IT-62", (("Rome", 3),)))),
    "MX": (1.8, "USD", 0.75, (
        ("MX-CMX", (("Mexico City", 4),)), ("MX-JAL", (("Guadalajara", 1.5),)),
    )),
    "IE": (1.0, "EUR", 0.55, (("IE-D", (("Dublin", 4),)), ("IE-CO", (("Cork", 1),)))),
    "SE": (1.0, "EUR", 0.55, (("SE-AB", (("Stockholm", 3),)), ("SE-O", (("Gothenburg", 1),)))),
    "SG": (1.0, "USD", 0.65, (("SG-01", (("Singapore", 1),)),)),
    "KR": (1.0, "USD", 0.7, (("KR-11", (("Seoul", 4),)), ("KR-26", (("Busan", 1),)))),
    "NG": (0.8, "USD", 0.85, (("NG-LA", (("Lagos", 3),)), ("NG-FC", (("Abuja", 1),)))),
    "PL": (0.8, "EUR", 0.6, (("PL-14", (("Warsaw", 3),)), ("PL-12", (("Kraków", 1),)))),
    "ZA": (0.7, "USD", 0.7, (("ZA-GP", (("Johannesburg", 2),)), ("ZA-WC", (("Cape Town", 1.5),)))),
}  # fmt: skip


def _places() -> Weighted[Place]:
    pairs = []
    for country, (share, currency, mobile, regions) in _COUNTRIES.items():
        total = sum(weight for _, cities in regions for _, weight in cities)
        for region, cities in regions:
            for city, weight in cities:
                place = Place(country, region, city, continent_of(country), currency, mobile)
                pairs.append((place, share * weight / total))
    return Weighted(pairs)


PLACES = _places()

# Where crawlers and link-preview bots fetch from.
BOT_PLACES = Weighted([
    (Place("US", "US-CA", "Mountain View", "NA", "USD", 0.0), 5),
    (Place("US", "US-VA", "Ashburn", "NA", "USD", 0.0), 4),
    (Place("US", "US-WA", "Redmond", "NA", "USD", 0.0), 2),
    (Place("US", "US-OR", "Boardman", "NA", "USD", 0.0), 1),
    (Place("IE", "IE-D", "Dublin", "EU", "EUR", 0.0), 1),
])  # fmt: skip

_DESKTOP_UAS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 16),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15", 12),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", 11),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 6),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:125.0) Gecko/20100101 Firefox/125.0", 2),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 3),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 1.5),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 1.5),
)  # fmt: skip

_MOBILE_UAS = (
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", 30),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", 5),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.82 Mobile Safari/537.36", 18),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.82 Mobile Safari/537.36", 8),
    ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", 6),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone15,3;FBMD/iPhone;FBSN/iOS;"
     "FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]", 5),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.82 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/458.0.0.45.86;]", 3),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 Instagram 330.0.0.40.92 (iPhone15,3; iOS 17_4; en_US; "
     "en; scale=3.00; 1290x2796; 600137226)", 4),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", 5),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 1.5),
)  # fmt: skip

_BOT_UAS = (
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 4),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("Twitterbot/1.0", 2),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 2),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", 1.5),
)


def _clients(uas: tuple[tuple[str, float], ...]) -> Weighted[Client]:
    pairs = []
    for ua, weight in uas:
        info = client_info(ua)
        pairs.append((Client(info.device, info.browser, info.os, info.is_bot), weight))
    return Weighted(pairs)


DESKTOP_CLIENTS = _clients(_DESKTOP_UAS)
MOBILE_CLIENTS = _clients(_MOBILE_UAS)
BOT_CLIENTS = _clients(_BOT_UAS)

# host: (base weight, URLs it links from)
REFERRERS: dict[str, tuple[float, tuple[str, ...]]] = {
    DIRECT: (24.0, ("",)),
    "google.com": (22.0, ("https://www.google.com/",)),
    "t.co": (7.0, ("https://t.co/3xQm9LpV2a", "https://t.co/Zr7KfW1nQe", "https://t.co/b8YhT4cNsD")),
    "facebook.com": (8.0, ("https://www.facebook.com/", "https://l.facebook.com/", "https://m.facebook.com/")),
    "instagram.com": (4.0, ("https://l.instagram.com/",)),
    "linkedin.com": (6.0, ("https://www.linkedin.com/feed/", "https://www.linkedin.com/")),
    "reddit.com": (2.5, ("https://www.reddit.com/r/marketing/", "https://www.reddit.com/r/startups/")),
    "youtube.com": (2.5, ("https://www.youtube.com/",)),
    "bing.com": (2.0, ("https://www.bing.com/",)),
    "duckduckgo.com": (1.0, ("https://duckduckgo.com/",)),
    "news.ycombinator.com": (1.5, ("https://news.ycombinator.com/", "https://news.ycombinator.com/item?id=40123456")),
    "producthunt.com": (0.5, ("https://www.producthunt.com/posts/acme",)),
    "nytimes.com": (1.2, ("https://www.nytimes.com/section/technology",)),
    "theverge.com": (1.0, ("https://www.theverge.com/tech",)),
    "techcrunch.com": (1.2, ("https://techcrunch.com/category/startups/",)),
    "bbc.co.uk": (1.0, ("https://www.bbc.co.uk/news/technology",)),
    "mail.google.com": (1.5, ("https://mail.google.com/",)),
    "outlook.live.com": (0.8, ("https://outlook.live.com/",)),
}  # fmt: skip


def referrer_pool(boost: dict[str, float] | None = None) -> Weighted[Referrer]:
    """Referrers weighted by their base share, each multiplied by boost[host] when given."""
    boost = boost or {}
    return Weighted(
        (Referrer(host, urls), weight * boost.get(host, 1.0))
        for host, (weight, urls) in REFERRERS.items()
    )

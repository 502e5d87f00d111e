"""What real user agents say about their clients: device type, browser, OS, and bots."""

from __future__ import annotations

import pytest

from services.live.clients import ClientInfo, client_info

WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
# (user agent, device, browser, os, bot); the names are those the user-agents package gave,
# except for the clients it counted as people (the last block).
CLIENTS = [
    (WINDOWS_CHROME, "desktop", "Chrome", "Windows", False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
     "desktop", "Firefox", "Windows", False),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
     "desktop", "Firefox", "Linux", False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Safari/605.1.15", "desktop", "Safari", "Mac OS X", False),
    (WINDOWS_CHROME + " Edg/124.0.2478.80", "desktop", "Edge", "Windows", False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "mobile", "Mobile Safari", "iOS", False),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", "mobile", "Chrome Mobile", "Android", False),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", "tablet", "Mobile Safari", "iOS", False),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", "tablet", "Chrome", "Android", False),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
     "[FB_IAB/FB4A;FBAV/458.0.0.45.86;]", "mobile", "Facebook", "Android", False),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "bot", "Googlebot", "Other", True),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
     "bot", "bingbot", "Other", True),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
     "bot", "FacebookBot", "Other", True),
    # Counted as people by the user-agents package.
    ("curl/8.4.0", "bot", "curl", "Other", True),
    ("python-requests/2.31.0", "bot", "Python Requests", "Other", True),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/124.0.0.0 Safari/537.36", "bot", "HeadlessChrome", "Linux", True),
    ("Wget/1.21.4", "bot", "Wget", "Other", True),
]  # fmt: skip


@pytest.mark.parametrize(("agent", "device", "browser", "os", "bot"), CLIENTS)
def test_a_user_agent_names_its_client(
    agent: str, device: str, browser: str, os: str, bot: bool
) -> None:
    assert client_info(agent) == ClientInfo(device, browser, os, bot)


def test_an_unknown_agent_is_other() -> None:
    assert client_info("something else entirely") == ClientInfo("other", "Other", "Other", False)


@pytest.mark.parametrize(("agent", "device", "browser", "os", "bot"), CLIENTS)
def test_names_stay_those_of_the_old_parser_except_for_bots_it_missed(
    agent: str, device: str, browser: str, os: str, bot: bool
) -> None:
    user_agents = pytest.importorskip("user_agents")  # a dev dependency, for this comparison
    old = user_agents.parse(agent)
    assert (old.browser.family, old.os.family) == (browser, os)
    if old.is_bot or not bot:  # where the old parser was right, the device type is its own
        was = (
            "bot" if old.is_bot else "tablet" if old.is_tablet else "mobile" if old.is_mobile
            else "desktop" if old.is_pc else "other"
        )  # fmt: skip
        assert (device, bot) == (was, old.is_bot)

"""What a user agent says about its client: device type, browser and OS families, and whether it
is a crawler.

Browser, OS and device families come from `ua-parser` with the current uap-core rules
(`ua-parser-builtins`; through the native `ua-parser-rs` resolver when it is installed). The
device type keeps the vocabulary (desktop, mobile, tablet, bot, other) and the rules that the
`user-agents` package applied to those families, so existing data keeps its names. A client is a
bot when uap-core calls its device a Spider or when the maintained crawler pattern list matches
(`crawler-user-agents`, one regular expression compiled once per process on import), which also
catches HTTP libraries and headless browsers (curl, python-requests, HeadlessChrome…).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import ua_parser
from crawleruseragents import is_crawler

DISTINCT_AGENTS = 4096

_MOBILE_DEVICES = frozenset(
    ("iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone", "PlayStation Vita",
     "iOS-Device")
)  # fmt: skip
_PC_OSES = frozenset(("Windows 95", "Windows 98", "Solaris"))
_MOBILE_OSES = frozenset(
    ("Windows Phone", "Windows Phone OS", "Symbian OS", "Bada", "Windows CE", "Windows Mobile",
     "Maemo")
)  # fmt: skip
_MOBILE_BROWSERS = frozenset(
    ("IE Mobile", "Opera Mobile", "Opera Mini", "Chrome Mobile", "Chrome Mobile WebView",
     "Chrome Mobile iOS")
)  # fmt: skip
_TABLET_DEVICES = frozenset(
    ("iPad", "BlackBerry Playbook", "Blackberry Playbook", "Kindle", "Kindle Fire",
     "Kindle Fire HD", "Galaxy Tab", "Xoom", "Dell Streak")
)  # fmt: skip


class ClientInfo(NamedTuple):
    """What a user agent says about the client (a tuple: the compiled click path reads it)."""

    device: str
    browser: str
    os: str
    is_bot: bool


class _Families(NamedTuple):
    device: str
    browser: str
    os: str
    os_major: str


def _families(user_agent: str) -> _Families:
    found = ua_parser.parse(user_agent).with_defaults()
    return _Families(found.device.family, found.user_agent.family, found.os.family,
                     found.os.major or "")  # fmt: skip


def _is_tablet(ua: str, f: _Families) -> bool:
    if f.device in _TABLET_DEVICES:
        return True
    if f.os == "Android" and "Mobile Safari" not in ua and f.browser != "Firefox Mobile":
        return True  # newer Android tablets leave "Mobile" out
    if f.os == "Windows" and f.os_major.startswith("RT"):
        return True
    return f.os == "Firefox OS" and "Mobile" not in f.browser


def _is_mobile(ua: str, f: _Families) -> bool:
    # Asked only once the client is not a tablet: Android and Firefox OS are then phones.
    return (
        f.device in _MOBILE_DEVICES
        or f.browser in _MOBILE_BROWSERS
        or f.os in ("Android", "Firefox OS")
        or (f.os == "BlackBerry OS" and f.device != "Blackberry Playbook")
        or f.os in _MOBILE_OSES
        or "J2ME" in ua
        or "MIDP" in ua
        or "iPhone;" in ua
        or "Googlebot-Mobile" in ua
        or (f.device == "Spider" and "Mobile" in f.browser)
        or ("NokiaBrowser" in ua and "Mobile" in ua)
    )


def _is_desktop(ua: str, f: _Families) -> bool:
    if "Windows NT" in ua or f.os in _PC_OSES or (f.os == "Windows" and f.os_major == "ME"):
        return True
    if f.os == "Mac OS X" and "Silk" not in ua:
        return True
    if "Maemo" in ua:
        return False
    return "Chrome OS" in f.os or ("Linux" in ua and "X11" in ua)


def is_bot(user_agent: str) -> bool:
    """True when the user agent is a crawler, bot, HTTP library or headless browser."""
    return is_crawler(user_agent)


@lru_cache(maxsize=DISTINCT_AGENTS)
def client_info(user_agent: str) -> ClientInfo:
    """Device type (desktop, mobile, tablet, bot, other), browser and OS families of a UA string."""
    f = _families(user_agent)
    bot = f.device == "Spider" or is_bot(user_agent)
    if bot:
        device = "bot"
    elif _is_tablet(user_agent, f):
        device = "tablet"
    elif _is_mobile(user_agent, f):
        device = "mobile"
    elif _is_desktop(user_agent, f):
        device = "desktop"
    else:
        device = "other"
    return ClientInfo(device, f.browser, f.os, bot)

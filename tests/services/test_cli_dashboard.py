"""`linkpulse dashboard link` prints URLs a browser can open."""

from __future__ import annotations

import dataclasses

from services.cli.dashboard import base_url
from services.cli.main import build_parser
from services.config import Settings


def test_the_cli_prints_links_browsers_can_open() -> None:
    settings = dataclasses.replace(Settings(), gateway_host="0.0.0.0", gateway_port=8080)
    assert base_url(settings) == "http://127.0.0.1:8080"
    assert base_url(dataclasses.replace(settings, gateway_host="::1")) == "http://[::1]:8080"
    public = dataclasses.replace(settings, dashboard_base_url="https://stats.example.com/")
    assert base_url(public) == "https://stats.example.com"


def test_the_group_parses_durations_and_needs_a_workspace() -> None:
    args = build_parser().parse_args(["dashboard", "link", "--workspace", "3", "--ttl", "12h"])
    assert (args.workspace, args.ttl, args.label) == (3, 43200, "")
    args = build_parser().parse_args(["dashboard", "link", "--workspace", "3"])
    assert args.ttl == 7 * 86400
    args = build_parser().parse_args(["dashboard", "revoke", "--id", "9"])
    assert args.id == 9

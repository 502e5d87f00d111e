"""Input is checked before anything is written: each bad value is bad input naming its field."""

from __future__ import annotations

import pytest

from tests.services.cli.conftest import Cli


def _refused(cli: Cli, field: str, *args: str) -> str:
    done = cli(*args)
    assert done.status == 2, (done.out, done.err)
    error = done.error
    assert error["code"] == "bad_input" and error["field"] == field, error
    return str(error["message"])


def _count(cli: Cli, table: str) -> int:
    return int(cli.sql(f"SELECT count(*) AS n FROM {table}")[0]["n"])


@pytest.mark.parametrize(
    ("field", "option", "value", "says"),
    [
        ("timezone", "--timezone", "Mars/Olympus_Mons", "IANA time zone"),
        ("timezone", "--timezone", "utc ", "IANA time zone"),
        ("timezone", "--timezone", "", "must not be empty"),
        ("currency", "--currency", "XYZ", "supported: AUD, BRL, CAD"),
        ("currency", "--currency", "", "unsupported currency"),
        ("plan", "--plan", "gold", "plans: free, pro, business, enterprise"),
        ("name", "--name", " ", "name must not be empty"),
    ],
)
def test_workspace_values(cli: Cli, field: str, option: str, value: str, says: str) -> None:
    before = _count(cli, "workspaces"), _count(cli, "organizations")
    args = ["workspace", "create", "--name", "Refused"]
    if option == "--name":
        args = args[:2]
    message = _refused(cli, field, *args, f"{option}={value}")
    assert says in message
    assert (_count(cli, "workspaces"), _count(cli, "organizations")) == before


def test_workspace_values_accepted(cli: Cli) -> None:
    made = cli(
        "workspace", "create", "--name", "Good", "--plan", "business", "--currency", "eur",
        "--timezone", "America/Argentina/Buenos_Aires",
    ).json  # fmt: skip
    assert made["default_currency"] == "EUR" and made["plan"] == "business"
    assert made["timezone"] == "America/Argentina/Buenos_Aires"


def test_features_and_plans(cli: Cli) -> None:
    workspace = str(cli.workspace())
    message = _refused(
        cli, "features", "workspace", "plan", "--workspace", workspace, "--features", "teleport"
    )
    assert message == "unknown features teleport; known: deep_links, device_analytics"
    # A bad feature refuses the plan change given with it too: nothing is written.
    _refused(
        cli, "features", "workspace", "plan", "--workspace", workspace,
        "--plan", "pro", "--features", "deep_links,teleport",
    )  # fmt: skip
    _refused(cli, "plan", "workspace", "plan", "--workspace", workspace, "--plan", "gold")
    shown = cli("workspace", "show", workspace).json
    assert shown["plan"] == "free" and shown["extra_features"] == []
    changed = cli(
        "workspace", "plan", "--workspace", workspace, "--plan", "pro", "--features", "deep_links"
    ).json
    assert changed["plan"] == "pro" and changed["extra_features"] == ["deep_links"]
    shown = cli("workspace", "show", workspace).json
    assert shown["features"] == ["deep_links", "device_analytics"]
    _refused(cli, "plan", "workspace", "plan", "--workspace", workspace)  # neither given


@pytest.mark.parametrize(
    ("field", "option", "value"),
    [
        ("slug", "--slug", "has space"),
        ("slug", "--slug", "-leading-dash"),
        ("slug", "--slug", "a/b"),
        ("slug", "--slug", "x" * 101),
        ("slug", "--slug", ""),
        ("url", "--url", "ftp://example.com/file"),
        ("url", "--url", "example.com/no-scheme"),
        ("url", "--url", "https://"),
        ("url", "--url", "https://exa mple.com/"),
        ("url", "--url", "https://example.com/" + "x" * 2048),
        ("domain", "--domain", "localhost"),
        ("domain", "--domain", "bad_domain.example"),
        ("domain", "--domain", "-x.example"),
    ],
)
def test_link_values(cli: Cli, field: str, option: str, value: str) -> None:
    workspace = str(cli.workspace())
    good = {"--slug": f"ok-{workspace}", "--url": "https://example.com/", "--domain": "lp.link"}
    good[option] = value
    before = _count(cli, "links"), _count(cli, "campaigns")
    args = [f"{name}={text}" for name, text in good.items()]
    _refused(cli, field, "link", "create", "--workspace", workspace, "--campaign", "C", *args)
    assert (_count(cli, "links"), _count(cli, "campaigns")) == before


def test_scopes(cli: Cli) -> None:
    workspace = str(cli.workspace())
    message = _refused(cli, "scopes", "apikey", "create", "--workspace", workspace, "--scopes", "x")
    assert "known: analytics:read" in message
    _refused(cli, "scopes", "apikey", "create", "--workspace", workspace, "--scopes", ",")

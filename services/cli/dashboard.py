"""`linkpulse dashboard link|list|revoke`: read-only links to a workspace's /dashboard page."""

from __future__ import annotations

import argparse
from typing import Any

from services import config
from services.auth.signing import signer
from services.cli.admin import cli_actor
from services.cli.embed import parse_duration
from services.cli.pools import with_pool
from services.query import dashboard_tokens


def base_url(settings: config.Settings) -> str:
    """The gateway's address as a browser reaches it: DASHBOARD_BASE_URL, else its listen one."""
    if settings.dashboard_base_url:
        return settings.dashboard_base_url.rstrip("/")
    host = settings.gateway_host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine reaches it locally
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.gateway_port}"


async def cmd_dashboard_link(args: argparse.Namespace) -> dict[str, Any]:
    """Mint a dashboard token; its URL (with the token in the fragment) is printed once."""
    settings = config.load()
    made = await with_pool(
        lambda pool: dashboard_tokens.create(
            pool,
            signer(settings),
            workspace_id=args.workspace,
            actor=cli_actor(),
            ttl_seconds=args.ttl,
            label=args.label,
        )
    )
    return {**made, "url": base_url(settings) + made["dashboard_path"]}


async def cmd_dashboard_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The workspace's dashboard tokens (without the tokens themselves)."""
    return await with_pool(
        lambda pool: dashboard_tokens.list_tokens(pool, args.workspace, args.all)
    )


async def cmd_dashboard_revoke(args: argparse.Namespace) -> dict[str, Any]:
    """Revoke a dashboard token by id; the page stops answering within AUTH_CACHE_SECONDS."""
    return await with_pool(lambda pool: dashboard_tokens.revoke(pool, args.id, actor=cli_actor()))


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dashboard link`, `dashboard list` and `dashboard revoke`."""
    group = sub.add_parser("dashboard", help="read-only dashboard links").add_subparsers(
        dest="action", required=True
    )
    p = group.add_parser("link", help="mint a read-only, expiring link to the dashboard page")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument(
        "--ttl",
        type=parse_duration,
        default=dashboard_tokens.DEFAULT_TTL_SECONDS,
        help="validity: seconds or 15m, 12h, 7d (default 7d)",
    )
    p.add_argument("--label", default="", help="who or what the link is for")
    p.set_defaults(handler=cmd_dashboard_link)
    p = group.add_parser("list", help="list a workspace's dashboard links")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--all", action="store_true", help="include revoked and expired links")
    p.set_defaults(handler=cmd_dashboard_list)
    p = group.add_parser("revoke", help="revoke a dashboard link")
    p.add_argument("--id", type=int, required=True)
    p.set_defaults(handler=cmd_dashboard_revoke)

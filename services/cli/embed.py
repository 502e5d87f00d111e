"""`linkpulse embed create|list|show|revoke`: embed tokens for the iframe widget."""

from __future__ import annotations

import argparse
import re
from typing import Any

from services import config
from services.auth.signing import signer
from services.cli.admin import cli_actor
from services.cli.options import add_page_options
from services.cli.pools import with_pool
from services.query import embed_tokens
from services.stores.postgres import create_pool

_DURATION = re.compile(r"(\d+)([smhd]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds of a duration: `3600`, `90s`, `15m`, `12h` or `7d`."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 15m, 12h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


async def cmd_embed_create(args: argparse.Namespace) -> dict[str, Any]:
    """Mint an embed token; the token (and its iframe path) is printed once."""
    settings = config.load()
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        return await embed_tokens.create(
            pool,
            signer(settings),
            workspace_id=args.workspace,
            actor=cli_actor(),
            link_id=args.link,
            days=args.days,
            ttl_seconds=args.ttl,
        )
    finally:
        await pool.close()


async def cmd_embed_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The workspace's embed tokens (without the tokens themselves), newest first."""
    found = await with_pool(lambda pool: embed_tokens.list_tokens(pool, args.workspace, args.all))
    return [t for t in found if args.after is None or t["id"] < args.after][: args.limit]


async def cmd_embed_show(args: argparse.Namespace) -> dict[str, Any]:
    """One embed token by id (without the token itself)."""
    return await with_pool(lambda pool: embed_tokens.get(pool, args.id))


async def cmd_embed_revoke(args: argparse.Namespace) -> dict[str, Any]:
    """Revoke an embed token by id; the widget stops answering within seconds."""
    return await with_pool(lambda pool: embed_tokens.revoke(pool, args.id, actor=cli_actor()))


def register(sub: argparse._SubParsersAction) -> None:
    """Add `embed create`, `embed list`, `embed show` and `embed revoke`."""
    embeds = sub.add_parser("embed", help="embed tokens").add_subparsers(
        dest="action", required=True
    )
    p = embeds.add_parser("create", help="mint a read-only, expiring embed token")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--link", type=int, help="only this link (default: the whole workspace)")
    p.add_argument("--days", type=int, default=embed_tokens.DEFAULT_DAYS, help="days shown")
    p.add_argument(
        "--ttl",
        type=parse_duration,
        default=embed_tokens.DEFAULT_TTL_SECONDS,
        help="validity: seconds or 15m, 12h, 30d (default 30d)",
    )
    p.set_defaults(handler=cmd_embed_create)
    p = embeds.add_parser("list", help="list a workspace's embed tokens")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--all", action="store_true", help="include revoked and expired tokens")
    add_page_options(p)
    p.set_defaults(handler=cmd_embed_list)
    p = embeds.add_parser("show", help="show one embed token (never the token itself)")
    p.add_argument("id", type=int, metavar="ID")
    p.set_defaults(handler=cmd_embed_show)
    p = embeds.add_parser("revoke", help="revoke an embed token")
    p.add_argument("--id", type=int, required=True)
    p.set_defaults(handler=cmd_embed_revoke)

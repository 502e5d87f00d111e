"""Sub-commands that administer the stores: migrate, demo, workspace, apikey, session, link."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Awaitable, Callable
from typing import Any

from services import config
from services.admin import credentials, links, tenants
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from services.stores.postgres import create_pool


def cli_actor() -> str:
    """Who the audit log names for a command run here: `cli:<login name>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _with_pool(fn: Callable[[Any], Awaitable[Any]]) -> Any:
    pool = await create_pool(config.load().database_url, max_size=2)
    try:
        return await fn(pool)
    finally:
        await pool.close()


async def cmd_migrate(_args: argparse.Namespace) -> dict[str, Any]:
    """Create the databases if missing and apply pending migrations."""
    settings = config.load()
    applied = await migrate(
        settings.database_url,
        settings.clickhouse_url,
        settings.clickhouse_cluster,
        settings.clickhouse_sharding,
    )
    return {"applied": applied}


async def cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    """Create (or reuse) the demo workspace and its data; print a fresh API key."""
    from services.demo import load_demo

    settings = config.load()
    ch = ClickHouse.from_settings(settings)
    try:
        return await _with_pool(
            lambda pool: load_demo(pool, ch, clicks=args.clicks, days=args.days, reset=args.reset)
        )
    finally:
        ch.close()


async def cmd_workspace_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create a workspace in a new organization (or the one given)."""
    return await _with_pool(
        lambda pool: tenants.create_workspace(
            pool,
            args.name,
            plan=args.plan,
            currency=args.currency,
            timezone=args.timezone,
            organization_id=args.organization,
        )
    )


async def cmd_apikey_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create an API key; the key is printed once and only its hash is kept."""
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    return await _with_pool(
        lambda pool: credentials.create_api_key(
            pool, args.workspace, scopes, name=args.name, actor=cli_actor()
        )
    )


async def cmd_apikey_revoke(args: argparse.Namespace) -> dict[str, Any]:
    """Revoke an API key by id."""
    revoked = await _with_pool(
        lambda pool: credentials.revoke_api_key(pool, args.id, actor=cli_actor())
    )
    return {"id": args.id, "revoked": revoked}


async def cmd_session_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create a session token for a user (created if new) who is a member of the workspace."""
    return await _with_pool(
        lambda pool: credentials.create_session(
            pool, args.email, args.workspace, role=args.role, actor=cli_actor()
        )
    )


async def cmd_session_revoke(args: argparse.Namespace) -> dict[str, Any]:
    """Revoke a session by id."""
    revoked = await _with_pool(
        lambda pool: credentials.revoke_session(pool, args.id, actor=cli_actor())
    )
    return {"id": args.id, "revoked": revoked}


async def cmd_workspace_plan(args: argparse.Namespace) -> dict[str, Any]:
    """Change a workspace's plan and/or the features it has beyond the plan's."""
    if args.plan is None and args.features is None:
        raise ValueError("give --plan and/or --features")

    async def change(pool: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"id": args.workspace}
        if args.plan is not None:
            result |= await tenants.set_plan(pool, args.workspace, args.plan, actor=cli_actor())
        if args.features is not None:
            features = args.features.split(",")
            result |= await tenants.set_extra_features(
                pool, args.workspace, features, actor=cli_actor()
            )
        return result

    return await _with_pool(change)


async def cmd_link_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create a link, creating its campaign, folder and tags by name when needed."""

    async def create(pool: Any) -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction():
            ws = args.workspace
            campaign = (
                await links.create_group(conn, "campaigns", ws, args.campaign)
                if args.campaign
                else None
            )
            folder = (
                await links.create_group(conn, "folders", ws, args.folder) if args.folder else None
            )
            tags = [
                await links.create_group(conn, "tags", ws, t) for t in args.tags.split(",") if t
            ]
            return await links.create_link(
                conn,
                ws,
                domain=args.domain,
                slug=args.slug,
                destination_url=args.url,
                campaign_id=campaign,
                folder_id=folder,
                tag_ids=tags,
            )

    return await _with_pool(create)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the administrative sub-commands."""
    p = sub.add_parser("migrate", help="create databases and apply migrations")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("demo", help="load the demo workspace and print its API key")
    p.add_argument("--clicks", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--reset", action="store_true", help="regenerate the demo data")
    p.set_defaults(handler=cmd_demo)

    ws = sub.add_parser("workspace", help="workspaces").add_subparsers(dest="action", required=True)
    p = ws.add_parser("create", help="create a workspace")
    p.add_argument("--name", required=True)
    p.add_argument("--plan", default="free")
    p.add_argument("--currency", default="USD")
    p.add_argument("--timezone", default="UTC")
    p.add_argument("--organization", type=int)
    p.set_defaults(handler=cmd_workspace_create)
    p = ws.add_parser("plan", help="change a workspace's plan or extra features (audited)")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--plan", help="free, pro, business or enterprise")
    p.add_argument("--features", help="comma-separated features beyond the plan's ('' for none)")
    p.set_defaults(handler=cmd_workspace_plan)

    keys = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    p = keys.add_parser("create", help="create an API key")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--scopes", default="analytics:read", help="comma-separated scopes")
    p.add_argument("--name", default="")
    p.set_defaults(handler=cmd_apikey_create)
    p = keys.add_parser("revoke", help="revoke an API key")
    p.add_argument("--id", type=int, required=True)
    p.set_defaults(handler=cmd_apikey_revoke)

    sessions = sub.add_parser("session", help="sessions").add_subparsers(
        dest="action", required=True
    )
    p = sessions.add_parser("create", help="create a session token")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--role", default="owner", choices=("owner", "admin", "member"))
    p.set_defaults(handler=cmd_session_create)
    p = sessions.add_parser("revoke", help="revoke a session")
    p.add_argument("--id", type=int, required=True)
    p.set_defaults(handler=cmd_session_revoke)

    lk = sub.add_parser("link", help="links").add_subparsers(dest="action", required=True)
    p = lk.add_parser("create", help="create a link")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--domain", default="lp.link")
    p.add_argument("--slug", required=True)
    p.add_argument("--url", required=True, help="destination URL")
    p.add_argument("--campaign", help="campaign name (created if missing)")
    p.add_argument("--folder", help="folder name (created if missing)")
    p.add_argument("--tags", default="", help="comma-separated tag names (created if missing)")
    p.set_defaults(handler=cmd_link_create)

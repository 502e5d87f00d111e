"""Sub-commands that administer the stores: migrate, demo, workspace, apikey, session, link."""

from __future__ import annotations

import argparse
import getpass
from typing import Any

import asyncpg

from services import config, errors
from services.admin import checks, credentials, inventory, links, tenants
from services.cli.options import add_page_options
from services.cli.pools import with_pool
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate

DEMO_CLICKS = 1_000_000
DEMO_DAYS = 90


def cli_actor() -> str:
    """Who the audit log names for a command run here: `cli:<login name>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


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
    """Load the demo workspace, or reuse the one there is; say which, and whether a key was
    minted. --clicks/--days on an existing demo without --reset is a conflict, not ignored."""
    from services.demo import load_demo

    if args.workspace is not None and (args.clicks is not None or args.days is not None):
        raise errors.invalid_argument(
            "workspace", "--workspace reuses the demo as it is: --clicks and --days need --reset"
        )
    settings = config.load()
    ch = ClickHouse.from_settings(settings)
    try:
        return await with_pool(
            lambda pool: load_demo(
                pool,
                ch,
                clicks=DEMO_CLICKS if args.clicks is None else args.clicks,
                days=DEMO_DAYS if args.days is None else args.days,
                reset=args.reset,
                mint_key=not args.no_key,
                reuse_only=args.workspace,
                refuse_existing=args.clicks is not None or args.days is not None,
            )
        )
    finally:
        ch.close()


async def cmd_workspace_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create a workspace in a new organization (or the one given)."""
    return await with_pool(
        lambda pool: tenants.create_workspace(
            pool,
            args.name,
            plan=args.plan,
            currency=args.currency,
            timezone=args.timezone,
            organization_id=args.organization,
        )
    )


async def cmd_workspace_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Workspaces, newest first."""
    return await with_pool(
        lambda pool: inventory.list_workspaces(
            pool,
            organization_id=args.organization,
            plan=args.plan,
            limit=args.limit,
            after=args.after,
        )
    )


async def cmd_workspace_show(args: argparse.Namespace) -> dict[str, Any]:
    """One workspace with its plan, features and counts."""
    return await with_pool(lambda pool: inventory.workspace(pool, args.id))


async def cmd_apikey_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create an API key; the key is printed once and only its hash is kept."""
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    return await with_pool(
        lambda pool: credentials.create_api_key(
            pool, args.workspace, scopes, name=args.name, actor=cli_actor()
        )
    )


async def cmd_apikey_revoke(args: argparse.Namespace) -> dict[str, Any]:
    """Revoke an API key by id (`revoked` is false if it was revoked already); not found if
    there is no such key."""

    async def revoke(pool: asyncpg.Pool) -> dict[str, Any]:
        await inventory.api_key(pool, args.id)
        revoked = await credentials.revoke_api_key(pool, args.id, actor=cli_actor())
        return {**await inventory.api_key(pool, args.id), "revoked": revoked}

    return await with_pool(revoke)


async def cmd_apikey_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    """API keys by id and prefix (never the key or its hash), newest first."""
    return await with_pool(
        lambda pool: inventory.list_api_keys(
            pool,
            workspace_id=args.workspace,
            include_inactive=args.all,
            limit=args.limit,
            after=args.after,
        )
    )


async def cmd_apikey_show(args: argparse.Namespace) -> dict[str, Any]:
    """One API key by id (never the key or its hash)."""
    return await with_pool(lambda pool: inventory.api_key(pool, args.id))


async def cmd_session_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create a session token for a user (created if new) who is a member of the workspace."""

    async def create(pool: asyncpg.Pool) -> dict[str, Any]:
        await checks.workspace(pool, args.workspace)
        return await credentials.create_session(
            pool, args.email, args.workspace, role=args.role, actor=cli_actor()
        )

    return await with_pool(create)


async def cmd_session_revoke(args: argparse.Namespace) -> dict[str, Any]:
    """Revoke a session by id; not found if there is no such session."""

    async def revoke(pool: asyncpg.Pool) -> dict[str, Any]:
        if await pool.fetchval("SELECT 1 FROM sessions WHERE id = $1", args.id) is None:
            raise errors.not_found(f"session {args.id}")
        revoked = await credentials.revoke_session(pool, args.id, actor=cli_actor())
        return {"id": args.id, "revoked": revoked}

    return await with_pool(revoke)


async def cmd_workspace_plan(args: argparse.Namespace) -> dict[str, Any]:
    """Change a workspace's plan and/or the features it has beyond the plan's."""
    if args.plan is None and args.features is None:
        raise errors.invalid_argument("plan", "give --plan and/or --features")

    async def change(pool: asyncpg.Pool) -> dict[str, Any]:
        await checks.workspace(pool, args.workspace)
        if args.plan is not None:
            await checks.plan(pool, args.plan)
        features = None if args.features is None else args.features.split(",")
        if features is not None:
            await checks.features(pool, features)
        result: dict[str, Any] = {"id": args.workspace}
        if args.plan is not None:
            result |= await tenants.set_plan(pool, args.workspace, args.plan, actor=cli_actor())
        if features is not None:
            result |= await tenants.set_extra_features(
                pool, args.workspace, features, actor=cli_actor()
            )
        return result

    return await with_pool(change)


async def cmd_link_create(args: argparse.Namespace) -> dict[str, Any]:
    """Create a link, creating its campaign, folder and tags by name when needed."""
    checks.slug(args.slug)
    checks.domain(args.domain)
    checks.url(args.url)

    async def create(pool: asyncpg.Pool) -> dict[str, Any]:
        await checks.workspace(pool, args.workspace)
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

    return await with_pool(create)


async def cmd_link_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Links, newest first."""
    return await with_pool(
        lambda pool: inventory.list_links(
            pool,
            workspace_id=args.workspace,
            domain=args.domain,
            limit=args.limit,
            after=args.after,
        )
    )


async def cmd_link_show(args: argparse.Namespace) -> dict[str, Any]:
    """One link with its campaign, folder, tags and number of rules."""
    return await with_pool(lambda pool: inventory.link(pool, args.id))


def _show(group: Any, noun: str, handler: Any) -> None:
    p = group.add_parser("show", help=f"show one {noun}")
    p.add_argument("id", type=int, metavar="ID")
    p.set_defaults(handler=handler)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the administrative sub-commands."""
    p = sub.add_parser("migrate", help="create databases and apply migrations")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser(
        "demo",
        help="load the demo workspace (or reuse it) and print a new API key",
        description="Without options: reuse the demo workspace if there is one, else load it. "
        "--clicks/--days apply to a new load only: on an existing demo they need --reset.",
    )
    p.add_argument("--clicks", type=int, help=f"clicks to generate (default {DEMO_CLICKS:,})")
    p.add_argument("--days", type=int, help=f"days of history (default {DEMO_DAYS})")
    p.add_argument("--reset", action="store_true", help="replace the demo with a new load")
    p.add_argument(
        "--workspace", type=int, help="reuse this demo workspace (not found if it is not the demo)"
    )
    p.add_argument("--no-key", action="store_true", help="do not mint an API key")
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
    p = ws.add_parser("list", help="list workspaces, newest first")
    p.add_argument("--organization", type=int)
    p.add_argument("--plan")
    add_page_options(p)
    p.set_defaults(handler=cmd_workspace_list)
    _show(ws, "workspace", cmd_workspace_show)

    keys = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    p = keys.add_parser("create", help="create an API key")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--scopes", default="analytics:read", help="comma-separated scopes")
    p.add_argument("--name", default="")
    p.set_defaults(handler=cmd_apikey_create)
    p = keys.add_parser("revoke", help="revoke an API key")
    p.add_argument("--id", type=int, required=True)
    p.set_defaults(handler=cmd_apikey_revoke)
    p = keys.add_parser("list", help="list API keys (id, prefix, scopes; never the key)")
    p.add_argument("--workspace", type=int)
    p.add_argument("--all", action="store_true", help="include revoked and expired keys")
    add_page_options(p)
    p.set_defaults(handler=cmd_apikey_list)
    _show(keys, "API key (never the key itself)", cmd_apikey_show)

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
    p = lk.add_parser("list", help="list links, newest first")
    p.add_argument("--workspace", type=int)
    p.add_argument("--domain")
    add_page_options(p)
    p.set_defaults(handler=cmd_link_list)
    _show(lk, "link", cmd_link_show)

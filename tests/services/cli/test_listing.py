"""`list` and `show` of each kind: JSON on stdout, newest first, paged, never a secret."""

from __future__ import annotations

import orjson

from services.auth.tokens import token_hash
from tests.services.cli.conftest import Cli

KEY_FIELDS = {
    "id", "workspace_id", "name", "prefix", "scopes", "created_at", "expires_at",
    "last_used_at", "revoked_at", "active",
}  # fmt: skip


def _ids(rows: list[dict[str, object]]) -> list[object]:
    return [r["id"] for r in rows]


def test_workspaces_newest_first_paged_and_filtered(cli: Cli) -> None:
    first = cli("workspace", "create", "--name", "Paged", "--plan", "enterprise").json
    org = str(first["organization_id"])
    made = [first["id"]] + [
        cli("workspace", "create", "--name", f"Paged {i}", "--organization", org).json["id"]
        for i in range(3)
    ]
    listed = cli("workspace", "list", "--organization", org).json
    assert _ids(listed) == made[::-1]
    page = cli("workspace", "list", "--organization", org, "--limit", "2").json
    rest = cli("workspace", "list", "--organization", org, "--after", str(page[-1]["id"])).json
    assert _ids(page) + _ids(rest) == made[::-1]
    assert _ids(cli("workspace", "list", "--plan", "enterprise", "--limit", "1").json) == [
        first["id"]
    ]
    shown = cli("workspace", "show", str(first["id"])).json
    assert shown["name"] == "Paged" and shown["plan"] == "enterprise"
    assert shown["default_currency"] == "USD" and shown["links"] == 0


def test_api_keys_never_show_the_key_or_its_hash(cli: Cli) -> None:
    workspace = str(cli.workspace())
    kept = cli("apikey", "create", "--workspace", workspace, "--name", "ci").json
    gone = cli("apikey", "create", "--workspace", workspace, "--scopes", "events:write").json
    assert cli("apikey", "revoke", "--id", str(gone["id"])).json["revoked"]
    secrets = [
        kept["key"],
        gone["key"],
        token_hash(kept["key"]).hex(),
        token_hash(gone["key"]).hex(),
    ]
    outputs = {
        "active": cli("apikey", "list", "--workspace", workspace),
        "all": cli("apikey", "list", "--workspace", workspace, "--all"),
        "show": cli("apikey", "show", str(kept["id"])),
        "show revoked": cli("apikey", "show", str(gone["id"])),
        "everyone's": cli("apikey", "list", "--all"),
    }
    for name, done in outputs.items():
        assert done.status == 0, name
        assert not [s for s in secrets if s in done.out], name
    active, every = outputs["active"].json, outputs["all"].json
    assert _ids(active) == [kept["id"]] and _ids(every) == [gone["id"], kept["id"]]
    assert all(set(row) == KEY_FIELDS for row in every)
    shown = outputs["show"].json
    assert shown == active[0]
    assert shown["prefix"] == kept["prefix"] and kept["key"].startswith(shown["prefix"])
    assert shown["scopes"] == ["analytics:read"] and shown["name"] == "ci"
    assert shown["active"] is True and shown["revoked_at"] is None and shown["last_used_at"] is None
    revoked = outputs["show revoked"].json
    assert (
        revoked["active"] is False
        and revoked["revoked_at"]
        and revoked["scopes"] == ["events:write"]
    )


def test_links_with_their_groups(cli: Cli) -> None:
    workspace = str(cli.workspace())
    made = [
        cli(
            "link", "create", "--workspace", workspace, "--slug", f"l{workspace}-{i}",
            "--url", f"https://example.com/{i}", "--campaign", "Spring", "--folder", "Social",
            "--tags", "b,a",
        ).json["id"]
        for i in range(3)
    ]  # fmt: skip
    listed = cli("link", "list", "--workspace", workspace).json
    assert _ids(listed) == made[::-1]
    assert cli("link", "list", "--workspace", workspace, "--domain", "other.example").json == []
    page = cli("link", "list", "--workspace", workspace, "--limit", "1", "--after", str(made[2]))
    assert _ids(page.json) == [made[1]]
    shown = cli("link", "show", str(made[0])).json
    assert (
        shown["slug"] == f"l{workspace}-0" and shown["destination_url"] == "https://example.com/0"
    )
    assert (shown["campaign"], shown["folder"], shown["tags"]) == ("Spring", "Social", ["a", "b"])
    assert shown["rules"] == 0 and shown["domain"] == "lp.link"


def test_embed_tokens_never_show_the_token(cli: Cli) -> None:
    workspace = str(cli.workspace())
    made = [cli("embed", "create", "--workspace", workspace).json for _ in range(3)]
    assert cli("embed", "revoke", "--id", str(made[0]["id"])).json["revoked_at"]
    listing = cli("embed", "list", "--workspace", workspace, "--all")
    shown = cli("embed", "show", str(made[1]["id"]))
    for done in (listing, shown):
        assert not [m for m in made if m["token"] in done.out]
        assert "token" not in orjson.loads(done.out) and "embed_path" not in done.out
    assert _ids(listing.json) == [m["id"] for m in made[::-1]]
    assert _ids(cli("embed", "list", "--workspace", workspace).json) == [
        made[2]["id"],
        made[1]["id"],
    ]
    after = cli("embed", "list", "--workspace", workspace, "--all", "--after", str(made[2]["id"]))
    assert _ids(after.json) == [made[1]["id"], made[0]["id"]]
    assert shown.json["workspace_id"] == int(workspace) and shown.json["revoked_at"] is None


def _job_rows(cli: Cli, workspace: int) -> tuple[list[str], list[str]]:
    exports, batches = [], []
    for i in range(3):
        exports.append(f"exp_cli{workspace}x{i}")
        cli.sql(
            "INSERT INTO export_jobs (id, workspace_id, actor, request_key, dataset, format,"
            " columns, spec, status, created_at) VALUES ($1, $2, 'api_key:1', $1, 'clicks', 'csv',"
            " '{timestamp,link_id}', '{\"days\": 7}', $3, now() + make_interval(secs => $4))",
            exports[-1], workspace, "succeeded" if i else "failed", i,
        )  # fmt: skip
        batches.append(f"bat_cli{workspace}x{i}")
        cli.sql(
            "INSERT INTO batch_jobs (id, workspace_id, actor, request_key, principal, items,"
            " results, created_at) VALUES ($1, $2, 'api_key:1', $1, '{\"scopes\": []}',"
            " '[{\"id\": \"a\", \"route\": \"/x\", \"params\": {}}]', '[{\"id\": \"a\"}]',"
            " now() + make_interval(secs => $3))",
            batches[-1], workspace, i,
        )  # fmt: skip
    return exports, batches


def test_exports_and_batches(cli: Cli) -> None:
    workspace = cli.workspace()
    exports, batches = _job_rows(cli, workspace)
    ws = str(workspace)
    listed = cli("export", "list", "--workspace", ws).json
    assert _ids(listed) == exports[::-1]
    assert listed[0]["status"] == "succeeded" and "spec" not in listed[0]
    assert _ids(cli("export", "list", "--workspace", ws, "--status", "failed").json) == exports[:1]
    page = cli("export", "list", "--workspace", ws, "--limit", "1", "--after", exports[2]).json
    assert _ids(page) == [exports[1]]
    shown = cli("export", "show", exports[0]).json
    assert shown["spec"] == {"days": 7} and shown["columns"] == ["timestamp", "link_id"]
    assert shown["dataset"] == "clicks" and shown["status"] == "failed"
    listed = cli("batch", "list", "--workspace", ws).json
    assert _ids(listed) == batches[::-1] and listed[0]["items"] == 1
    assert "principal" not in listed[0]
    shown = cli("batch", "show", batches[1]).json
    assert shown["items"] == [{"id": "a", "route": "/x", "params": {}}]
    assert shown["results"] == [{"id": "a"}] and "principal" not in shown
    assert cli("batch", "list", "--status", "running", "--workspace", ws).json == []

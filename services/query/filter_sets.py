"""Conditions of the filter tree on link, campaign, folder, tag and rule, resolved in PostgreSQL
to the ids the events carry (links; rules for rule)."""

from __future__ import annotations

import asyncpg

from services.query.filter_tree import Condition, Node, conditions, needs_ids

# dimension -> (SQL of (id the events carry, the entity's id, the text matched), over $1 = the
# workspace). Links in no campaign or folder, or with no tag, have no row.
_ENTITIES = {
    "link": "SELECT l.id, l.id, l.slug FROM links l WHERE l.workspace_id = $1",
    "campaign": "SELECT l.id, c.id, c.name FROM links l JOIN campaigns c ON c.id = l.campaign_id"
    " WHERE l.workspace_id = $1",
    "folder": "SELECT l.id, f.id, f.name FROM links l JOIN folders f ON f.id = l.folder_id"
    " WHERE l.workspace_id = $1",
    "tag": "SELECT lt.link_id, t.id, t.name FROM link_tags lt JOIN tags t ON t.id = lt.tag_id"
    " WHERE lt.workspace_id = $1",
    "rule": "SELECT r.id, r.id, r.name FROM link_rules r WHERE r.workspace_id = $1",
}
_BY_ID = " AND {entity} = ANY($2::bigint[])"
_BY_TEXT = {
    "contains": " AND EXISTS (SELECT 1 FROM unnest($2::text[]) v WHERE strpos({text}, v) > 0)",
    "starts_with": " AND EXISTS (SELECT 1 FROM unnest($2::text[]) v"
    " WHERE left({text}, length(v)) = v)",
}
# The entity id and text columns of each query above.
_COLUMNS = {
    "link": ("l.id", "l.slug"),
    "campaign": ("c.id", "c.name"),
    "folder": ("f.id", "f.name"),
    "tag": ("t.id", "t.name"),
    "rule": ("r.id", "r.name"),
}


async def matching_ids(pg: asyncpg.Pool, workspace_id: int, c: Condition) -> frozenset[int]:
    """The ids the events carry that c's values match (is_not: those its values name)."""
    entity, text = _COLUMNS[c.dimension]
    if c.op in ("is", "is_not"):
        sql = _ENTITIES[c.dimension] + _BY_ID.format(entity=entity)
        rows = await pg.fetch(sql, workspace_id, list(c.ids()))
    else:
        sql = _ENTITIES[c.dimension] + _BY_TEXT[c.op].format(text=text)
        rows = await pg.fetch(sql, workspace_id, list(c.values))
    return frozenset(int(r[0]) for r in rows)


async def resolve(pg: asyncpg.Pool, workspace_id: int, tree: Node) -> dict[str, frozenset[int]]:
    """Each id condition's path -> the ids it matches, for filter_tree.compile_tree."""
    return {
        c.path: await matching_ids(pg, workspace_id, c) for c in conditions(tree) if needs_ids(c)
    }

"""google.api.http path templates: parsing, Starlette and OpenAPI forms, match order."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class PathVariable:
    """One `{field.path}` of a template and the Starlette parameter that captures it."""

    field_path: str
    param: str
    multi_segment: bool


@dataclass(frozen=True)
class PathTemplate:
    """A parsed HttpRule path such as `/api/analytics/{link_id}/summary`."""

    template: str
    variables: tuple[PathVariable, ...]

    @property
    def segments(self) -> tuple[str, ...]:
        """The template split on '/', without the leading empty segment."""
        return tuple(self.template.lstrip("/").split("/"))


def parse_template(template: str) -> PathTemplate:
    """Parse an HttpRule path template; raise ValueError for forms the gateway cannot serve."""
    if not template.startswith("/"):
        raise ValueError(f"path template {template!r} must start with '/'")
    variables: list[PathVariable] = []
    for match in _VARIABLE.finditer(template):
        field_path, pattern = match.group(1), match.group(2)
        if pattern not in (None, "*", "**"):
            raise ValueError(f"path template {template!r}: pattern {pattern!r} is not supported")
        variables.append(
            PathVariable(
                field_path=field_path,
                param=field_path.replace(".", "__"),
                multi_segment=pattern == "**",
            )
        )
    leftover = _VARIABLE.sub("", template)
    if "{" in leftover or "}" in leftover:
        raise ValueError(f"path template {template!r} has a malformed variable")
    names = [v.param for v in variables]
    if len(set(names)) != len(names):
        raise ValueError(f"path template {template!r} binds a field twice")
    return PathTemplate(template=template, variables=tuple(variables))


def starlette_path(template: PathTemplate, convertors: Mapping[str, str]) -> str:
    """The Starlette route path: `{param}` or `{param:convertor}` for each variable."""
    by_path = {v.field_path: v for v in template.variables}

    def replace(match: re.Match[str]) -> str:
        variable = by_path[match.group(1)]
        convertor = "path" if variable.multi_segment else convertors.get(variable.param)
        return f"{{{variable.param}:{convertor}}}" if convertor else f"{{{variable.param}}}"

    return _VARIABLE.sub(replace, template.template)


def openapi_path(template: PathTemplate) -> str:
    """The OpenAPI path: every variable as plain `{param}`."""
    by_path = {v.field_path: v for v in template.variables}
    return _VARIABLE.sub(lambda m: f"{{{by_path[m.group(1)].param}}}", template.template)


def match_order_key(template: PathTemplate) -> tuple[tuple[int, str], ...]:
    """Sort key putting literal segments before variable ones, position by position."""
    key: list[tuple[int, str]] = []
    for segment in template.segments:
        if "{" not in segment:
            key.append((0, segment))
        elif "=**}" in segment:
            key.append((2, ""))
        else:
            key.append((1, ""))
    return tuple(key)

"""The live gateway against its own /openapi.json: schemathesis, a bounded number of examples."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.auth.tokens import KNOWN_SCOPES
from services.contract.compiled import contract

# Positive examples per operation: 53 operations × 30 take ~15 s of requests on 2 cores.
EXAMPLES = int(os.environ.get("OPENAPI_CONFORMANCE_EXAMPLES", "30"))
# Answers match the documented schema, statuses and media types; no 5xx. Not checked: that every
# schema-valid request is accepted (cross-field rules such as hour buckets over a long range, or
# ids of another workspace's objects, answer documented 400s and 404s).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _excluded() -> dict[str, str]:
    """Operations schemathesis cannot exercise meaningfully, with the reason."""
    reasons: dict[str, str] = {}
    for route in contract().routes:
        key = f"{route.http_method} {route.openapi_path}"
        if route.is_websocket:
            reasons[key] = "a WebSocket: schemathesis speaks plain HTTP requests"
        elif route.is_download:
            reasons[key] = "a raw file download authenticated by a signed link, not JSON"
    return reasons


def _run_operation(
    operation: Any,
    base_url: str,
    headers: dict[str, str],
    statuses: Counter[str],
    link_id: int,
) -> list[str]:
    """Every distinct failure of a bounded run of operation's positive examples."""
    failures: dict[str, str] = {}
    # A link of the tenant's for {link_id}, so that link routes answer more than 404.
    names = {parameter.name for parameter in operation.path_parameters}
    fixed = {"link_id": link_id} if "link_id" in names else None

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(path_parameters=fixed))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        statuses[f"{operation.label} {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:
            for failure in getattr(exc, "exceptions", [exc]):
                text = str(failure).strip() or repr(failure)
                failures.setdefault(text.splitlines()[0], f"{text}\n{case.as_curl_command()}")

    run()
    return list(failures.values())


async def test_gateway_conforms_to_its_openapi_document(system, http, tenant) -> None:
    owner = await tenant(plan="enterprise", scopes=KNOWN_SCOPES)
    document = (await http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    excluded = _excluded()
    headers = {**owner.headers, "X-Workspace-Id": str(owner.workspace_id)}
    statuses: Counter[str] = Counter()

    def run_all() -> tuple[dict[str, list[str]], int]:
        found: dict[str, list[str]] = {}
        ran = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.label in excluded:
                continue
            ran += 1
            failures = _run_operation(
                operation, system.gateway_url, headers, statuses, owner.link_ids[0]
            )
            if failures:
                found[operation.label] = failures
        return found, ran

    started = time.monotonic()
    found, ran = await asyncio.to_thread(run_all)
    elapsed = time.monotonic() - started
    print("\n".join(f"{key}: {count}" for key, count in sorted(statuses.items())))
    print(f"schemathesis: {ran} operations × {EXAMPLES} examples in {elapsed:.1f}s")
    assert ran == len(contract().routes) - len(excluded)
    assert any(key.endswith(" 202") for key in statuses), "no 202 answer was exercised"
    report = "\n\n".join(
        f"{label}:\n" + "\n---\n".join(failures) for label, failures in sorted(found.items())
    )
    assert not found, f"{len(found)} operations disagree with /openapi.json:\n{report}"

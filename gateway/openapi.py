"""The OpenAPI 3.1 document of the gateway, generated from the route table and proto comments."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from google.protobuf.descriptor import Descriptor

from gateway.responses import ENVELOPE_STATUS_CODE
from gateway.schemas import REF_PREFIX, SchemaRegistry
from services import field_rules, protos
from services.contract.binding import FieldBinding, RequestBinder
from services.contract.fields import resolve_field_path
from services.contract.routes import Route

ERROR_STATUSES: dict[int, str] = {
    400: "Invalid argument: a malformed or out-of-range parameter or body field",
    401: "Missing, invalid or expired bearer token",
    403: "The token lacks the route's scope, or the plan lacks the route's feature",
    404: "Not found, or not in the caller's workspace",
    429: "Rate limit or quota exhausted",
    500: "Internal error",
    501: "Not implemented",
    503: "A backing service or store is unavailable",
    504: "A backing service did not answer in time",
}
_BODY_TOO_LARGE = "Request body larger than the gateway accepts"
# A typical `error` of each status, as the services word them.
_ERROR_EXAMPLES: dict[int, dict[str, str]] = {
    400: {
        "code": "invalid_argument",
        "message": "days must be between 1 and 3650",
        "field": "days",
    },
    401: {"code": "unauthorized", "message": "invalid or expired token"},
    403: {"code": "insufficient_scope", "message": "this route needs scope analytics:read"},
    404: {"code": "not_found", "message": "link 42 not found"},
    429: {
        "code": "rate_limited",
        "message": "rate limit of 60 requests per minute (free plan) exceeded; retry after 1 s",
    },
    503: {"code": "unavailable", "message": "Redis is unreachable"},
}

# The response headers of the rate limit (every answer of an authenticated route while the
# caller's plan has a limit; Retry-After on a refusal) and of request correlation.
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
_HEADERS: dict[str, dict[str, Any]] = {
    "X-RateLimit-Limit": {
        "description": "Requests per minute the caller's plan allows.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the caller's bucket after this one.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Reset": {
        "description": "Seconds until the bucket is full again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "Seconds to wait before the next request is allowed (on 429).",
        "schema": {"type": "integer", "minimum": 1},
    },
    "X-Request-Id": {
        "description": "The request's id: the caller's X-Request-Id when valid, else one made up.",
        "schema": {"type": "string"},
    },
}

_ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "Failure envelope.",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "The service's reason (google.rpc.ErrorInfo), else the "
                    "lower-case gRPC status name, e.g. invalid_argument.",
                },
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The request parameter at fault."},
            },
        },
    },
}
_STATUS_CODE_ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "Failure envelope of the status_code routes.",
    "required": ["success", "status_code", "message"],
    "properties": {
        "success": {"type": "boolean", "const": False},
        "status_code": {"type": "integer"},
        "message": {"type": "string"},
        "data": {"type": "null"},
    },
}
_WEBSOCKET_NOTE = (
    "WebSocket: open this path with an Upgrade request (GET). Each streamed message is sent as "
    "one JSON text frame. On failure one failure-envelope frame is sent and the socket is "
    "closed with code 4000 + the HTTP status (4401, 4403, 4501, ...). Browsers may pass the "
    "bearer token as the `token` query parameter instead of the Authorization header."
)


def _status_message(route: Route, status: protos.options_pb2.SuccessStatus) -> Descriptor:
    """The message a declared success status carries: its own, else the RPC's response."""
    if not status.message:
        return route.method.output_type
    return route.method.containing_service.file.pool.FindMessageTypeByName(status.message)


def _service_rank(service: str) -> tuple[int, str]:
    order = list(protos.SERVICES)
    return (order.index(service) if service in order else len(order), service)


def _summary(rpc: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", rpc).split()
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else rpc


# The first sentence of a comment: up to a full stop followed by a space or the end.
_FIRST_SENTENCE = re.compile(r"^(?P<first>.+?\.)(?:\s+(?P<rest>.*))?$", re.S)
_SUMMARY_CHARS = 120


def summary_and_description(rpc: str, comment: str) -> tuple[str, str]:
    """An operation's summary (the first sentence of its RPC's comment, else words of the RPC's
    name) and its description (the rest of the comment)."""
    text = " ".join(comment.split("\n")) if comment else ""
    match = _FIRST_SENTENCE.match(text)
    if match is None or len(match["first"]) > _SUMMARY_CHARS:
        return _summary(rpc), comment
    rest = comment[len(match["first"]) :].strip() if match["rest"] else ""
    # A summary is shown as plain text: no Markdown code marks.
    return match["first"].rstrip(".").replace("`", ""), rest


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _header_refs(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _error_response_name(status: int, status_code_envelope: bool) -> str:
    return f"{'StatusCodeError' if status_code_envelope else 'Error'}{status}"


class _DocumentBuilder:
    def __init__(self, binders: Mapping[str, RequestBinder], comments: Mapping[str, str]) -> None:
        self.binders = binders
        self.comments = comments
        self.schemas = SchemaRegistry(comments)
        self.used_error_responses: set[tuple[int, bool]] = set()

    def register(self, route: Route) -> None:
        """Register every schema route refers to (before any is named)."""
        proto_names = route.options.proto_field_names
        if not route.returns_http_body:
            self.schemas.use(route.method.output_type, proto_names)
        if route.body == "*":
            self.schemas.use(route.method.input_type, proto_names)
        elif route.body:
            leaf = resolve_field_path(route.method.input_type, route.body)[-1]
            if leaf.message_type is not None:
                self.schemas.use(leaf.message_type, proto_names)
            elif leaf.enum_type is not None:
                self.schemas.use_enum(leaf.enum_type)
        for binding in self._query_bindings(route):
            if binding.leaf.enum_type is not None:
                self.schemas.use_enum(binding.leaf.enum_type)
        for fields in route.path_fields.values():
            if fields[-1].enum_type is not None:
                self.schemas.use_enum(fields[-1].enum_type)
        for status in route.options.statuses:
            self.schemas.use(_status_message(route, status), proto_names)

    def _query_bindings(self, route: Route) -> list[FieldBinding]:
        """The route's query parameters that its RPC honours (the others are refused)."""
        return [
            b
            for b in self.binders[route.key].parameters
            if route.honoured is None or b.leaf.name in route.honoured
        ]

    def _query_parameter(self, binding: FieldBinding) -> dict[str, Any]:
        leaf = binding.leaf
        schema = self.schemas.single_schema(leaf)
        description = self.comments.get(leaf.full_name, "")
        if binding.proto_name != binding.name:
            alias = f"Also accepted as `{binding.proto_name}`."
            description = f"{description}\n\n{alias}" if description else alias
        required = field_rules.of(leaf).required and len(binding.fields) == 1
        parameter: dict[str, Any] = {"name": binding.name, "in": "query", "required": required}
        if leaf.is_repeated:
            parameter.update(style="form", explode=True)
            schema = {"type": "array", "items": schema}
        parameter["schema"] = schema
        if description:
            parameter["description"] = description
        return parameter

    def _parameters(self, route: Route) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = []
        for param, fields in route.path_fields.items():
            parameter: dict[str, Any] = {
                "name": param,
                "in": "path",
                "required": True,
                "schema": self.schemas.single_schema(fields[-1]),
            }
            description = self.comments.get(fields[-1].full_name)
            if description:
                parameter["description"] = description
            parameters.append(parameter)
        parameters.extend(self._query_parameter(b) for b in self._query_bindings(route))
        parameters.append({"$ref": "#/components/parameters/WorkspaceId"})
        return parameters

    def _request_body(self, route: Route) -> dict[str, Any] | None:
        proto_names = route.options.proto_field_names
        if route.body == "*":
            schema = self.schemas.ref(route.method.input_type, proto_names)
        elif route.body:
            leaf = resolve_field_path(route.method.input_type, route.body)[-1]
            schema = self.schemas.field_schema(leaf, proto_names)
        else:
            return None
        return {"required": route.body == "*", "content": _json(schema)}

    def _success(self, route: Route) -> dict[str, Any]:
        if route.returns_http_body:
            return {
                "description": "The raw body; its media type is chosen by the service.",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            }
        data = self.schemas.ref(route.method.output_type, route.options.proto_field_names)
        if route.is_websocket:
            return {
                "description": f"Switching Protocols. {_WEBSOCKET_NOTE}",
                "content": _json(data),
            }
        return {
            "description": "OK",
            "headers": self._success_headers(route),
            "content": _json(self._envelope(route, data)),
        }

    def _success_headers(self, route: Route) -> dict[str, Any]:
        if route.options.public:
            return _header_refs("X-Request-Id")
        return _header_refs(*RATE_LIMIT_HEADERS, "X-Request-Id")

    def _declared_success(
        self, route: Route, status: protos.options_pb2.SuccessStatus
    ) -> dict[str, Any]:
        """The response of a success status the route's options declare (202, ...)."""
        data = self.schemas.ref(_status_message(route, status), route.options.proto_field_names)
        description = status.description or HTTPStatus(status.code).phrase
        return {"description": description, "content": _json(self._envelope(route, data))}

    def _envelope(self, route: Route, data: dict[str, Any]) -> dict[str, Any]:
        envelope: dict[str, Any]
        if route.options.envelope == ENVELOPE_STATUS_CODE:
            envelope = {
                "allOf": [
                    {
                        "type": "object",
                        "required": ["success", "status_code", "message"],
                        "properties": {
                            "success": {"type": "boolean", "const": True},
                            "status_code": {"type": "integer", "examples": [200]},
                            "message": {"type": "string", "examples": [""]},
                        },
                    },
                    data,
                ]
            }
        else:
            envelope = {
                "type": "object",
                "required": ["success", "data"],
                "properties": {"success": {"type": "boolean", "const": True}, "data": data},
            }
        return envelope

    def _responses(self, route: Route) -> dict[str, Any]:
        status_code_envelope = route.options.envelope == ENVELOPE_STATUS_CODE
        responses: dict[str, Any] = {}
        if not route.options.no_ok:
            responses["101" if route.is_websocket else "200"] = self._success(route)
        for status in route.options.statuses:
            responses[str(status.code)] = self._declared_success(route, status)
        statuses = sorted({*ERROR_STATUSES, *([413] if route.body else [])})
        if route.is_websocket:
            statuses = sorted({*statuses, 426})
        for status in statuses:
            self.used_error_responses.add((status, status_code_envelope))
            name = _error_response_name(status, status_code_envelope)
            responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
        return responses

    def operation(self, route: Route) -> dict[str, Any]:
        """The OpenAPI operation of route."""
        options = route.options
        summary, details = summary_and_description(
            route.rpc, self.comments.get(route.method.full_name, "")
        )
        notes = [details]
        if route.is_websocket:
            notes.append(_WEBSOCKET_NOTE)
        if options.scope:
            notes.append(f"Requires scope `{options.scope}`.")
        if options.feature:
            notes.append(f"Requires the plan feature `{options.feature}`.")
        operation: dict[str, Any] = {
            "operationId": route.rpc,
            "tags": [route.service],
            "summary": summary,
        }
        description = "\n\n".join(n for n in notes if n)
        if description:
            operation["description"] = description
        operation["parameters"] = self._parameters(route)
        body = self._request_body(route)
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = self._responses(route)
        if options.public:
            operation["security"] = []
        extensions = {
            "x-grpc-method": route.grpc_path,
            "x-linkpulse-scope": options.scope or None,
            "x-linkpulse-feature": options.feature or None,
            "x-linkpulse-cacheable": options.cacheable or None,
            "x-websocket": route.is_websocket or None,
        }
        operation.update({k: v for k, v in extensions.items() if v is not None})
        return operation

    def error_responses(self) -> dict[str, Any]:
        """The error response components the operations referred to."""
        responses: dict[str, Any] = {}
        for status, status_code_envelope in sorted(self.used_error_responses):
            schema_name = "StatusCodeErrorEnvelope" if status_code_envelope else "ErrorEnvelope"
            description = ERROR_STATUSES.get(status) or (
                _BODY_TOO_LARGE if status == 413 else "Upgrade Required: open a WebSocket"
            )
            content = _json({"$ref": REF_PREFIX + schema_name})
            example = _ERROR_EXAMPLES.get(status)
            if example is not None:
                content["application/json"]["example"] = (
                    {"success": False, "status_code": status, "message": example["message"]}
                    | {"data": None}
                    if status_code_envelope
                    else {"success": False, "error": example}
                )
            headers = ("Retry-After", *RATE_LIMIT_HEADERS) if status == 429 else ()
            responses[_error_response_name(status, status_code_envelope)] = {
                "description": description,
                "headers": _header_refs(*headers, "X-Request-Id"),
                "content": content,
            }
        return responses


def build_openapi(
    routes: Sequence[Route],
    binders: Mapping[str, RequestBinder],
    comments: Mapping[str, str],
    *,
    title: str = "linkpulse API",
    version: str = "1.0.0",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of routes: paths, operations, schemas and error responses."""
    builder = _DocumentBuilder(binders, comments)
    for route in routes:
        builder.register(route)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, str] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.http_method.lower()] = builder.operation(
            route
        )
        tags.setdefault(route.service, comments.get(route.service_full_name, ""))
    schemas = builder.schemas.components()
    schemas["ErrorEnvelope"] = _ERROR_ENVELOPE
    schemas["StatusCodeErrorEnvelope"] = _STATUS_CODE_ERROR_ENVELOPE
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Click analytics over REST: every route maps onto one gRPC method of "
            "the linkpulse.v1 services. Successful responses are wrapped in "
            '`{"success": true, "data": ...}` unless stated otherwise.',
        },
        "tags": [
            {"name": name, **({"description": tags[name]} if tags[name] else {})}
            for name in sorted(tags, key=_service_rank)
        ],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": builder.error_responses(),
            "parameters": {
                "WorkspaceId": {
                    "name": "X-Workspace-Id",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "format": "int64"},
                    "description": "Workspace to act in (its id), for tokens that reach several.",
                }
            },
            "headers": _HEADERS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key or a session token, sent as"
                    " `Authorization: Bearer <token>`.",
                }
            },
        },
    }

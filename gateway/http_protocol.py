"""uvicorn's HTTP/1.1 protocols answering an unparseable request in the error envelope.

uvicorn writes the 400 of a request it cannot parse (a malformed request line, a raw 0xFF byte
in the URL, a broken header) itself, as plain text, before any ASGI app sees it. These
subclasses override only that response.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.http_errors import GatewayError
from gateway.responses import error_body

MALFORMED = GatewayError(
    400, "malformed_request", "the HTTP request could not be parsed (request line, URL or headers)"
)


def malformed_response(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The raw HTTP/1.1 400 of an unparseable request, with the envelope; closes the connection."""
    body = orjson.dumps(error_body(MALFORMED))
    lines = [b"HTTP/1.1 400 Bad Request"]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class EnvelopeH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, its parse-error 400 in the envelope."""

    def send_400_response(self, msg: str) -> None:
        """Answer the unparseable request in the envelope and close (msg goes to uvicorn's log)."""
        self.transport.write(malformed_response(self.server_state.default_headers))
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional: h11 then serves
    HTTP_PROTOCOL: type = EnvelopeH11Protocol
else:

    class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, its parse-error 400 in the envelope."""

        def send_400_response(self, msg: str) -> None:
            """Answer the unparseable request in the envelope and close."""
            self.transport.write(malformed_response(self.server_state.default_headers))
            self.transport.close()

    HTTP_PROTOCOL = EnvelopeHttpToolsProtocol

"""The WebSocket protocol `serve` runs: uvicorn's websockets-sansio protocol (its default),
without the handshake kept for the life of the connection.

uvicorn keeps the parsed upgrade request and the handshake response on the protocol once the
connection is open, though nothing reads them after the `websocket.accept` went out: about
5 KiB of header objects per idle subscriber (docs/performance.md, "Memory per WebSocket
subscriber"). The ASGI scope keeps its own copy of the request headers for the app.
"""

from __future__ import annotations

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol that lets go of the handshake once it is sent."""

    async def send(self, message: ASGISendEvent) -> None:
        """Send as uvicorn does; once the handshake is complete, drop its request and response."""
        await super().send(message)
        if self.handshake_complete and "request" in self.__dict__:
            # uvicorn reads them only until the handshake completes (handle_connect, send).
            del self.request
            del self.response

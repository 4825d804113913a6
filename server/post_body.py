"""A POST /graphql body, read and decoded once: for the hot operations' shortcut
(schema/fast_path.py), for the normal path after it, and for refusing a document over the
character cap (schema/documents.py) from the body the shortcut already decoded."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from schema.documents import too_long


async def read_body(receive: Receive) -> bytes:
    """The whole request body; ClientDisconnect when the client leaves first (as Starlette's
    `Request.body`)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


def replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read in front, for the normal path to read again."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def over_the_cap(payload: dict[str, Any], max_chars: int) -> bytes | None:
    """The normal path's answer to a POST whose document is over `max_chars`, None when it
    is within (or the normal path refuses the request otherwise).

    A 255 KB body decoded a second time, with the request, the context and Strawberry's
    view around the refusal, cost the event loop several times the refusal itself (issue
    17: 8 clients sending such bodies). What Strawberry refuses before the cap (`variables`
    or `extensions` that are not objects) still takes the normal path. (Strawberry's HTTP
    streaming transports, which would answer in their own format, are not served: the app
    subscribes over WebSocket only.)
    """
    query = payload.get("query")
    if not isinstance(query, str):
        return None
    refused = too_long(query, max_chars)
    if refused is None:
        return None
    if not isinstance(payload.get("variables"), dict | None) or not isinstance(
        payload.get("extensions"), dict | None
    ):
        return None
    # What Strawberry's view writes for the schema's refusal (process_result, encode_json).
    return orjson.dumps({"data": None, "errors": [refused.formatted]})

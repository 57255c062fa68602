"""What an MCP call result becomes inside the snippet.

Generated code wants values, not protocol envelopes: structured content is the value (the dict the
tool's `outputSchema` describes); text is a `str`; anything else (images, audio, resources) is a
small typed stand-in dict that says what it is, so code can branch on `["type"]` and the trajectory
stays readable. A result flagged `isError` is an error raised in the snippet, with the server's text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

INLINE_BYTES = 64 * 1024  # base64 data of images/audio/blobs kept inline up to this size


class McpValue(BaseModel):
    value: Any = None
    error: str | None = None  # the server's message when the result is an error


def convert(result: Any) -> McpValue:
    """A `CallToolResult` (read by attribute, so a version bump that keeps the fields still works)."""
    blocks = list(getattr(result, "content", None) or [])
    if getattr(result, "is_error", False):
        text = "\n".join(b.text for b in blocks if getattr(b, "type", "") == "text")
        return McpValue(error=text.strip() or "the tool reported an error and gave no message")
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return McpValue(value=structured)
    items = [block_value(b) for b in blocks]
    if not items:
        return McpValue(value=None)
    return McpValue(value=items[0] if len(items) == 1 else items)


def block_value(block: Any) -> Any:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return _binary(kind, getattr(block, "mime_type", None), getattr(block, "data", ""))
    if kind == "resource_link":
        return {
            "type": "resource_link",
            "uri": str(getattr(block, "uri", "")),
            "name": getattr(block, "name", None),
            "mime_type": getattr(block, "mime_type", None),
            "description": getattr(block, "description", None),
        }
    if kind == "resource":
        res = getattr(block, "resource", None)
        uri = str(getattr(res, "uri", ""))
        mime = getattr(res, "mime_type", None)
        text = getattr(res, "text", None)
        if text is not None:
            return {"type": "resource", "uri": uri, "mime_type": mime, "text": str(text)}
        return {"uri": uri, **_binary("resource", mime, getattr(res, "blob", "") or "")}
    dump = getattr(block, "model_dump", None)
    data = dump(mode="json") if callable(dump) else {"repr": repr(block)}
    return {"type": str(kind or "unknown"), "content": data}


def _binary(kind: str, mime: str | None, data: str) -> dict[str, Any]:
    size = len(data) * 3 // 4  # base64 -> bytes, near enough for a size hint
    out: dict[str, Any] = {"type": kind, "mime_type": mime, "size": size}
    if len(data) <= INLINE_BYTES:
        out["data_base64"] = data
    else:
        out["data_base64"] = None
        out["note"] = f"{size} bytes not passed into the sandbox (limit {INLINE_BYTES * 3 // 4})"
    return out

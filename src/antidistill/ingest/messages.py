"""Derive prompt fields from a chat ``messages`` array (OpenAI, Anthropic, Gemini, OTel GenAI).

Providers log the request body, not our columns; these rules say how a conversation becomes
``prompt`` (last user turn), ``system_prompt``, ``n_messages`` and ``has_image``.
"""

from __future__ import annotations

import json
from typing import Any

_SYSTEM_ROLES = frozenset({"system", "developer"})


def content_text(content: Any) -> str:
    """Text of one message content: a string, or text parts joined with newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return str(content)
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            kind = str(part.get("type", "text"))
            if kind in ("text", "input_text") or "type" not in part:
                for key in ("text", "content"):
                    val = part.get(key)
                    if isinstance(val, str):
                        texts.append(val)
                        break
    return "\n".join(texts)


def _has_image(content: Any) -> bool:
    if not isinstance(content, list | dict):
        return False
    parts = content if isinstance(content, list) else [content]
    for part in parts:
        if isinstance(part, dict):
            kind = str(part.get("type", ""))
            mime = str(part.get("mime_type", part.get("mimeType", "")))
            if ("image" in kind or "image_url" in part or "inline_data" in part
                    or mime.startswith("image/")):
                return True
    return False


def _parts(msg: dict[str, Any]) -> Any:
    """Message content under any of the common keys (content, parts)."""
    if "content" in msg:
        return msg["content"]
    return msg.get("parts")


def from_messages(messages: Any) -> dict[str, Any]:
    """Schema fields implied by a messages array (JSON text accepted); {} if it is unusable."""
    if isinstance(messages, str):
        stripped = messages.lstrip()
        if stripped[:1] in ("[", "{"):
            try:
                messages = json.loads(messages)
            except ValueError:
                return {"prompt": messages, "n_messages": 1}
        else:
            return {"prompt": messages, "n_messages": 1}
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        return {}
    msgs = [m for m in messages if isinstance(m, dict)]
    system = [content_text(_parts(m)) for m in msgs if str(m.get("role", "")) in _SYSTEM_ROLES]
    users = [m for m in msgs if str(m.get("role", "")) == "user"]
    last = users[-1] if users else (msgs[-1] if msgs else None)
    out: dict[str, Any] = {
        "n_messages": len(messages),
        "has_image": any(_has_image(_parts(m)) for m in msgs),
    }
    if last is not None:
        out["prompt"] = content_text(_parts(last))
    if system:
        out["system_prompt"] = "\n\n".join(system)
    return out


def n_tools(tools: Any) -> int | None:
    """Number of tool definitions (JSON text accepted); None when not a list."""
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except ValueError:
            return None
    return len(tools) if isinstance(tools, list) else None

"""Per-format extraction: a parsed source record -> loose schema fields (before normalisation).

Generic JSONL/CSV/Parquet use schema column names as they are (plus OpenAI-style ``messages`` /
``tools`` when ``prompt`` is absent); LiteLLM and OpenTelemetry GenAI have fixed, documented
field rules. Returning None means "not an exchange" (e.g. an HTTP span in an OTLP export): the
record is counted as skipped, not quarantined.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from antidistill import schema
from antidistill.ingest.messages import from_messages, n_tools

Extractor = Callable[[dict[str, Any]], dict[str, Any] | None]

_COLS = frozenset(schema.COLUMN_NAMES)


def generic(obj: dict[str, Any]) -> dict[str, Any]:
    """Columns named as in schema v1; ``messages``/``tools`` fill prompt fields left unset."""
    rec = {k: v for k, v in obj.items() if k in _COLS}
    if "messages" in obj and rec.get("prompt") is None:
        for k, v in from_messages(obj["messages"]).items():
            if rec.get(k) is None:
                rec[k] = v
    if "tools" in obj and rec.get("n_tools") is None:
        rec["n_tools"] = n_tools(obj["tools"])
    return rec


# --- LiteLLM StandardLoggingPayload --------------------------------------------------------

def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def litellm(obj: dict[str, Any]) -> dict[str, Any]:
    """Fields of a LiteLLM ``StandardLoggingPayload`` (optionally wrapped in
    ``{"standard_logging_object": ...}``); rules in docs/formats.md."""
    p = obj.get("standard_logging_object")
    p = p if isinstance(p, dict) else obj
    meta = _dict(p.get("metadata"))
    params = _dict(p.get("model_parameters"))
    user, team = meta.get("user_api_key_user_id"), meta.get("user_api_key_team_id")
    key_hash = meta.get("user_api_key_hash")
    if user:
        account, org = user, meta.get("user_api_key_org_id") or team
    elif team:
        account, org = f"team:{team}", meta.get("user_api_key_org_id")
    elif key_hash:
        account, org = f"key:{key_hash}", meta.get("user_api_key_org_id")
    else:
        account, org = None, meta.get("user_api_key_org_id")
    rec: dict[str, Any] = {
        "request_id": p.get("id"),
        "ts": p.get("startTime"),
        "account_id": account,
        "org_id": org,
        "ip": p.get("requester_ip_address") or meta.get("requester_ip_address"),
        "model": p.get("model") or p.get("model_group"),
        "input_tokens": p.get("prompt_tokens"),
        "output_tokens": p.get("completion_tokens"),
        "max_tokens": params.get("max_tokens", params.get("max_completion_tokens")),
        "temperature": params.get("temperature"),
        "n_tools": n_tools(params.get("tools")) if "tools" in params else None,
        "status": _litellm_status(p),
    }
    response = _dict(p.get("response"))
    details = _dict(_dict(response.get("usage")).get("completion_tokens_details"))
    rec["reasoning_tokens"] = details.get("reasoning_tokens")
    msgs = p.get("messages")
    rec["prompt"] = None
    if msgs is not None:
        rec.update(from_messages(msgs))
    return rec


def _litellm_status(p: dict[str, Any]) -> Any:
    status = p.get("status")
    fields = _dict(p.get("status_fields"))
    if fields.get("guardrail_status") == "guardrail_intervened":
        return "blocked"
    if status == "success":
        for choice in _dict(p.get("response")).get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason") == "content_filter":
                return "blocked"
            if _dict(choice.get("message")).get("refusal"):
                return "refused"
    return status


# --- OpenTelemetry GenAI spans -------------------------------------------------------------

#: gen_ai.operation.name values that are one model exchange (others: tools, agents, embeddings).
EXCHANGE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})


def _first(a: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = a.get(k)
        if v is not None:
            return v
    return None


def otel(flat: dict[str, Any]) -> dict[str, Any] | None:
    """Fields of one OTLP span under the GenAI semantic conventions (current and older names)."""
    a: dict[str, Any] = flat.get("attributes") or {}
    res: dict[str, Any] = flat.get("resource") or {}
    span: dict[str, Any] = flat.get("span") or {}
    op = a.get("gen_ai.operation.name")
    if op is not None and op not in EXCHANGE_OPERATIONS:
        return None
    if op is None and not any(k.startswith("gen_ai.") for k in a):
        return None
    trace, span_id = span.get("traceId"), span.get("spanId")
    rid = a.get("gen_ai.response.id") or (f"span:{trace}:{span_id}" if trace and span_id else None)
    rec: dict[str, Any] = {
        "request_id": rid,
        "ts": span.get("startTimeUnixNano"),
        "account_id": _first(a, "user.id", "enduser.id") or _first(res, "user.id", "enduser.id"),
        "ip": _first(a, "client.address"),
        "client_fp": _first(a, "user_agent.original"),
        "model": _first(a, "gen_ai.request.model", "gen_ai.response.model"),
        "input_tokens": _first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
        "output_tokens": _first(a, "gen_ai.usage.output_tokens",
                                "gen_ai.usage.completion_tokens"),
        "reasoning_tokens": _first(a, "gen_ai.usage.reasoning_tokens",
                                   "gen_ai.usage.output_tokens.reasoning"),
        "max_tokens": a.get("gen_ai.request.max_tokens"),
        "temperature": a.get("gen_ai.request.temperature"),
        "status": _otel_status(span, a),
    }
    rec.update(_otel_prompt(a, flat.get("events") or []))
    tools = a.get("gen_ai.tool.definitions")
    if tools is not None:
        rec["n_tools"] = n_tools(tools)
    else:
        indexed = {k.split(".")[3] for k in a if k.startswith("llm.request.functions.")}
        rec["n_tools"] = len(indexed) if indexed else None
    return rec


def _otel_status(span: dict[str, Any], a: dict[str, Any]) -> str:
    code = _dict(span.get("status")).get("code")
    if code in (2, "2", "STATUS_CODE_ERROR") or a.get("error.type") is not None:
        return "error"
    reasons = a.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, str):
        reasons = [reasons]
    if isinstance(reasons, list) and "content_filter" in reasons:
        return "blocked"
    return "ok"


def _otel_prompt(a: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Prompt fields from, in order: gen_ai.input.messages, message events, gen_ai.prompt,
    indexed gen_ai.prompt.N.* attributes; system from gen_ai.system_instructions if given."""
    out: dict[str, Any] = {}
    if a.get("gen_ai.input.messages") is not None:
        out = from_messages(a["gen_ai.input.messages"])
    else:
        msgs: list[dict[str, Any]] = []
        for e in events:
            name = str(e.get("name") or "")
            ea = e.get("attributes") or {}
            body = e.get("body")
            if name == "gen_ai.content.prompt" and ea.get("gen_ai.prompt") is not None:
                out = from_messages(ea["gen_ai.prompt"])
                break
            if name.startswith("gen_ai.") and name.endswith(".message"):
                role = name[len("gen_ai."):-len(".message")]
                content = body.get("content") if isinstance(body, dict) else body
                if content is None:
                    content = ea.get("content")
                if role in ("user", "system", "assistant", "tool"):
                    msgs.append({"role": role, "content": content})
        if not out and msgs:
            out = from_messages(msgs)
        elif not out and a.get("gen_ai.prompt") is not None:
            out = from_messages(a["gen_ai.prompt"])
        elif not out:
            idx: dict[int, dict[str, Any]] = {}
            for k, v in a.items():
                parts = k.split(".")
                if len(parts) == 4 and parts[:2] == ["gen_ai", "prompt"] and parts[2].isdigit():
                    idx.setdefault(int(parts[2]), {})[parts[3]] = v
            if idx:
                out = from_messages([idx[i] for i in sorted(idx)])
    system = a.get("gen_ai.system_instructions")
    if system is not None:
        if isinstance(system, str):
            with contextlib.suppress(ValueError):
                system = json.loads(system)
        from antidistill.ingest.messages import content_text

        out["system_prompt"] = content_text(system)
    return out


EXTRACTORS: dict[str, Extractor] = {
    "jsonl": generic, "csv": generic, "parquet": generic, "litellm": litellm, "otel": otel,
}

"""A LiteLLM ``CustomGuardrail``: antidistill's guard + policy inside a LiteLLM proxy.

Pre-call: decide (deny -> HTTP error; degrade -> cap ``max_tokens`` and ask the model server for
the watermark via ``extra_headers``). Post-call (whole and streamed responses): withhold or
summarise ``reasoning_content`` and ``<think>`` spans and apply canary marks, for degraded
accounts only. Needs the optional extra ``antidistill[litellm]``; importing this module without
LiteLLM raises :class:`DependencyError`.

LiteLLM ``config.yaml``::

    guardrails:
      - guardrail_name: antidistill
        litellm_params:
          guardrail: antidistill.gateway.litellm_guardrail.AntidistillGuardrail
          mode: [pre_call, post_call]
          default_on: true
          policy: /etc/antidistill/policy.yaml
          risk: /var/lib/antidistill/accounts.parquet
          account_field: end_user_id   # without a database: the request's ``user`` field

Account identity: ``account_field`` names the ``UserAPIKeyAuth`` field that is the account. The
default tries ``user_id``, ``team_id``, ``end_user_id``, ``org_id``, ``key_alias``, ``token`` in
turn, skipping LiteLLM's placeholders for the master key (``default_user_id``,
``litellm_proxy_master_key``): otherwise every master-key request would be one shared account.
"""

from __future__ import annotations

import os
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from antidistill.errors import DependencyError

try:
    from fastapi import HTTPException
    from litellm.integrations.custom_guardrail import CustomGuardrail
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise DependencyError(
        "the LiteLLM guardrail needs LiteLLM: pip install 'antidistill[litellm]'"
    ) from exc

from antidistill.gateway.app import GatewayConfig, build_enforcer, parse_chat
from antidistill.gateway.canary import StreamingCanary, apply_canary
from antidistill.gateway.enforcer import ClientInfo, Enforcer, Verdict
from antidistill.gateway.guardrail_api import PROXY_PLACEHOLDERS
from antidistill.gateway.keys_file import KeysFile
from antidistill.gateway.reasoning import REASONING_FIELDS, StreamReasoning, protect_message
from antidistill.keys import watermark_headers


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _set(obj: Any, name: str, value: Any) -> None:
    if isinstance(obj, dict):
        obj[name] = value
    else:
        setattr(obj, name, value)


class AntidistillGuardrail(CustomGuardrail):
    """Configured from ``litellm_params`` (paths as in ``antidistill gateway``; ``logs`` = the
    exchange logs behind the risk table, like ``--log``)."""

    def __init__(
        self,
        policy: str | None = None,
        risk: str | None = None,
        clusters: str | None = None,
        logs: list[str] | str | None = None,
        keys: str | None = None,
        log_dir: str | None = None,
        state: str | None = None,
        secret: str | None = None,
        dry_run: bool = False,
        account_field: str | None = None,
        enforcer: Enforcer | None = None,
        **kwargs: Any,
    ):
        cfg = GatewayConfig(
            upstream="",
            risk=Path(risk) if risk else None,
            clusters=Path(clusters) if clusters else None,
            index_logs=[Path(x) for x in ([logs] if isinstance(logs, str) else logs or [])],
            policy=Path(policy) if policy else None,
            keys=Path(keys) if keys else None,
            log_dir=Path(log_dir) if log_dir else None,
            state=state,
            secret=secret or os.environ.get("ANTIDISTILL_SECRET"),
            dry_run=dry_run,
        )
        self.enforcer = enforcer or build_enforcer(cfg)
        self.keys = KeysFile.load(cfg.keys) if cfg.keys else KeysFile({}, {})
        self.account_field = account_field
        self._verdicts: OrderedDict[str, Verdict] = OrderedDict()
        super().__init__(**kwargs)

    # -- helpers ----------------------------------------------------------------------------
    def _account_id(self, user_api_key_dict: Any) -> str | None:
        if self.account_field:
            v = _get(user_api_key_dict, self.account_field)
            return str(v) if v else None
        fields = ("user_id", "team_id", "end_user_id", "org_id", "key_alias", "token")
        return next(
            (
                str(v)
                for f in fields
                if (v := _get(user_api_key_dict, f)) and str(v) not in PROXY_PLACEHOLDERS
            ),
            None,
        )

    def _remember(self, data: dict[str, Any], v: Verdict) -> None:
        key = str(data.get("litellm_call_id") or id(data))
        data.setdefault("metadata", {})["antidistill_request_id"] = v.request_id
        self._verdicts[key] = v
        if len(self._verdicts) > 100_000:
            self._verdicts.popitem(last=False)

    def _recall(self, data: dict[str, Any]) -> Verdict | None:
        return self._verdicts.get(str(data.get("litellm_call_id") or id(data)))

    # -- hooks ------------------------------------------------------------------------------
    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        account_id = self._account_id(user_api_key_dict)
        if account_id is None:
            return data
        try:
            parsed = parse_chat(data) if data.get("messages") else None
        except ValueError:
            parsed = None
        prompt = parsed.prompt if parsed else str(data.get("prompt") or "")
        system = parsed.system_prompt if parsed else None
        request_id = str(data.get("litellm_call_id") or f"llm_{uuid.uuid4().hex}")
        v = self.enforcer.assess(
            self.keys.account(account_id),
            request_id,
            prompt,
            system,
            data.get("model"),
            ClientInfo(),
        )
        if v.denied is not None:
            status, code, message = v.denied
            raise HTTPException(status_code=status, detail={"error": message, "code": code})
        deg = v.degrade
        if deg is not None:
            if deg.max_tokens is not None:
                key = "max_completion_tokens" if "max_completion_tokens" in data else "max_tokens"
                asked = data.get(key)
                data[key] = deg.max_tokens if asked is None else min(int(asked), deg.max_tokens)
            if v.watermark_key_id:
                data["extra_headers"] = {
                    **(data.get("extra_headers") or {}),
                    **watermark_headers(v.account.account_id, v.watermark_key_id),
                }
            self._remember(data, v)
        return data

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        v = self._recall(data)
        deg = v.degrade if v is not None else None
        if v is None or deg is None:
            return response
        for choice in _get(response, "choices") or []:
            msg = _get(choice, "message")
            if msg is None:
                continue
            plain = {f: _get(msg, f) for f in ("content", *REASONING_FIELDS)}
            protect_message(plain, deg.reasoning, deg.summary_chars)
            if v.canary_key is not None and isinstance(plain.get("content"), str):
                plain["content"], _ = apply_canary(plain["content"], v.canary_key)
            for f in ("content", *REASONING_FIELDS):
                if _get(msg, f) is not None or plain.get(f) is not None:
                    _set(msg, f, plain.get(f))
            psf = _get(msg, "provider_specific_fields")
            if isinstance(psf, dict):
                for f in REASONING_FIELDS:
                    psf.pop(f, None)
        return response

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: Any, request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        v = self._recall(request_data)
        deg = v.degrade if v is not None else None
        if v is None or deg is None:
            async for item in response:
                yield item
            return
        states: dict[int, tuple[StreamReasoning, StreamingCanary | None]] = {}
        async for chunk in response:
            for choice in _get(chunk, "choices") or []:
                idx = int(_get(choice, "index") or 0)
                if idx not in states:
                    states[idx] = (
                        StreamReasoning(deg.reasoning, deg.summary_chars),
                        StreamingCanary(v.canary_key) if v.canary_key else None,
                    )
                reasoning, canary = states[idx]
                delta = _get(choice, "delta")
                if delta is None:
                    continue
                for f in REASONING_FIELDS:
                    val = _get(delta, f)
                    if isinstance(val, str) and val:
                        kept = reasoning.reasoning_delta(val)
                        _set(delta, f, kept)
                text = _get(delta, "content")
                finishing = _get(choice, "finish_reason") is not None
                if (isinstance(text, str) and text) or finishing:
                    summary = reasoning.end_reasoning()
                    if summary:
                        _set(delta, "reasoning_content", summary)
                if isinstance(text, str) or finishing:
                    out = reasoning.content_delta(text or "")
                    if finishing:
                        out += reasoning.flush()
                    if canary is not None:
                        out = canary.feed(out) + (canary.flush() if finishing else "")
                    _set(delta, "content", out)
            yield chunk

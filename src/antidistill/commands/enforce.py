"""Enforcement commands: ``gateway``, ``guardrail-api``, ``policy check|decisions|action``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer


def _secret(secret_file: Path | None) -> str | None:
    if secret_file is not None:
        try:
            return secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            from antidistill.errors import ConfigError

            raise ConfigError(
                f"cannot read secret: {exc.strerror}", where=str(secret_file)
            ) from exc
    return os.environ.get("ANTIDISTILL_SECRET") or None


def register(app: typer.Typer) -> None:
    @app.command("gateway")
    def gateway(
        upstream: str = typer.Option(..., help="Base URL of the OpenAI-compatible model server."),
        risk: Path | None = typer.Option(None, help="accounts.parquet from `antidistill detect`."),
        clusters: Path | None = typer.Option(None, help="clusters.parquet (campaign ids)."),
        log: list[Path] = typer.Option(
            [],
            "--log",
            help="Exchange logs the risk table was "
            "computed from (indexes flagged clusters' templates and "
            "infrastructure). Repeatable.",
        ),
        policy: Path | None = typer.Option(None, help="Policy YAML (default: packaged policy)."),
        keys: Path | None = typer.Option(None, help="Keys file: API key -> account."),
        log_dir: Path | None = typer.Option(
            None,
            help="Where exchange logs (Parquet), the audit log and manual actions are written.",
        ),
        state: str | None = typer.Option(
            None, help="Guard state: memory (default), a SQLite path, or redis://host:port/db."
        ),
        secret_file: Path | None = typer.Option(
            None, help="Master secret for canary/watermark keys (default: env ANTIDISTILL_SECRET)."
        ),
        dry_run: bool = typer.Option(
            False, help="Decide and audit, but let every request through."
        ),
        trust_forwarded: bool = typer.Option(
            False,
            help="Take client IP/ASN from X-Forwarded-For"
            " / X-Antidistill-ASN (behind a trusted proxy).",
        ),
        http_client: str = typer.Option(
            "auto",
            help="Upstream client: httpx, aiohttp (several times less CPU per request), or "
            "httptools (least CPU: raw keep-alive HTTP/1.1 for non-streaming calls, aiohttp for "
            "the rest; both need antidistill[gateway-fast]); auto = httptools if installed, "
            "else httpx.",
        ),
        host: str = typer.Option("127.0.0.1"),
        port: int = typer.Option(8787),
        workers_log_level: str = typer.Option("warning", "--log-level"),
    ) -> None:
        """Run the OpenAI-compatible enforcement gateway in front of a model server.

        Admin API token: env ANTIDISTILL_ADMIN_TOKEN. Upstream API key: env
        ANTIDISTILL_UPSTREAM_KEY.
        """
        import uvicorn

        from antidistill.gateway.app import GatewayConfig, create_app, uvicorn_http

        cfg = GatewayConfig(
            upstream=upstream,
            risk=risk,
            clusters=clusters,
            index_logs=list(log),
            policy=policy,
            keys=keys,
            log_dir=log_dir,
            state=state,
            secret=_secret(secret_file),
            admin_token=os.environ.get("ANTIDISTILL_ADMIN_TOKEN") or None,
            upstream_key=os.environ.get("ANTIDISTILL_UPSTREAM_KEY") or None,
            dry_run=dry_run,
            trust_forwarded=trust_forwarded,
            http_client=http_client,
        )
        # No uvicorn proxy-header rewriting: --trust-forwarded alone decides whether
        # X-Forwarded-For is believed (and the middleware costs CPU on every request).
        uvicorn.run(
            create_app(cfg),
            host=host,
            port=port,
            http=uvicorn_http(),
            log_level=workers_log_level,
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )

    @app.command("guardrail-api")
    def guardrail_api(
        risk: Path | None = typer.Option(None, help="accounts.parquet from `antidistill detect`."),
        clusters: Path | None = typer.Option(None, help="clusters.parquet (campaign ids)."),
        log: list[Path] = typer.Option([], "--log", help="Exchange logs behind the risk table."),
        policy: Path | None = typer.Option(None, help="Policy YAML (default: packaged policy)."),
        keys: Path | None = typer.Option(None, help="Keys file (account metadata)."),
        log_dir: Path | None = typer.Option(None, help="Audit log and manual actions."),
        state: str | None = typer.Option(None, help="memory, a SQLite path, or redis://..."),
        secret_file: Path | None = typer.Option(
            None, help="Master secret (or ANTIDISTILL_SECRET)."
        ),
        dry_run: bool = typer.Option(False),
        host: str = typer.Option("127.0.0.1"),
        port: int = typer.Option(8788),
    ) -> None:
        """Serve LiteLLM's Generic Guardrail API (POST /beta/litellm_basic_guardrail_api).

        Bearer token for callers: env ANTIDISTILL_GUARDRAIL_TOKEN (optional).
        """
        import uvicorn

        from antidistill.gateway.app import GatewayConfig
        from antidistill.gateway.guardrail_api import create_guardrail_app

        cfg = GatewayConfig(
            upstream="",
            risk=risk,
            clusters=clusters,
            index_logs=list(log),
            policy=policy,
            keys=keys,
            log_dir=log_dir,
            state=state,
            secret=_secret(secret_file),
            dry_run=dry_run,
            admin_token=os.environ.get("ANTIDISTILL_ADMIN_TOKEN") or None,
        )
        uvicorn.run(
            create_guardrail_app(cfg, token=os.environ.get("ANTIDISTILL_GUARDRAIL_TOKEN")),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )

    policy_app = typer.Typer(
        help="Check policies, read decisions, apply/lift manual actions.", no_args_is_help=True
    )
    app.add_typer(policy_app, name="policy")

    @policy_app.command("check")
    def check(file: Path = typer.Argument(..., help="Policy YAML to validate.")) -> None:
        """Validate a policy file; print its rules in evaluation order."""
        from rich.console import Console
        from rich.table import Table

        from antidistill.policy import load_policy

        pol = load_policy(file)
        t = Table(
            title=f"{file}: {len(pol.rules)} rules, first match wins"
            + (" (DRY RUN)" if pol.dry_run else "")
        )
        for col in ("#", "rule", "priority", "when", "action", "line"):
            t.add_column(col)
        for i, r in enumerate(pol.rules, 1):
            when = (
                ", ".join(
                    f"{c.name} {c.op} "
                    f"{list(c.value) if isinstance(c.value, tuple | frozenset) else c.value}"
                    for c in r.conditions
                )
                or "(always)"
            )
            act = r.action.kind + (" [dry-run]" if r.dry_run else "")
            t.add_row(str(i), r.name, str(r.priority), when, act, str(r.line))
        t.add_row("", "default", "", "", pol.default_action.kind, "")
        Console().print(t)
        for tier in pol.tiers:
            Console().print(
                f"tier {tier.name}: types={list(tier.account_types) or 'any'} "
                f"pathways={list(tier.pathways) or 'any'} "
                f"requires {tier.required_verification} verification"
            )

    def _decisions(
        audit: Path | None, gateway: str | None, account: str | None, limit: int, as_json: bool
    ) -> None:
        from rich.console import Console
        from rich.table import Table

        from antidistill.errors import ConfigError
        from antidistill.policy import read_audit

        if gateway:
            recs = _admin_call(
                "GET",
                gateway,
                "/admin/decisions",
                params={"limit": limit, **({"account": account} if account else {})},
            )["decisions"]
        elif audit:
            recs = read_audit(audit, account=account, limit=limit)
        else:
            raise ConfigError("give --audit FILE or --gateway URL")
        if as_json:
            for r in recs:
                typer.echo(json.dumps(r))
            return
        t = Table()
        for col in (
            "ts",
            "account",
            "event",
            "rule",
            "action",
            "enforced",
            "dry",
            "who",
            "evidence",
        ):
            t.add_column(col, overflow="fold")
        for r in recs:
            t.add_row(
                str(r.get("ts", "")),
                str(r.get("account_id", "")),
                str(r.get("event", "")),
                str(r.get("rule", "")),
                str(r.get("action", "")),
                str(r.get("denied") or r.get("enforced", "")),
                "yes" if r.get("dry_run") else "",
                str(r.get("who") or ""),
                "; ".join(r.get("evidence") or [])[:200],
            )
        Console().print(t)

    @policy_app.command("decisions")
    def decisions(
        audit: Path | None = typer.Option(None, help="Audit log (JSONL) of a gateway."),
        gateway: str | None = typer.Option(None, help="Or ask a running gateway's admin API."),
        account: str | None = typer.Option(None, help="Only this account."),
        limit: int = typer.Option(50, help="Last N records."),
        as_json: bool = typer.Option(False, "--json", help="One JSON record per line."),
    ) -> None:
        """Show recent decisions (and manual actions) from the audit log."""
        _decisions(audit, gateway, account, limit, as_json)

    # The same command at the top level, so operators need not remember the group.
    app.command("decisions", help="Alias of `policy decisions`.")(decisions)

    action_app = typer.Typer(
        help="Apply or lift a manual action on an account.", no_args_is_help=True
    )
    policy_app.add_typer(action_app, name="action")

    @action_app.command("apply")
    def apply(
        account: str = typer.Option(..., help="Account id."),
        action: str = typer.Option(
            ..., help="allow|monitor|throttle|degrade|require_verification|block"
        ),
        params: str = typer.Option(
            "{}", help="Action parameters as JSON, e.g. '{\"rate_per_min\": 5}'"
        ),
        who: str = typer.Option(..., help="Operator taking the action (audited)."),
        reason: str = typer.Option("", help="Why (audited)."),
        ttl: float | None = typer.Option(None, help="Seconds until it lapses (default: never)."),
        gateway: str | None = typer.Option(None, help="Running gateway (admin API)."),
        actions_file: Path | None = typer.Option(
            None,
            help="Or edit this manual-actions file (the gateway's <log-dir>/manual_actions.json).",
        ),
        audit: Path | None = typer.Option(None, help="Audit log to record it in (file mode)."),
    ) -> None:
        """Pin an action on an account; it overrides every policy rule until lifted."""
        from antidistill.errors import ConfigError
        from antidistill.policy import AuditLog, ManualActions, action_from_dict
        from antidistill.policy.audit import iso

        try:
            p = json.loads(params)
        except ValueError as exc:
            raise ConfigError(f"not JSON: {exc}", field="params") from exc
        body: dict[str, Any] = {
            "account_id": account,
            "who": who,
            "reason": reason,
            "ttl_s": ttl,
            "action": {"kind": action, **p},
        }
        if gateway:
            typer.echo(json.dumps(_admin_call("POST", gateway, "/admin/actions", body=body)))
            return
        if actions_file is None:
            raise ConfigError("give --gateway URL or --actions-file FILE")
        act = action_from_dict(body["action"], "--action/--params")
        m = ManualActions(actions_file).apply(account, act, who=who, reason=reason, ttl_s=ttl)
        if audit:
            a = AuditLog(audit)
            a.write(
                {
                    "ts": iso(m.ts),
                    "event": "manual_apply",
                    "account_id": account,
                    "action": act.kind,
                    "params": act.params(),
                    "who": who,
                    "reason": reason,
                    "expires_at": m.expires_at,
                    "rule": f"manual:{m.id}",
                }
            )
            a.close()
        typer.echo(json.dumps(m.as_dict()))

    @action_app.command("lift")
    def lift(
        account: str = typer.Option(..., help="Account id."),
        who: str = typer.Option(..., help="Operator (audited)."),
        gateway: str | None = typer.Option(None, help="Running gateway (admin API)."),
        actions_file: Path | None = typer.Option(None, help="Or edit this manual-actions file."),
        audit: Path | None = typer.Option(None, help="Audit log to record it in (file mode)."),
    ) -> None:
        """Lift the manual action on an account."""
        from antidistill.errors import ConfigError
        from antidistill.policy import AuditLog, ManualActions

        if gateway:
            typer.echo(
                json.dumps(
                    _admin_call("DELETE", gateway, f"/admin/actions/{account}", params={"who": who})
                )
            )
            return
        if actions_file is None:
            raise ConfigError("give --gateway URL or --actions-file FILE")
        m = ManualActions(actions_file).lift(account)
        if m is None:
            raise ConfigError(f"no manual action on {account}", where=str(actions_file))
        if audit:
            a = AuditLog(audit)
            a.write(
                {
                    "event": "manual_lift",
                    "account_id": account,
                    "action": m.action.kind,
                    "who": who,
                    "rule": f"manual:{m.id}",
                }
            )
            a.close()
        typer.echo(json.dumps({"lifted": m.as_dict()}))


def _admin_call(
    method: str,
    gateway: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Call a gateway's admin API with env ANTIDISTILL_ADMIN_TOKEN; one-line errors."""
    import httpx

    from antidistill.errors import ConfigError

    token = os.environ.get("ANTIDISTILL_ADMIN_TOKEN")
    if not token:
        raise ConfigError("set ANTIDISTILL_ADMIN_TOKEN to use the admin API")
    try:
        r = httpx.request(
            method,
            gateway.rstrip("/") + path,
            params=params,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach gateway: {exc}", where=gateway) from exc
    data = r.json()
    if r.status_code != 200:
        raise ConfigError(str(data.get("error", {}).get("message", r.text)), where=gateway)
    return dict(data)

"""Policy as data: loading (errors name line and field), first-match semantics, tiers, dry-run,
manual actions, the audit log, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from antidistill.cli import app
from antidistill.errors import PolicyError
from antidistill.policy import (
    AuditLog,
    Block,
    Degrade,
    Evaluator,
    Facts,
    ManualActions,
    Throttle,
    load_policy,
    parse_policy,
    read_audit,
)

BASE = """\
version: 1
tiers:
  - name: programme
    account_types: [edu, research, startup]
    required_verification: strong
rules:
  - name: low
    priority: 1
    when: {guard_score: {gte: 0.2}}
    action: monitor
  - name: high
    priority: 50
    when: {risk: 0.9, in_cluster: true}
    action: {block: {message: "no"}}
  - name: mid
    priority: 50
    when: {flagged: true, pathway: ["reseller:*"]}
    action: {degrade: {reasoning: summarize, max_tokens: 100, watermark: true}}
  - name: verify
    priority: 40
    when: {meets_verification: false}
    action: require_verification
"""


def test_default_policy_loads() -> None:
    pol = load_policy()
    assert pol.rules and pol.rules[0].priority >= pol.rules[-1].priority
    assert {t.name for t in pol.tiers} >= {"programme"}


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (
            BASE.replace("priority: 50\n    when: {risk", "priority: fifty\n    when: {risk"),
            12,
            "rules[1].priority",
            "expected int",
        ),
        (
            BASE.replace("guard_score:", "guard_scroe:"),
            9,
            "rules[0].when.guard_scroe",
            "unknown condition",
        ),
        (
            BASE.replace("reasoning: summarize", "reasoning: hide"),
            18,
            "rules[2].action.degrade.reasoning",
            "strip, summarize, keep",
        ),
        (
            BASE.replace("max_tokens: 100", "max_tokens: 0"),
            18,
            "rules[2].action.degrade.max_tokens",
            ">= 1",
        ),
        (BASE.replace("action: monitor", "action: ban"), 10, "rules[0].action", "unknown action"),
        (
            BASE.replace("required_verification: strong", "required_verification: extreme"),
            5,
            "tiers[0].required_verification",
            "none, basic, strong",
        ),
        (
            BASE.replace("  - name: verify", "    colour: red\n  - name: verify"),
            19,
            "rules[2].colour",
            "unknown key",
        ),
        (BASE.replace("name: mid", "name: low"), 15, "rules[2].name", "duplicate"),
        (
            "version: 1\nrules:\n  - name: x\n    action: {throttle: {rate_per_min: -1}}\n",
            4,
            "rules[0].action.throttle.rate_per_min",
            "> 0",
        ),
        ("version: 1\nrules: [\n", 3, None, "invalid YAML"),
    ],
)
def test_invalid_policy_names_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, words: str
) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(p)
    msg = str(err.value)
    assert f"{p}:{line}" in msg, msg
    if field:
        assert f"field '{field}'" in msg, msg
    assert words in msg and "\n" not in msg


def ev(text: str = BASE, **kw: object) -> Evaluator:
    return Evaluator(parse_policy(text), **kw)  # type: ignore[arg-type]


def test_priority_then_file_order_first_match_wins() -> None:
    e = ev()
    both = Facts("a", risk=0.95, cluster_id="C", flagged=True, pathway="reseller:x")
    d = e.decide(e.complete(both))
    assert d.rule == "high" and isinstance(d.enforced, Block)  # same priority: file order
    d = e.decide(e.complete(Facts("a", risk=0.5, flagged=True, pathway="reseller:acme")))
    assert d.rule == "mid" and isinstance(d.enforced, Degrade) and d.enforced.max_tokens == 100
    d = e.decide(e.complete(Facts("a", flagged=True, pathway="direct", guard_score=0.3)))
    assert d.rule == "low" and d.enforced.kind == "monitor"
    d = e.decide(e.complete(Facts("a", guard_score=0.1)))
    assert d.rule == "default" and d.enforced.kind == "allow"
    d = e.decide(e.complete(Facts("a", risk=None, cluster_id="C")))  # unknown risk: no match
    assert d.rule == "default"


def test_tiers_need_stronger_verification() -> None:
    e = ev()
    edu_basic = e.complete(Facts("u", account_type="edu", verified=True, verification="basic"))
    assert edu_basic.tier == "programme" and not edu_basic.meets_verification
    assert e.decide(edu_basic).enforced.kind == "require_verification"
    edu_strong = e.complete(Facts("u", account_type="edu", verification="strong"))
    assert edu_strong.meets_verification and e.decide(edu_strong).rule == "default"
    team = e.complete(Facts("u", account_type="team", verification="none"))
    assert team.tier is None and team.meets_verification


def test_dry_run_policy_and_shadow_rule() -> None:
    e = ev(BASE.replace("version: 1", "version: 1\ndry_run: true"))
    d = e.decide(e.complete(Facts("a", risk=0.95, cluster_id="C")))
    assert d.action.kind == "block" and d.enforced.kind == "allow" and d.dry_run
    shadow = BASE.replace(
        '    action: {block: {message: "no"}}',
        '    action: {block: {message: "no"}}\n    dry_run: true',
    )
    e = ev(shadow)
    d = e.decide(e.complete(Facts("a", risk=0.95, cluster_id="C", guard_score=0.5)))
    assert d.rule == "low" and d.shadow == (("high", "block"),)


def test_manual_action_overrides_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    m = ManualActions(path)
    e = ev(manual=m)
    m.apply("a", Throttle(rate_per_min=2, burst=1), who="alice", reason="r", ttl_s=100)
    d = e.decide(e.complete(Facts("a", risk=0.99, cluster_id="C")))
    assert d.enforced.kind == "throttle" and d.who == "alice" and d.rule.startswith("manual:")
    again = ManualActions(path)  # reloaded from disk
    assert again.get("a", now=0).action == Throttle(rate_per_min=2, burst=1)  # type: ignore[union-attr]
    assert again.get("a", now=1e12) is None  # expired
    assert m.lift("a") is not None and ManualActions(path).get("a", 0) is None


def test_store_failure_fail_closed_or_open() -> None:
    closed = ev(BASE.replace("version: 1", "version: 1\non_store_error: block"))
    d = closed.decide(closed.complete(Facts("a", store_ok=False)))
    assert d.enforced.kind == "block" and d.enforced.status == 503  # type: ignore[attr-defined]
    opened = ev()
    assert opened.decide(opened.complete(Facts("a", store_ok=False))).enforced.kind == "allow"


def test_audit_log_append_and_filter(tmp_path: Path) -> None:
    a = AuditLog(tmp_path / "audit.jsonl")
    for i in range(5):
        a.write({"event": "decision", "account_id": f"acct{i % 2}", "rule": "r", "i": i})
    a.close()
    a2 = AuditLog(tmp_path / "audit.jsonl")  # appends, never truncates
    a2.write({"event": "manual_apply", "account_id": "acct0", "who": "bob"})
    a2.close()
    recs = read_audit(tmp_path / "audit.jsonl", account="acct0")
    assert [r.get("i") for r in recs] == [0, 2, 4, None] and recs[-1]["who"] == "bob"
    assert all("ts" in r for r in recs)
    assert len(read_audit(tmp_path / "audit.jsonl", limit=2)) == 2


def test_cli_policy_check_decisions_and_actions(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "p.yaml"
    good.write_text(BASE)
    r = runner.invoke(app, ["policy", "check", str(good)])
    assert r.exit_code == 0 and "high" in r.output and "programme" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("action: monitor", "action: ban"))
    r = runner.invoke(app, ["policy", "check", str(bad)])
    assert r.exit_code != 0 and isinstance(r.exception, PolicyError)
    acts, audit = tmp_path / "acts.json", tmp_path / "audit.jsonl"
    r = runner.invoke(
        app,
        [
            "policy",
            "action",
            "apply",
            "--account",
            "x",
            "--action",
            "throttle",
            "--params",
            '{"rate_per_min": 3}',
            "--who",
            "carol",
            "--actions-file",
            str(acts),
            "--audit",
            str(audit),
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(acts.read_text())["actions"][0]["action"]["rate_per_min"] == 3
    r = runner.invoke(
        app,
        [
            "policy",
            "action",
            "lift",
            "--account",
            "x",
            "--who",
            "carol",
            "--actions-file",
            str(acts),
            "--audit",
            str(audit),
        ],
    )
    assert r.exit_code == 0
    r = runner.invoke(app, ["decisions", "--audit", str(audit), "--account", "x", "--json"])
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert [x["event"] for x in lines] == ["manual_apply", "manual_lift"]

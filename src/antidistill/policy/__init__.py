"""Policy as data: YAML rules map what is known about a request to an action, with an audit log."""

from __future__ import annotations

from antidistill.policy.audit import AuditLog, read_audit
from antidistill.policy.evaluate import Decision, Evaluator
from antidistill.policy.loader import guard_config, load_policy, parse_policy
from antidistill.policy.manual import ManualAction, ManualActions, action_from_dict
from antidistill.policy.model import (
    ACTIONS,
    SEVERITY,
    Action,
    Allow,
    Block,
    Condition,
    Degrade,
    Facts,
    Monitor,
    Policy,
    RequireVerification,
    Rule,
    Throttle,
    Tier,
    register_action,
)

__all__ = [
    "ACTIONS",
    "SEVERITY",
    "Action",
    "Allow",
    "AuditLog",
    "Block",
    "Condition",
    "Decision",
    "Degrade",
    "Evaluator",
    "Facts",
    "ManualAction",
    "ManualActions",
    "Monitor",
    "Policy",
    "RequireVerification",
    "Rule",
    "Throttle",
    "Tier",
    "action_from_dict",
    "guard_config",
    "load_policy",
    "parse_policy",
    "read_audit",
    "register_action",
]

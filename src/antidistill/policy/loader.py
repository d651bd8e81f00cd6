"""YAML -> :class:`Policy`, failing at load time with the line and field of the first problem.

Works on PyYAML's node graph (``yaml.compose``) rather than plain data, so every error can name
``policy.yaml:17`` and ``rules[2].when.risk``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from antidistill.errors import PolicyError
from antidistill.guard.guard import GuardConfig
from antidistill.policy.model import (
    ACTIONS,
    BOOLEAN,
    COMPARATORS,
    NUMERIC,
    STRINGS,
    VERIFICATION_LEVELS,
    Action,
    Condition,
    Policy,
    Rule,
    Tier,
)

TOP_KEYS = {"version", "dry_run", "default_action", "on_store_error", "guard", "tiers", "rules"}
RULE_KEYS = {"name", "priority", "when", "action", "dry_run", "description"}
TIER_KEYS = {"name", "account_types", "pathways", "required_verification", "description"}


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, node: yaml.Node | None, field: str, message: str) -> PolicyError:
        line = node.start_mark.line + 1 if node is not None else 0
        where = f"{self.source}:{line}" if line else self.source
        return PolicyError(message, where=where, field=field or None)


def _scalar(ctx: _Ctx, node: yaml.Node, field: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ctx.fail(node, field, "expected a single value")
    return yaml.safe_load(yaml.serialize(node))


def _mapping(
    ctx: _Ctx, node: yaml.Node, field: str, allowed: set[str] | None = None
) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise ctx.fail(node, field, "expected a mapping")
    out: dict[str, yaml.Node] = {}
    for k, v in node.value:
        key = str(_scalar(ctx, k, field))
        if key in out:
            raise ctx.fail(k, _join(field, key), "duplicate key")
        if allowed is not None and key not in allowed:
            raise ctx.fail(
                k, _join(field, key), f"unknown key; expected one of {', '.join(sorted(allowed))}"
            )
        out[key] = v
    return out


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _strings(ctx: _Ctx, node: yaml.Node, field: str) -> tuple[str, ...]:
    if isinstance(node, yaml.SequenceNode):
        vals = [_scalar(ctx, n, f"{field}[{i}]") for i, n in enumerate(node.value)]
    else:
        vals = [_scalar(ctx, node, field)]
    return tuple("null" if v is None else str(v) for v in vals)


def _typed(ctx: _Ctx, node: yaml.Node, field: str, want: Any) -> Any:
    """Check a scalar against a dataclass field annotation (bool/int/float/str, optional)."""
    value = _scalar(ctx, node, field)
    if isinstance(want, str):
        want = eval(want, {"float": float, "int": int, "str": str, "bool": bool, "None": None})
    args = typing.get_args(want) if isinstance(want, types.UnionType) else (want,)
    if value is None and type(None) in args:
        return None
    for t in args:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, str):
            return value
    names = " or ".join(getattr(t, "__name__", str(t)) for t in args)
    raise ctx.fail(node, field, f"expected {names}, got {value!r}")


def _action(ctx: _Ctx, node: yaml.Node, field: str) -> Action:
    if isinstance(node, yaml.ScalarNode):
        name, params = str(_scalar(ctx, node, field)), {}
    else:
        m = _mapping(ctx, node, field)
        if len(m) != 1:
            raise ctx.fail(node, field, "an action is a name or a one-key mapping {name: {params}}")
        name, pnode = next(iter(m.items()))
        params = (
            {}
            if (isinstance(pnode, yaml.ScalarNode) and pnode.value in ("", "~", "null"))
            else _mapping(ctx, pnode, _join(field, name))
        )
    cls = ACTIONS.get(name)
    if cls is None:
        raise ctx.fail(
            node, field, f"unknown action {name!r}; expected one of {', '.join(sorted(ACTIONS))}"
        )
    fmap = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, vnode in params.items():
        fld = _join(_join(field, name), key)
        if key not in fmap:
            raise ctx.fail(
                vnode,
                fld,
                f"unknown parameter of {name}; expected one of {', '.join(fmap) or '(none)'}",
            )
        kwargs[key] = _typed(ctx, vnode, fld, fmap[key].type)
        allowed = cls.choices.get(key)
        if allowed and kwargs[key] not in allowed:
            raise ctx.fail(vnode, fld, f"expected one of {', '.join(allowed)}")
    action = cls(**kwargs)
    bad = action.validate()
    if bad:
        bad_node = params.get(bad[0], node)
        raise ctx.fail(bad_node, _join(_join(field, name), bad[0]), bad[1])
    return action


def _conditions(ctx: _Ctx, node: yaml.Node, field: str) -> tuple[Condition, ...]:
    out: list[Condition] = []
    for name, vnode in _mapping(ctx, node, field).items():
        fld = _join(field, name)
        if name in NUMERIC:
            if isinstance(vnode, yaml.ScalarNode):
                out.append(Condition(name, "gte", _typed(ctx, vnode, fld, float)))
                continue
            for op, onode in _mapping(ctx, vnode, fld, set(COMPARATORS)).items():
                out.append(Condition(name, op, _typed(ctx, onode, _join(fld, op), float)))
        elif name in BOOLEAN:
            out.append(Condition(name, "is", _typed(ctx, vnode, fld, bool)))
        elif name in STRINGS:
            out.append(Condition(name, "in", _strings(ctx, vnode, fld)))
        elif name == "evidence":
            out.append(Condition(name, "any", frozenset(_strings(ctx, vnode, fld))))
        else:
            known = sorted((*NUMERIC, *BOOLEAN, *STRINGS, "evidence"))
            raise ctx.fail(vnode, fld, f"unknown condition; expected one of {', '.join(known)}")
    return tuple(out)


def _guard(ctx: _Ctx, node: yaml.Node) -> dict[str, Any]:
    fmap = {f.name: f for f in dataclasses.fields(GuardConfig)}
    out: dict[str, Any] = {}
    for key, vnode in _mapping(ctx, node, "guard", set(fmap)).items():
        fld = _join("guard", key)
        if key == "weights":
            out[key] = {
                k: _typed(ctx, v, _join(fld, k), float)
                for k, v in _mapping(ctx, vnode, fld).items()
            }
        elif isinstance(vnode, yaml.SequenceNode):
            vals = tuple(_typed(ctx, n, f"{fld}[{i}]", float) for i, n in enumerate(vnode.value))
            if len(vals) != 2 or vals[0] >= vals[1]:
                raise ctx.fail(vnode, fld, "expected [low, high] with low < high")
            out[key] = vals
        else:
            out[key] = _typed(ctx, vnode, fld, int | float)
    return out


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate policy YAML text."""
    ctx = _Ctx(source)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise PolicyError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=where) from exc
    if root is None:
        raise PolicyError("empty policy file", where=source)
    top = _mapping(ctx, root, "", TOP_KEYS)
    if "version" in top and _scalar(ctx, top["version"], "version") != 1:
        raise ctx.fail(top["version"], "version", "only policy version 1 is supported")
    if "rules" not in top:
        raise ctx.fail(root, "rules", "a policy needs a rules list")
    kwargs: dict[str, Any] = {"source": source}
    if "dry_run" in top:
        kwargs["dry_run"] = _typed(ctx, top["dry_run"], "dry_run", bool)
    if "default_action" in top:
        kwargs["default_action"] = _action(ctx, top["default_action"], "default_action")
    if "on_store_error" in top:
        v = _scalar(ctx, top["on_store_error"], "on_store_error")
        if v not in ("allow", "block"):
            raise ctx.fail(
                top["on_store_error"],
                "on_store_error",
                "expected allow (fail open) or block (fail closed)",
            )
        kwargs["on_store_error"] = v
    if "guard" in top:
        kwargs["guard"] = _guard(ctx, top["guard"])
    tiers: list[Tier] = []
    if "tiers" in top:
        tnode = top["tiers"]
        if not isinstance(tnode, yaml.SequenceNode):
            raise ctx.fail(tnode, "tiers", "expected a list of tiers")
        for i, t in enumerate(tnode.value):
            fld = f"tiers[{i}]"
            m = _mapping(ctx, t, fld, TIER_KEYS)
            if "name" not in m:
                raise ctx.fail(t, _join(fld, "name"), "a tier needs a name")
            req = (
                str(_scalar(ctx, m["required_verification"], _join(fld, "required_verification")))
                if "required_verification" in m
                else "none"
            )
            if req not in VERIFICATION_LEVELS:
                raise ctx.fail(
                    m["required_verification"],
                    _join(fld, "required_verification"),
                    f"expected one of {', '.join(VERIFICATION_LEVELS)}",
                )
            tiers.append(
                Tier(
                    name=str(_scalar(ctx, m["name"], _join(fld, "name"))),
                    account_types=_strings(ctx, m["account_types"], _join(fld, "account_types"))
                    if "account_types" in m
                    else (),
                    pathways=_strings(ctx, m["pathways"], _join(fld, "pathways"))
                    if "pathways" in m
                    else (),
                    required_verification=req,
                )
            )
    rnode = top["rules"]
    if not isinstance(rnode, yaml.SequenceNode):
        raise ctx.fail(rnode, "rules", "expected a list of rules")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, r in enumerate(rnode.value):
        fld = f"rules[{i}]"
        m = _mapping(ctx, r, fld, RULE_KEYS)
        for req_key in ("name", "action"):
            if req_key not in m:
                raise ctx.fail(r, _join(fld, req_key), f"a rule needs {req_key!r}")
        name = str(_scalar(ctx, m["name"], _join(fld, "name")))
        if name in names:
            raise ctx.fail(m["name"], _join(fld, "name"), f"duplicate rule name {name!r}")
        names.add(name)
        rules.append(
            Rule(
                name=name,
                action=_action(ctx, m["action"], _join(fld, "action")),
                conditions=_conditions(ctx, m["when"], _join(fld, "when")) if "when" in m else (),
                priority=_typed(ctx, m["priority"], _join(fld, "priority"), int)
                if "priority" in m
                else 0,
                dry_run=_typed(ctx, m["dry_run"], _join(fld, "dry_run"), bool)
                if "dry_run" in m
                else False,
                line=r.start_mark.line + 1,
            )
        )
    # stable sort: priority descending, file order within equal priority
    ordered = tuple(sorted(rules, key=lambda rule: -rule.priority))
    return Policy(rules=ordered, tiers=tuple(tiers), **kwargs)


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file; ``None`` loads the packaged default policy."""
    if path is None:
        from importlib import resources

        ref = resources.files("antidistill") / "data" / "policy" / "default.yaml"
        return parse_policy(ref.read_text(encoding="utf-8"), "default.yaml")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy: {exc.strerror}", where=str(p)) from exc
    return parse_policy(text, str(p))


def guard_config(policy: Policy) -> GuardConfig:
    """The guard thresholds of a policy (defaults for what it leaves out)."""
    cfg = dict(policy.guard)
    if "weights" in cfg:
        cfg["weights"] = {**GuardConfig().weights, **cfg["weights"]}
    return GuardConfig(**cfg)

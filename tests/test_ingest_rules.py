"""Value rules of ingest normalisation, the messages helper, dedupe and mapping validation."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from antidistill import schema
from antidistill.errors import ConfigError
from antidistill.ingest import dedupe, load_mapping
from antidistill.ingest.messages import from_messages
from antidistill.ingest.normalize import (
    Flags,
    Normalizer,
    RowProblem,
    TimestampRule,
    epoch_unit,
    to_asn,
    to_bool,
    to_count,
    to_ip,
    to_pathway,
    to_status,
    to_temperature,
    to_timestamp_us,
)

F = Flags()


def problem(fn: Any, value: Any, *args: Any) -> str:
    with pytest.raises(RowProblem) as exc:
        fn(value, "col", *args)
    return exc.value.reason


@pytest.mark.parametrize(("value", "want"), [
    ("ok", "ok"), ("SUCCESS", "ok"), (" completed ", "ok"), (200, "ok"), ("204", "ok"),
    ("failure", "error"), ("timeout", "error"), (429, "error"), ("503", "error"),
    ("refusal", "refused"), ("refused", "refused"),
    ("guardrail_intervened", "blocked"), ("content_filter", "blocked"), ("Blocked", "blocked"),
])
def test_status_synonyms(value: Any, want: str) -> None:
    assert to_status(value, "status", F) == want


@pytest.mark.parametrize("value", ["exploded", 42, 700, True, 1.5, ["ok"]])
def test_status_rejects(value: Any) -> None:
    assert problem(to_status, value, F) == "bad_enum"


@pytest.mark.parametrize(("value", "want"), [
    ("direct", "direct"), (" Direct ", "direct"), ("CLOUD:Bedrock", "cloud:Bedrock"),
    ("reseller: acme ", "reseller:acme"),
])
def test_pathway(value: str, want: str) -> None:
    assert to_pathway(value, "pathway", F) == want
    assert schema.valid_pathway(want)


@pytest.mark.parametrize("value", ["cloud:", "proxy:x", "", 3])
def test_pathway_rejects(value: Any) -> None:
    assert problem(to_pathway, value, F) == "bad_enum"


@pytest.mark.parametrize(("value", "want"), [
    ("192.0.2.1", "192.0.2.1"), ("192.0.2.1:443", "192.0.2.1"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:DB8:0:0::1", "2001:db8::1"), ("::ffff:192.0.2.9", "192.0.2.9"),
    ("203.0.113.5, 10.0.0.1", "203.0.113.5"), ("fe80::1%eth0", "fe80::1"),
])
def test_ip_canonical(value: str, want: str) -> None:
    assert to_ip(value, "ip", F) == want


@pytest.mark.parametrize(("fn", "value", "want"), [
    (to_count, 5, 5), (to_count, "7", 7), (to_count, 3.0, 3), (to_count, " 12 ", 12),
    (to_asn, "AS13335", 13335), (to_asn, "as64500", 64500), (to_asn, 15169, 15169),
    (to_bool, "yes", True), (to_bool, "F", False), (to_bool, 1, True), (to_bool, False, False),
    (to_temperature, "0.7", 0.7), (to_temperature, 1, 1.0),
])
def test_conversions(fn: Any, value: Any, want: Any) -> None:
    assert fn(value, "col", F) == want


@pytest.mark.parametrize(("fn", "value", "reason"), [
    (to_count, "abc", "wrong_type"), (to_count, 3.5, "wrong_type"), (to_count, True, "wrong_type"),
    (to_count, -1, "out_of_range"), (to_count, 2**31, "out_of_range"),
    (to_count, [1], "wrong_type"),
    (to_asn, "AS-x", "wrong_type"), (to_bool, "maybe", "wrong_type"), (to_bool, 2, "wrong_type"),
    (to_temperature, math.nan, "out_of_range"), (to_temperature, -0.1, "out_of_range"),
    (to_temperature, "hot", "wrong_type"), (to_ip, "999.1.1.1", "bad_value"),
    (to_ip, 12345, "wrong_type"),
])
def test_conversion_rejects(fn: Any, value: Any, reason: str) -> None:
    assert problem(fn, value, F) == reason


@pytest.mark.parametrize(("x", "unit"), [
    (1_763_805_600, "s"), (99_999_999_999, "s"), (1_763_805_600_000, "ms"),
    (1_763_805_600_000_000, "us"), (1_763_805_600_000_000_000, "ns"),
])
def test_epoch_unit_by_magnitude(x: int, unit: str) -> None:
    assert epoch_unit(x) == unit


def test_timestamp_rules() -> None:
    us = int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()) * 1_000_000
    rule = TimestampRule()
    assert to_timestamp_us("2026-11-20T12:00:00+02:00", "ts", rule) == us
    assert to_timestamp_us(datetime(2026, 11, 20, 10), "ts", rule) == us
    assert to_timestamp_us(us // 1000, "ts", TimestampRule(unit="ms")) == us
    assert problem(to_timestamp_us, us // 1000, TimestampRule(unit="s")) == (
        "timestamp_out_of_range")  # an explicit unit wins over magnitude
    assert to_timestamp_us("1763805600.5", "ts", rule) % 1_000_000 == 500_000
    from zoneinfo import ZoneInfo

    paris = TimestampRule(fmt="%d/%m/%Y %H:%M", tz=ZoneInfo("Europe/Paris"))
    assert to_timestamp_us("20/11/2026 11:00", "ts", paris) == us
    for bad, reason in [("yesterday", "bad_timestamp"), (True, "bad_timestamp"),
                        (math.inf, "bad_timestamp"), (0, "timestamp_out_of_range"),
                        ("1999-12-31T23:59:59Z", "timestamp_out_of_range")]:
        assert problem(to_timestamp_us, bad, rule) == reason
    assert problem(to_timestamp_us, "2026-11-20", paris) == "bad_timestamp"


def test_normalizer_required_and_empty_values() -> None:
    n = Normalizer()
    base = {"ts": 1763805600, "account_id": "a", "model": "m", "prompt": ""}
    row = n.row(dict(base), Flags())
    assert row[schema.COLUMN_NAMES.index("prompt")] == ""  # empty prompt is allowed
    assert row[0] is None  # request_id left for the pipeline to generate
    for col in ("account_id", "model"):
        with pytest.raises(RowProblem) as exc:
            n.row({**base, col: "  "}, Flags())
        assert (exc.value.reason, exc.value.field) == ("missing_required", col)
    assert n.row({**base, "org_id": "", "account_id": 1234}, Flags())[2] == "1234"


def test_messages_rules() -> None:
    got = from_messages([
        {"role": "system", "content": "S1"}, {"role": "developer", "content": "S2"},
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "answer"},
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "image_url", "image_url": {"url": "u"}},
                                     {"type": "text", "text": "b"}]},
        {"role": "tool", "content": "result"},
    ])
    assert got == {"n_messages": 6, "has_image": True, "prompt": "a\nb",
                   "system_prompt": "S1\n\nS2"}
    otel = from_messages('[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]')
    assert otel["prompt"] == "hi" and otel["n_messages"] == 1
    assert from_messages("plain text") == {"prompt": "plain text", "n_messages": 1}
    assert from_messages(42) == {}


def test_deduper_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe, "_MERGE_AT", 5)
    d = dedupe.Deduper()
    assert d.check(["a", "b", "a"]).tolist() == [False, False, True]
    assert d.check([f"x{i}" for i in range(6)]).tolist() == [False] * 6  # triggers a merge
    assert d.check(["b", "x3", "new", "new"]).tolist() == [True, True, False, True]
    assert len(d) == 9 and d.nbytes == 9 * 8
    assert d.check([]).dtype == np.bool_


# --- mapping files ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line", "fieldname", "message"), [
    ("columns:\n  ts: when\nextras: 1\n", 3, "extras", "unknown section"),
    ("columns:\n  ts: when\n  acount_id: who\n", 3, "acount_id", "not a schema v1 column"),
    ("columns:\n  account_id: $.a[\n", 2, "account_id", "bad JSON path"),
    ("timestamps:\n  ts:\n    timezone: Mars/Base\n", 3, "ts.timezone", "unknown timezone"),
    ("timestamps:\n  ts:\n    unit: days\n", 3, "ts.unit", "unit must be"),
    ("timestamps:\n  model:\n    unit: s\n", 2, "model", "of this kind"),
    ("columns:\n  ts: a\n  ts: b\n", 3, "ts", "duplicate key"),
    ("columns:\n  ts: [a, b]\n", 2, "ts", "expected a single value"),
    ("version: 2\n", 1, "version", "only mapping version 1"),
    ("csv_delimiter: ';;'\n", 1, "csv_delimiter", "single character"),
])
def test_invalid_mapping_names_line_and_field(tmp_path: Path, text: str, line: int,
                                              fieldname: str, message: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_mapping(p)
    assert str(exc.value).startswith(f"{p}:{line}: field '{fieldname}': ")
    assert message in str(exc.value)


def test_invalid_yaml_and_clash(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("columns:\n  ts: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{p}:\d+: invalid YAML"):
        load_mapping(p)
    p.write_text("columns:\n  pathway: via\nconstants:\n  pathway: direct\n")
    with pytest.raises(ConfigError, match="field 'pathway': set both"):
        load_mapping(p)
    p.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_mapping(p)


def test_mapping_paths_values_and_constants(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text('columns:\n  account_id: $.who["user.id"]\n  model: $.models[-1]\n'
                 '  verified: ok\nconstants:\n  pathway: cloud:vertex\n'
                 'values:\n  verified: {Y: true, N: false}\n')
    m = load_mapping(p)
    rec = m.apply({"who": {"user.id": "u1"}, "models": ["a", "b"], "ok": "Y"}, {})
    assert rec == {"account_id": "u1", "model": "b", "verified": True, "pathway": "cloud:vertex"}
    assert m.provides({"who", "models"}) >= {"account_id", "model", "pathway"}

"""Tests of `postdesk.triage.rules`: parsing rule data, each operator, explanations, order, loops and time checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.mail.model import AutomatedKind
from postdesk.triage.rules import (
    FIELD_KINDS,
    OPERATORS_BY_KIND,
    REGEX_TEXT_LIMIT,
    Action,
    ActionKind,
    Channel,
    Condition,
    Facts,
    Field,
    FieldKind,
    Operator,
    Rule,
    RuleError,
    Trigger,
    cascade,
    compile_rules,
    evaluate,
    parse_rule,
    regex_problem,
    rule_to_data,
)

pytestmark = pytest.mark.pure

CREATED = Trigger.CONVERSATION_CREATED
MAIL = Facts(
    mailbox_id="3",
    mailbox_address="Support@Example.com",
    sender_address="Jo.Doe@Customer.EXAMPLE.org",
    subject="Refund for order #1234",
    text="Hello,\nmy card was charged twice. Please refund me.\nJo",
    language="en",
    category="billing",
    priority="normal",
    contact_tier="gold",
    tags=frozenset({"VIP", "eu"}),
    has_attachments=True,
    automated_kind=None,
    in_business_hours=False,
    hours_since_last_reply=None,
    hours_since_customer_wrote=30.0,
    hours_in_status=2.5,
    status="open",
    team="7",
    assignee="",
)


def make_rule(
    rule_id: str,
    conditions: Sequence[tuple[str, str, object]] | None = None,
    actions: list[dict[str, object]] | None = None,
    **settings_: object,
) -> Rule:
    data: dict[str, object] = {
        "id": rule_id,
        "name": settings_.pop("name", rule_id.replace("-", " ").capitalize()),
        "triggers": settings_.pop("triggers", [CREATED.value]),
        "conditions": [
            {"field": fld, "operator": op} | ({} if value is None else {"value": value})
            for fld, op, value in conditions or []
        ],
        "actions": actions or [{"kind": "add_tags", "value": [rule_id]}],
        **settings_,
    }
    return parse_rule(data)


def holds(fld: str, op: str, value: object = None, facts: Facts = MAIL) -> bool:
    """Whether a one-condition rule fires on `facts`."""
    return bool(evaluate([make_rule("probe", [(fld, op, value)])], CREATED, facts).firings)


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(RuleError) as caught:
        parse_rule(data)
    return [str(problem) for problem in caught.value.problems]


def valid_data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": "refunds",
        "name": "Refunds to billing",
        "triggers": ["conversation_created"],
        "conditions": [{"field": "subject", "operator": "contains", "value": "refund"}],
        "actions": [{"kind": "set_team", "value": "billing"}],
    }
    data.update(changes)
    return data


# --- operators and fields ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fld", "op", "value", "expected"),
    [
        # text fields: case-insensitive
        ("subject", "is", "refund FOR order #1234", True),
        ("subject", "is", "refund", False),
        ("subject", "is_not", "refund", True),
        ("subject", "in", ["hello", "REFUND for order #1234"], True),
        ("subject", "not_in", ["hello", "REFUND for order #1234"], False),
        ("subject", "contains", "REFUND", True),
        ("subject", "contains", "invoice", False),
        ("subject", "not_contains", "invoice", True),
        ("subject", "starts_with", "refund for", True),
        ("subject", "starts_with", "order", False),
        ("subject", "ends_with", "#1234", True),
        ("subject", "matches", r"order #\d{4}\b", True),
        ("subject", "matches", r"^order", False),
        ("text", "contains", "charged twice", True),
        ("text", "matches", r"card .{0,20} twice", True),
        ("sender_address", "is", "jo.doe@customer.example.org", True),
        ("sender_address", "ends_with", "@customer.example.org", True),
        ("sender_domain", "is", "customer.example.org", True),
        ("sender_domain", "ends_with", ".example.org", True),
        ("sender_domain", "in", ["example.com", "customer.example.org"], True),
        # keyword fields
        ("mailbox", "is", "3", True),
        ("mailbox", "is", "support@example.com", True),
        ("mailbox", "is", 3, True),
        ("mailbox", "is", "sales@example.com", False),
        ("mailbox", "not_in", ["sales@example.com", "4"], True),
        ("language", "is", "EN", True),
        ("language", "in", ["ru", "uk"], False),
        ("category", "is", "billing", True),
        ("category", "is_not", "billing", False),
        ("priority", "in", ["high", "urgent"], False),
        ("priority", "is", "normal", True),
        ("contact_tier", "is", "Gold", True),
        ("automated_kind", "is", "none", True),
        ("automated_kind", "is_not", "bounce", True),
        ("status", "is", "open", True),
        ("status", "not_in", ["pending", "resolved"], True),
        ("team", "is", "7", True),
        ("assignee", "is", "", True),
        ("assignee", "is_not", "", False),
        # hours
        ("hours_since_customer_wrote", "greater_than", 24, True),
        ("hours_since_customer_wrote", "greater_than", "30", False),
        ("hours_since_customer_wrote", "less_than", 48, True),
        ("hours_in_status", "less_than", 2.5, False),
        ("hours_since_last_reply", "greater_than", 0, False),  # no agent reply yet: unknown matches nothing
        ("hours_since_last_reply", "less_than", 1000, False),
        # flags
        ("has_attachments", "is_true", None, True),
        ("has_attachments", "is_false", None, False),
        ("in_business_hours", "is_false", None, True),
        # tags, case-insensitive
        ("tags", "has_tag", "vip", True),
        ("tags", "has_tag", "new-customer", False),
        ("tags", "lacks_tag", "new-customer", True),
        ("tags", "lacks_tag", "Vip", False),
        ("tags", "in", ["spam", "eu"], True),
        ("tags", "not_in", ["spam", "eu"], False),
    ],
)
def test_each_operator_on_each_kind_of_field(fld: str, op: str, value: object, expected: bool) -> None:
    assert holds(fld, op, value) is expected


def test_automated_kind_of_machine_mail() -> None:
    bounce = Facts(automated_kind=AutomatedKind.BOUNCE)
    assert holds("automated_kind", "is", "bounce", bounce)
    assert holds("automated_kind", "in", ["auto_reply", "out_of_office", "bounce"], bounce)
    assert not holds("automated_kind", "is", "none", bounce)


def test_mailbox_address_without_id_and_empty_mailbox() -> None:
    assert holds("mailbox", "is", "SUPPORT@example.com", Facts(mailbox_address="support@example.com"))
    assert holds("mailbox", "is", "", Facts())


def test_sender_domain_empty_without_address() -> None:
    assert holds("sender_domain", "is", "", Facts(sender_address=""))
    assert not holds("sender_domain", "ends_with", "example.org", Facts(sender_address="nobody"))


def test_regex_reads_only_a_capped_prefix_of_the_text() -> None:
    late = Facts(text="x" * REGEX_TEXT_LIMIT + " secret-word")
    early = Facts(text="secret-word " + "x" * REGEX_TEXT_LIMIT)
    assert holds("text", "matches", r"secret-word", early)
    assert not holds("text", "matches", r"secret-word", late)
    assert holds("text", "contains", "secret-word", late)  # plain "contains" reads much further


def test_regex_is_case_insensitive_and_reads_the_original_text() -> None:
    assert holds("text", "matches", r"CARD WAS", MAIL)
    assert holds("subject", "matches", r"ORDER #1234$", MAIL)


def test_every_operator_in_the_table_is_tested_for_its_kinds() -> None:
    """The type table above is the contract the admin form shows; keep it and this test in step."""
    assert set(OPERATORS_BY_KIND) == set(FieldKind)
    assert set(FIELD_KINDS) == set(Field)
    listed = {op for ops in OPERATORS_BY_KIND.values() for op in ops}
    assert listed == set(Operator)


def test_a_condition_object_cannot_be_built_wrong() -> None:
    with pytest.raises(RuleError, match="does not apply to subject"):
        Condition(Field.SUBJECT, Operator.GREATER_THAN, 3.0)
    with pytest.raises(RuleError, match="could take very long"):
        Condition(Field.TEXT, Operator.MATCHES, "(a+)+$")
    with pytest.raises(RuleError, match="channel"):
        Action(ActionKind.NOTIFY, "supervisor")


# --- explanations --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fld", "op", "value", "reason"),
    [
        ("subject", "contains", "refund", "subject contains 'refund'"),
        ("subject", "not_contains", "invoice", "subject does not contain 'invoice'"),
        ("subject", "starts_with", "Refund", "subject starts with 'Refund'"),
        ("subject", "ends_with", "1234", "subject ends with '1234'"),
        ("text", "matches", r"charged\s+twice", r"text matches /charged\s+twice/"),
        ("sender_domain", "is", "customer.example.org", "sender domain is 'customer.example.org'"),
        ("priority", "is_not", "urgent", "priority is not 'urgent'"),
        ("priority", "in", ["normal", "low"], "priority is one of 'normal', 'low'"),
        ("status", "not_in", ["pending"], "status is none of 'pending'"),
        ("assignee", "is", "", "assignee is empty"),
        ("team", "is_not", "", "team is not empty"),
        ("hours_since_customer_wrote", "greater_than", 24, "hours since the customer wrote is more than 24"),
        ("hours_in_status", "less_than", 2.75, "hours in this status is less than 2.75"),
        ("has_attachments", "is_true", None, "has attachments"),
        ("in_business_hours", "is_false", None, "outside business hours"),
        ("tags", "has_tag", "VIP", "has the tag 'VIP'"),
        ("tags", "lacks_tag", "spam", "lacks the tag 'spam'"),
        ("tags", "in", ["eu", "us"], "has any of the tags 'eu', 'us'"),
        ("tags", "not_in", ["spam"], "has none of the tags 'spam'"),
    ],
)
def test_reasons_say_which_condition_held(fld: str, op: str, value: object, reason: str) -> None:
    outcome = evaluate([make_rule("r", [(fld, op, value)])], CREATED, MAIL)
    assert [firing.reasons for firing in outcome.firings] == [(reason,)]


def test_all_lists_every_reason_in_the_order_written_and_any_lists_the_ones_that_held() -> None:
    conditions = [("text", "contains", "refund"), ("priority", "is", "normal"), ("subject", "contains", "nope")]
    every = make_rule("every", conditions[:2])
    some = make_rule("some", conditions, match="any")
    outcome = evaluate([every, some], CREATED, MAIL)
    assert [(firing.rule_id, firing.rule_name, firing.reasons) for firing in outcome.firings] == [
        ("every", "Every", ("text contains 'refund'", "priority is 'normal'")),
        ("some", "Some", ("text contains 'refund'", "priority is 'normal'")),
    ]


def test_all_needs_every_condition_and_any_needs_one() -> None:
    conditions = [("subject", "contains", "refund"), ("language", "is", "ru")]
    assert not evaluate([make_rule("a", conditions)], CREATED, MAIL).firings
    assert evaluate([make_rule("a", conditions, match="any")], CREATED, MAIL).firings
    assert not evaluate([make_rule("a", conditions[1:], match="any")], CREATED, MAIL).firings


def test_a_rule_without_conditions_always_fires_and_says_so() -> None:
    outcome = evaluate([make_rule("always")], CREATED, Facts())
    assert outcome.firings[0].reasons == ("no conditions",)


# --- order, triggers, stop_processing, actions ---------------------------------------------------------------


def test_rules_run_by_order_then_id_and_actions_come_in_that_order() -> None:
    rules = [
        make_rule("late", actions=[{"kind": "add_note", "value": "third"}], order=20),
        make_rule("b-early", actions=[{"kind": "add_note", "value": "second"}], order=10),
        make_rule("a-early", actions=[{"kind": "add_note", "value": "first"}], order=10),
    ]
    outcome = evaluate(rules, CREATED, MAIL)
    assert [firing.rule_id for firing in outcome.firings] == ["a-early", "b-early", "late"]
    assert [action.value for action in outcome.actions] == ["first", "second", "third"]


def test_only_enabled_rules_for_the_trigger_run() -> None:
    rules = [
        make_rule("off", enabled=False),
        make_rule("on-reply", triggers=["customer_replied"]),
        make_rule("both", triggers=["customer_replied", "conversation_created"]),
    ]
    assert [f.rule_id for f in evaluate(rules, CREATED, MAIL).firings] == ["both"]
    assert [f.rule_id for f in evaluate(rules, Trigger.CUSTOMER_REPLIED, MAIL).firings] == ["both", "on-reply"]
    assert not evaluate(rules, Trigger.SLA_BREACH, MAIL).firings


def test_stop_processing_stops_after_that_rule_only_when_it_fires() -> None:
    rules = [
        make_rule("not-matching", [("language", "is", "ru")], stop_processing=True, order=1),
        make_rule("stopper", [("subject", "contains", "refund")], stop_processing=True, order=2),
        make_rule("never", order=3),
    ]
    assert [f.rule_id for f in evaluate(rules, CREATED, MAIL).firings] == ["stopper"]


def test_set_actions_are_visible_to_later_rules_and_in_the_outcome() -> None:
    rules = [
        make_rule(
            "refunds",
            [("subject", "contains", "refund")],
            [
                {"kind": "set_category", "value": "refunds"},
                {"kind": "set_priority", "value": "high"},
                {"kind": "set_team", "value": "12"},
                {"kind": "set_assignee", "value": "ana@example.com"},
                {"kind": "add_tags", "value": "money, Refund"},
                {"kind": "remove_tags", "value": ["vip"]},
            ],
            order=1,
        ),
        make_rule(
            "urgent-refunds",
            [("category", "is", "refunds"), ("priority", "is", "high"), ("tags", "has_tag", "money")],
            [{"kind": "set_status", "value": "pending"}],
            order=2,
        ),
        make_rule("vip-only", [("tags", "has_tag", "vip")], order=3),
    ]
    outcome = evaluate(rules, CREATED, MAIL)
    assert [f.rule_id for f in outcome.firings] == ["refunds", "urgent-refunds"]
    after = outcome.facts
    assert (after.category, after.priority, after.team, after.assignee, after.status) == (
        "refunds",
        "high",
        "12",
        "ana@example.com",
        "pending",
    )
    assert after.tags == frozenset({"eu", "money", "Refund"})
    assert after.hours_in_status == 0.0  # a new status starts its own clock
    assert after.subject == MAIL.subject


def test_side_effects_list_notes_templates_notifications_and_webhooks_with_their_rule() -> None:
    rule = make_rule(
        "escalate",
        actions=[
            {"kind": "set_priority", "value": "urgent"},
            {"kind": "add_note", "value": "Escalated: customer charged twice."},
            {"kind": "send_template", "value": "refund-received"},
            {"kind": "notify", "value": "supervisor"},
            {"kind": "notify", "value": "ana@example.com", "channels": ["email"]},
            {"kind": "call_webhook", "value": "https://hooks.example.com/postdesk?x=1"},
        ],
    )
    outcome = evaluate([rule], CREATED, MAIL)
    assert [(rule_id, action.kind, action.value) for rule_id, action in outcome.side_effects] == [
        ("escalate", ActionKind.ADD_NOTE, "Escalated: customer charged twice."),
        ("escalate", ActionKind.SEND_TEMPLATE, "refund-received"),
        ("escalate", ActionKind.NOTIFY, "supervisor"),
        ("escalate", ActionKind.NOTIFY, "ana@example.com"),
        ("escalate", ActionKind.CALL_WEBHOOK, "https://hooks.example.com/postdesk?x=1"),
    ]
    notify_channels = [action.channels for _, action in outcome.side_effects if action.kind is ActionKind.NOTIFY]
    assert notify_channels == [(Channel.IN_APP, Channel.EMAIL), (Channel.EMAIL,)]


def test_compiled_rules_give_the_same_outcome_every_time() -> None:
    rules = [make_rule("refunds", [("text", "contains", "refund")], [{"kind": "set_priority", "value": "high"}])]
    ruleset = compile_rules(rules)
    first = ruleset.evaluate(CREATED, MAIL)
    second = ruleset.evaluate(CREATED, MAIL)
    assert first == second == evaluate(rules, CREATED, MAIL)
    assert first.facts.priority == "high"
    assert MAIL.priority == "normal"  # the input snapshot is untouched


def test_two_rules_with_one_id_are_refused() -> None:
    with pytest.raises(RuleError, match="'same' is used by more than one rule"):
        compile_rules([make_rule("same"), make_rule("same", order=3)])


# --- loops ---------------------------------------------------------------------------------------------------


def ping_pong_rules() -> list[Rule]:
    """Four rules that keep flipping priority and status: each change triggers the next rule, forever."""

    def flip(rule_id: str, trigger: str, fld: str, value: str, action: str, new: str) -> Rule:
        return make_rule(rule_id, [(fld, "is", value)], [{"kind": action, "value": new}], triggers=[trigger])

    return [
        make_rule("raise-refunds", [("subject", "contains", "refund")], [{"kind": "set_priority", "value": "high"}]),
        flip("high-means-pending", "priority_changed", "priority", "high", "set_status", "pending"),
        flip("pending-means-low", "status_changed", "status", "pending", "set_priority", "low"),
        flip("low-means-open", "priority_changed", "priority", "low", "set_status", "open"),
        flip("open-means-high", "status_changed", "status", "open", "set_priority", "high"),
    ]


def test_rules_that_would_ping_pong_forever_stop_with_a_note() -> None:
    outcome = cascade(ping_pong_rules(), CREATED, MAIL)
    assert [(f.rule_id, f.trigger) for f in outcome.firings] == [
        ("raise-refunds", Trigger.CONVERSATION_CREATED),
        ("high-means-pending", Trigger.PRIORITY_CHANGED),
        ("pending-means-low", Trigger.STATUS_CHANGED),
        ("low-means-open", Trigger.PRIORITY_CHANGED),
        ("open-means-high", Trigger.STATUS_CHANGED),
    ]
    assert [(s.rule_id, s.trigger, s.reason) for s in outcome.suppressed] == [
        (
            "high-means-pending",
            Trigger.PRIORITY_CHANGED,
            "'high-means-pending' already fired for this event; not run again on priority_changed",
        ),
    ]
    assert (outcome.facts.priority, outcome.facts.status) == ("high", "open")


def test_rules_for_one_trigger_see_each_other_in_the_same_round() -> None:
    """Two rules on one trigger that undo each other both fire once, in order; the net change counts."""
    when = {"triggers": ["priority_changed"]}
    rules = [
        make_rule("to-low", [("priority", "is", "high")], [{"kind": "set_priority", "value": "low"}], order=1, **when),
        make_rule("to-high", [("priority", "is", "low")], [{"kind": "set_priority", "value": "high"}], order=2, **when),
    ]
    outcome = cascade(rules, Trigger.PRIORITY_CHANGED, replace(MAIL, priority="high"))
    assert [f.rule_id for f in outcome.firings] == ["to-low", "to-high"]
    assert outcome.facts.priority == "high"
    assert outcome.suppressed == ()


def test_the_depth_limit_stops_long_chains_and_says_so() -> None:
    # Every rule fires once, each on the change the one before made, in a chain longer than the limit allows.
    def step(rule_id: str, trigger: str, fld: str, value: str, action: str, new: str) -> Rule:
        return make_rule(rule_id, [(fld, "is", value)], [{"kind": action, "value": new}], triggers=[trigger])

    rules = [
        make_rule("start", actions=[{"kind": "set_priority", "value": "low"}]),
        step("s1", "priority_changed", "priority", "low", "set_status", "open"),
        step("s2", "status_changed", "status", "open", "set_priority", "normal"),
        step("s3", "priority_changed", "priority", "normal", "set_status", "pending"),
        step("s4", "status_changed", "status", "pending", "set_priority", "high"),
        step("s5", "priority_changed", "priority", "high", "set_status", "resolved"),
    ]
    outcome = cascade(rules, CREATED, Facts(), max_depth=3)
    assert [f.rule_id for f in outcome.firings] == ["start", "s1", "s2", "s3"]
    assert [(s.trigger, s.reason, s.rule_id) for s in outcome.suppressed] == [
        (Trigger.STATUS_CHANGED, "status_changed was not evaluated: more than 3 rounds of follow-up changes", "")
    ]
    assert [f.rule_id for f in cascade(rules, CREATED, Facts()).firings] == ["start", "s1", "s2", "s3", "s4", "s5"]


def test_evaluate_alone_runs_no_follow_up_triggers() -> None:
    outcome = evaluate(ping_pong_rules(), CREATED, MAIL)
    assert [f.rule_id for f in outcome.firings] == ["raise-refunds"]
    assert outcome.suppressed == ()


def test_a_change_undone_in_the_same_round_triggers_nothing() -> None:
    rules = [
        make_rule("up", actions=[{"kind": "set_priority", "value": "urgent"}], order=1),
        make_rule("back", actions=[{"kind": "set_priority", "value": "normal"}], order=2),
        make_rule("on-change", triggers=["priority_changed"]),
    ]
    outcome = cascade(rules, CREATED, MAIL)
    assert [f.rule_id for f in outcome.firings] == ["up", "back"]


def test_setting_the_same_value_is_no_change() -> None:
    rules = [
        make_rule("same", actions=[{"kind": "set_priority", "value": "normal"}]),
        make_rule("on-change", triggers=["priority_changed"]),
    ]
    outcome = cascade(rules, CREATED, MAIL)
    assert [f.rule_id for f in outcome.firings] == ["same"]
    assert outcome.facts == MAIL


# --- time-based rules ----------------------------------------------------------------------------------------


def pending_rules() -> list[Rule]:
    when = {"triggers": ["time_check"]}
    return [
        make_rule(
            "pending-3-days-remind",
            [("status", "is", "pending"), ("hours_in_status", "greater_than", 72)],
            [{"kind": "send_template", "value": "still-waiting"}],
            **when,
        ),
        make_rule(
            "pending-5-days-resolve",
            [("status", "is", "pending"), ("hours_in_status", "greater_than", 120)],
            [{"kind": "set_status", "value": "resolved"}],
            **when,
        ),
    ]


def test_pending_reminder_fires_once_then_resolve_later() -> None:
    ruleset = compile_rules(pending_rules())
    fired: frozenset[str] = frozenset()
    sent: list[str] = []
    status = "pending"
    for hours in range(0, 24 * 7, 6):  # the sweeper checks every 6 hours for a week
        facts = Facts(status=status, hours_in_status=float(hours))
        outcome = ruleset.cascade(Trigger.TIME_CHECK, facts, already_fired=fired)
        for firing in outcome.firings:
            sent.append(f"{hours}h {firing.rule_id}")
        fired |= outcome.fired_ids
        status = outcome.facts.status
    assert sent == ["78h pending-3-days-remind", "126h pending-5-days-resolve"]
    assert status == "resolved"


def test_already_fired_rules_are_skipped_quietly() -> None:
    facts = Facts(status="pending", hours_in_status=130.0)
    outcome = evaluate(pending_rules(), Trigger.TIME_CHECK, facts, already_fired=frozenset({"pending-3-days-remind"}))
    assert [f.rule_id for f in outcome.firings] == ["pending-5-days-resolve"]
    assert outcome.suppressed == ()


# --- parse errors --------------------------------------------------------------------------------------------


def test_a_valid_rule_parses() -> None:
    rule = parse_rule(valid_data())
    assert rule.id == "refunds"
    assert rule.conditions == (Condition(Field.SUBJECT, Operator.CONTAINS, "refund"),)
    assert rule.actions == (Action(ActionKind.SET_TEAM, "billing"),)
    assert (rule.enabled, rule.stop_processing, rule.order, rule.match.value) == (True, False, 0, "all")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"id": ""}, "id: is missing"),
        ({"id": "Refunds Rule"}, "id: 'Refunds Rule' is not a slug (lower-case letters, digits, - and _)"),
        ({"name": "  "}, "name: is missing"),
        ({"triggers": []}, "triggers: must be a non-empty list of triggers"),
        ({"triggers": ["mail_arrived"]}, "triggers[0]: 'mail_arrived' is not a known trigger"),
        ({"match": "most"}, "match: 'most' is not a known match (all or any)"),
        ({"stop_processing": "yes"}, "stop_processing: 'yes' is not true or false"),
        ({"order": "first"}, "order: 'first' is not a whole number"),
        ({"conditons": []}, "conditons: is not a rule setting"),
        ({"conditions": {"field": "subject"}}, "conditions: must be a list"),
        (
            {"conditions": ["subject contains refund"]},
            "conditions[0]: must be an object with field, operator and value",
        ),
        (
            {"conditions": [{"field": "colour", "operator": "is", "value": "red"}]},
            "conditions[0].field: 'colour' is not a known field",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "resembles", "value": "x"}]},
            "conditions[0].operator: 'resembles' is not a known operator",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "greater_than", "value": 3}]},
            "conditions[0].operator: 'greater_than' does not apply to subject (use is, is_not, in, not_in, "
            "contains, not_contains, starts_with, ends_with, matches)",
        ),
        (
            {"conditions": [{"field": "priority", "operator": "contains", "value": "hi"}]},
            "conditions[0].operator: 'contains' does not apply to priority (use is, is_not, in, not_in)",
        ),
        (
            {"conditions": [{"field": "tags", "operator": "is", "value": "vip"}]},
            "conditions[0].operator: 'is' does not apply to tags (use has_tag, lacks_tag, in, not_in)",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "contains"}]},
            "conditions[0].value: is missing",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "contains", "value": " "}]},
            "conditions[0].value: is missing",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "in", "value": "a, b"}]},
            "conditions[0].value: must be a list of values",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "in", "value": []}]},
            "conditions[0].value: must be a non-empty list of values",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "in", "value": ["a", 5]}]},
            "conditions[0].value[1]: must be text",
        ),
        (
            {"conditions": [{"field": "hours_in_status", "operator": "greater_than", "value": "abc"}]},
            "conditions[0].value: 'abc' is not a number of hours",
        ),
        (
            {"conditions": [{"field": "hours_in_status", "operator": "greater_than", "value": -1}]},
            "conditions[0].value: '-1.0' is not a number of hours",
        ),
        (
            {"conditions": [{"field": "hours_in_status", "operator": "less_than", "value": True}]},
            "conditions[0].value: 'True' is not a number of hours",
        ),
        (
            {"conditions": [{"field": "hours_in_status", "operator": "less_than", "value": "nan"}]},
            "conditions[0].value: 'nan' is not a number of hours",
        ),
        (
            {"conditions": [{"field": "has_attachments", "operator": "is_true", "value": "yes"}]},
            "conditions[0].value: is_true takes no value",
        ),
        (
            {"conditions": [{"field": "priority", "operator": "is", "value": "hihg"}]},
            "conditions[0].value: 'hihg' is not a known priority (use urgent, high, normal, low)",
        ),
        (
            {"conditions": [{"field": "status", "operator": "in", "value": ["open", "done"]}]},
            "conditions[0].value[1]: 'done' is not a known status (use new, open, pending, snoozed, resolved, "
            "closed, spam, merged)",
        ),
        (
            {"conditions": [{"field": "language", "operator": "is", "value": "English"}]},
            "conditions[0].value: 'English' is not a language code such as 'en' or 'zh'",
        ),
        (
            {"conditions": [{"field": "text", "operator": "matches", "value": "refund("}]},
            "conditions[0].value: 'refund(' is not a valid regular expression (missing ), unterminated subpattern)",
        ),
        (
            {"conditions": [{"field": "text", "operator": "matches", "value": "^(a+)+$"}]},
            "conditions[0].value: '^(a+)+$' could take very long on some mail: a repeated group repeats inside, "
            "as in (a+)+",
        ),
        (
            {"conditions": [{"field": "text", "operator": "matches", "value": "x" * 201}]},
            "conditions[0].value: is a regular expression longer than 200 characters",
        ),
        (
            {"conditions": [{"field": "subject", "operator": "is", "value": "s", "values": "t"}]},
            "conditions[0].values: is not a condition setting",
        ),
        ({"actions": []}, "actions: must be a non-empty list"),
        ({"actions": [{"kind": "delete_everything"}]}, "actions[0].kind: 'delete_everything' is not a known action"),
        ({"actions": [{"kind": "set_team"}]}, "actions[0].value: is missing"),
        (
            {"actions": [{"kind": "set_priority", "value": "asap"}]},
            "actions[0].value: 'asap' is not a priority (urgent, high, normal, low)",
        ),
        (
            {"actions": [{"kind": "set_status", "value": "done"}]},
            "actions[0].value: 'done' is not a status (new, open, pending, snoozed, resolved, closed, spam, merged)",
        ),
        ({"actions": [{"kind": "add_tags", "value": []}]}, "actions[0].value: must name at least one tag"),
        ({"actions": [{"kind": "add_tags", "value": {"a": 1}}]}, "actions[0].value: must be a list of tags"),
        ({"actions": [{"kind": "add_note", "value": ["a"]}]}, "actions[0].value: must be text"),
        (
            {"actions": [{"kind": "send_template", "value": "Refund reply"}]},
            "actions[0].value: 'Refund reply' is not a template key (a slug)",
        ),
        (
            {"actions": [{"kind": "call_webhook", "value": "ftp://example.com/x"}]},
            "actions[0].value: 'ftp://example.com/x' is not an http:// or https:// address",
        ),
        (
            {"actions": [{"kind": "notify", "value": "owner", "channels": ["sms"]}]},
            "actions[0].channels[0]: 'sms' is not a known channel",
        ),
        (
            {"actions": [{"kind": "notify", "value": "owner", "channels": []}]},
            "actions[0].channels: must be a non-empty list of channels",
        ),
        (
            {"actions": [{"kind": "set_team", "value": "1", "channels": ["email"]}]},
            "actions[0].channels: only notify takes channels, not set_team",
        ),
    ],
)
def test_bad_rule_data_names_the_place_and_the_problem(changes: dict[str, object], expected: str) -> None:
    assert problems(valid_data(**changes)) == [expected]


def test_every_problem_is_reported_at_once() -> None:
    data = valid_data(
        name="",
        conditions=[
            {"field": "subject", "operator": "contains", "value": "ok"},
            {"field": "hours_in_status", "operator": "greater_than", "value": "soon"},
            {"field": "text", "operator": "matches", "value": r".*a.*b"},
        ],
        actions=[{"kind": "notify"}],
    )
    assert problems(data) == [
        "name: is missing",
        "conditions[1].value: 'soon' is not a number of hours",
        "conditions[2].value: '.*a.*b' could take very long on some mail: two repeats can match the same "
        r"characters one after the other, as in \d+\s*\d+",
        "actions[0].value: is missing",
    ]


def test_rule_error_reads_as_one_message() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(valid_data(id="", actions=[]))
    assert str(caught.value) == "id: is missing; actions: must be a non-empty list"
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("id", "is missing"),
        ("actions", "must be a non-empty list"),
    ]


def test_not_an_object_at_all() -> None:
    assert problems(["not", "a", "rule"]) == ["a rule must be an object"]  # type: ignore[arg-type]


def test_lenient_inputs_an_admin_form_sends_are_accepted() -> None:
    rule = parse_rule(
        valid_data(
            conditions=[
                {"field": "hours_in_status", "operator": "greater_than", "value": " 72 "},
                {"field": "team", "operator": "in", "value": [4, "5"]},
                {"field": "priority", "operator": "is", "value": "HIGH"},
                {"field": "in_business_hours", "operator": "is_false", "value": ""},
            ],
            actions=[{"kind": "set_assignee", "value": 9}, {"kind": "add_tags", "value": "a, b,, c"}],
        )
    )
    assert [c.value for c in rule.conditions] == [72.0, ("4", "5"), "high", None]
    assert rule.actions == (Action(ActionKind.SET_ASSIGNEE, "9"), Action(ActionKind.ADD_TAGS, tags=("a", "b", "c")))


# --- regex safety --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        r"refund",
        r"refund.*order",
        r"\w+@\w+\.com",
        r"^(?:re|fwd?):\s*",
        r"(re|fwd)+:",
        r"invoice #\d+",
        r"(?i)\border\s+\d{4,8}\b",
        r"[a-z]+\s[a-z]+",
        r"(?=.*refund)(?=.*urgent)",
        r"a++b++",
        r"(?>a+)+b",
        r"(?:[a-c]|d)+x",
        r"колл-центр|退款|بازپرداخت",
    ],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert regex_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a+)+$", "a repeated group repeats inside"),
        (r"(x+x+)+y", "a repeated group repeats inside"),
        (r"(.*)*", "a repeated group repeats inside"),
        (r"(?:\w+\s?){1,5}$", "a repeated group repeats inside"),
        (r"(a|ab)*c", "repeated alternatives can match the same text"),
        (r"(a|a)+$", "repeated alternatives can match the same text"),
        (r"(\w|\d)+$", "repeated alternatives can match the same text"),
        (r".*a.*b", "two repeats can match the same characters"),
        (r"\d+\s*\d+x", "two repeats can match the same characters"),
        (r"\w+.\w+z", "two repeats can match the same characters"),
        (r"(\d{3})-\1", "back-references"),
        (r"(?P<x>a)(?P=x)", "back-references"),
    ],
)
def test_patterns_that_backtrack_badly_are_refused(pattern: str, why: str) -> None:
    problem = regex_problem(pattern)
    assert problem is not None
    assert why in problem


# --- round trip ----------------------------------------------------------------------------------------------


def test_round_trip_of_a_rule_with_every_kind_of_part() -> None:
    rule = make_rule(
        "everything",
        [
            ("mailbox", "is", "support@example.com"),
            ("text", "matches", r"order\s+#?\d+"),
            ("hours_since_last_reply", "greater_than", 1.5),
            ("hours_in_status", "less_than", 48),
            ("has_attachments", "is_true", None),
            ("tags", "not_in", ["spam", "test"]),
        ],
        [
            {"kind": "add_tags", "value": ["a", "b"]},
            {"kind": "notify", "value": "owner", "channels": ["email"]},
            {"kind": "call_webhook", "value": "http://127.0.0.1:9/hook"},
        ],
        triggers=["time_check", "conversation_created"],
        match="any",
        stop_processing=True,
        enabled=False,
        order=-5,
    )
    data = rule_to_data(rule)
    assert parse_rule(json.loads(json.dumps(data))) == rule
    assert data["triggers"] == ["conversation_created", "time_check"]
    assert data["conditions"][3] == {"field": "hours_in_status", "operator": "less_than", "value": 48}  # type: ignore[index]
    assert data["conditions"][4] == {"field": "has_attachments", "operator": "is_true"}  # type: ignore[index]


_SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
    lambda text: text.strip() == text and text != ""
)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    fld = draw(st.sampled_from(list(Field)))
    kind = FIELD_KINDS[fld]
    op = draw(st.sampled_from(OPERATORS_BY_KIND[kind]))
    data: dict[str, Any] = {"field": fld.value, "operator": op.value}
    if kind is FieldKind.FLAG:
        return data
    if kind is FieldKind.HOURS:
        data["value"] = draw(st.floats(min_value=0, max_value=10_000, allow_nan=False) | st.integers(0, 10_000))
        return data
    if fld is Field.PRIORITY:
        words = st.sampled_from(["urgent", "high", "normal", "low"])
    elif fld is Field.STATUS:
        words = st.sampled_from(["new", "open", "pending", "resolved"])
    elif fld is Field.AUTOMATED_KIND:
        words = st.sampled_from(["none", "bounce", "list"])
    elif fld is Field.LANGUAGE:
        words = st.sampled_from(["en", "ru", "uk", "fa", "zh", "zh-hant"])
    elif op is Operator.MATCHES:
        words = st.sampled_from([r"refund", r"order\s+\d+", r"^re:", r"(?:a|b)c"])
    else:
        words = _SAFE_TEXT
    data["value"] = (
        draw(st.lists(words, min_size=1, max_size=3)) if op in (Operator.IN, Operator.NOT_IN) else draw(words)
    )
    return data


@st.composite
def actions(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(ActionKind)))
    if kind in (ActionKind.ADD_TAGS, ActionKind.REMOVE_TAGS):
        tag = st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=10)
        return {"kind": kind.value, "value": draw(st.lists(tag, min_size=1, max_size=3))}
    value = {
        ActionKind.SET_PRIORITY: st.sampled_from(["urgent", "low"]),
        ActionKind.SET_STATUS: st.sampled_from(["open", "resolved"]),
        ActionKind.SEND_TEMPLATE: st.from_regex(r"\A[a-z0-9]{1,8}(?:-[a-z0-9]{1,8})?\Z"),
        ActionKind.CALL_WEBHOOK: st.sampled_from(["https://example.com/hook", "http://10.0.0.1:8080/x?y=1"]),
    }.get(kind, _SAFE_TEXT)
    data: dict[str, Any] = {"kind": kind.value, "value": draw(value)}
    if kind is ActionKind.NOTIFY:
        data["channels"] = draw(st.lists(st.sampled_from(["in_app", "email"]), min_size=1, max_size=2, unique=True))
    return data


@st.composite
def rule_data(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(st.from_regex(r"\A[a-z0-9]{1,10}(?:[-_][a-z0-9]{1,10})?\Z")),
        "name": draw(_SAFE_TEXT),
        "triggers": draw(st.lists(st.sampled_from([t.value for t in Trigger]), min_size=1, max_size=3, unique=True)),
        "match": draw(st.sampled_from(["all", "any"])),
        "conditions": draw(st.lists(conditions(), max_size=4)),
        "actions": draw(st.lists(actions(), min_size=1, max_size=3)),
        "stop_processing": draw(st.booleans()),
        "enabled": draw(st.booleans()),
        "order": draw(st.integers(-1000, 1000)),
    }


@settings(max_examples=200, deadline=None)
@given(rule_data())
def test_any_valid_rule_survives_a_json_round_trip(data: dict[str, Any]) -> None:
    rule = parse_rule(data)
    again = rule_to_data(rule)
    assert parse_rule(json.loads(json.dumps(again))) == rule
    assert rule_to_data(parse_rule(again)) == again


@settings(max_examples=100, deadline=None)
@given(rule_data(), st.sampled_from(list(Trigger)))
def test_evaluation_never_fails_and_explains_every_firing(data: dict[str, Any], trigger: Trigger) -> None:
    rule = parse_rule(data | {"enabled": True})
    outcome = cascade([rule], trigger, MAIL)
    assert len(outcome.firings) <= 1
    for firing in outcome.firings:
        assert firing.rule_id == rule.id
        assert firing.reasons

"""Automation rules as data: "when TRIGGER, if CONDITIONS, then ACTIONS", parsed, checked, evaluated and explained.

A rule is plain data an administrator edits (`parse_rule` / `rule_to_data`); bad data raises `RuleError`, whose
`problems` are (path, message) pairs such as ``conditions[2].value: 'abc' is not a number of hours``. Rules are
compiled once (`compile_rules`) and evaluated against a `Facts` snapshot of a conversation that the Django edge
builds; the result lists which rules fired, why (short, stable English strings stored with the rule id), the
actions in order, and the facts as the actions left them, so later rules see earlier rules' changes.

Loops are impossible by construction: `cascade` turns status, assignee and priority changes into follow-up
triggers, but a rule fires at most once per chain and the chain's depth is bounded; whatever the guard stopped is
reported in `Outcome.suppressed`. Time-based rules (`Trigger.TIME_CHECK`) fire once per conversation because the
edge passes the ids of the rules that already fired since the conversation last changed (`already_fired`).

Field and operator table (`OPERATORS_BY_KIND`):

- text (sender_address, sender_domain, subject, text): is, is_not, in, not_in, contains, not_contains,
  starts_with, ends_with, matches. Compared case-insensitively (casefold); `text` is cut to its first
  `TEXT_LIMIT` characters, and `matches` reads only the first `REGEX_TEXT_LIMIT` characters of any field.
- keyword (mailbox, language, category, priority, contact_tier, automated_kind, status, team, assignee):
  is, is_not, in, not_in; an empty value with is / is_not means "not set". `mailbox` matches the mailbox id or
  its address.
- hours (hours_since_last_reply, hours_since_customer_wrote, hours_in_status): greater_than, less_than; a fact
  that is unknown (no agent reply yet) matches neither.
- flag (has_attachments, in_business_hours): is_true, is_false (no value).
- tags: has_tag, lacks_tag (one tag), in (any of), not_in (none of).

Regular expressions are data from an administrator matched against text from anyone on the internet, so each
pattern is compiled when the rule is parsed and refused when it could backtrack badly (regex_safety.py): longer
than `MAX_PATTERN_LENGTH`, back-references, a repeated group that itself repeats (``(a+)+``), repeated
alternatives that can match the same text (``(a|ab)*``), or two unbounded repeats that can match the same
characters with nothing between them that stops the first (``\\d+\\s*\\d+``, ``.*a.*b``): Python's engine takes
exponential or cubic time on those (``.*a.*b`` needs two minutes on 5,000 "a"s). What remains is at worst
quadratic, and it only ever sees `REGEX_TEXT_LIMIT` characters.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from postdesk.mail.model import AutomatedKind
from postdesk.triage.regex_safety import compiled_pattern, regex_problem

TEXT_LIMIT = 20_000  # characters of the text that contains / starts_with / is compare
REGEX_TEXT_LIMIT = 2_000  # characters a regex reads: a quadratic pattern stays near 50 ms at worst on this prefix
MAX_VALUE_LENGTH = 500
MAX_LIST_VALUES = 200
MAX_CONDITIONS = 50
MAX_ACTIONS = 20
MAX_NOTE_LENGTH = 10_000
DEFAULT_MAX_DEPTH = 8

# The desk's Priority and Status choices, repeated here because this package may not import Django; rule data
# that names any other value is refused when parsed, so a typo ("hihg") never sits silently in a rule.
PRIORITIES = ("urgent", "high", "normal", "low")
STATUSES = ("new", "open", "pending", "snoozed", "resolved", "closed", "spam", "merged")
NOT_AUTOMATED = "none"  # the automated_kind value of mail a person wrote

_E = TypeVar("_E", bound=StrEnum)


class Trigger(StrEnum):
    CONVERSATION_CREATED = "conversation_created"
    CUSTOMER_REPLIED = "customer_replied"
    AGENT_REPLIED = "agent_replied"
    NOTE_ADDED = "note_added"
    STATUS_CHANGED = "status_changed"
    ASSIGNEE_CHANGED = "assignee_changed"
    PRIORITY_CHANGED = "priority_changed"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    TIME_CHECK = "time_check"  # periodic sweep: "pending for 3 days"


class Field(StrEnum):
    MAILBOX = "mailbox"
    SENDER_ADDRESS = "sender_address"
    SENDER_DOMAIN = "sender_domain"
    SUBJECT = "subject"
    TEXT = "text"
    LANGUAGE = "language"
    CATEGORY = "category"
    PRIORITY = "priority"
    CONTACT_TIER = "contact_tier"
    TAGS = "tags"
    HAS_ATTACHMENTS = "has_attachments"
    AUTOMATED_KIND = "automated_kind"
    IN_BUSINESS_HOURS = "in_business_hours"
    HOURS_SINCE_LAST_REPLY = "hours_since_last_reply"
    HOURS_SINCE_CUSTOMER_WROTE = "hours_since_customer_wrote"
    HOURS_IN_STATUS = "hours_in_status"
    STATUS = "status"
    TEAM = "team"
    ASSIGNEE = "assignee"


class Operator(StrEnum):
    IS = "is"
    IS_NOT = "is_not"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    MATCHES = "matches"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"
    IS_TRUE = "is_true"
    IS_FALSE = "is_false"
    HAS_TAG = "has_tag"
    LACKS_TAG = "lacks_tag"


class FieldKind(StrEnum):
    TEXT = "text"
    KEYWORD = "keyword"
    HOURS = "hours"
    FLAG = "flag"
    TAGS = "tags"


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


class ActionKind(StrEnum):
    SET_TEAM = "set_team"
    SET_ASSIGNEE = "set_assignee"
    SET_PRIORITY = "set_priority"
    SET_CATEGORY = "set_category"
    SET_STATUS = "set_status"
    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"
    ADD_NOTE = "add_note"
    SEND_TEMPLATE = "send_template"
    NOTIFY = "notify"
    CALL_WEBHOOK = "call_webhook"


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"


FIELD_KINDS: Mapping[Field, FieldKind] = {
    Field.MAILBOX: FieldKind.KEYWORD,
    Field.SENDER_ADDRESS: FieldKind.TEXT,
    Field.SENDER_DOMAIN: FieldKind.TEXT,
    Field.SUBJECT: FieldKind.TEXT,
    Field.TEXT: FieldKind.TEXT,
    Field.LANGUAGE: FieldKind.KEYWORD,
    Field.CATEGORY: FieldKind.KEYWORD,
    Field.PRIORITY: FieldKind.KEYWORD,
    Field.CONTACT_TIER: FieldKind.KEYWORD,
    Field.TAGS: FieldKind.TAGS,
    Field.HAS_ATTACHMENTS: FieldKind.FLAG,
    Field.AUTOMATED_KIND: FieldKind.KEYWORD,
    Field.IN_BUSINESS_HOURS: FieldKind.FLAG,
    Field.HOURS_SINCE_LAST_REPLY: FieldKind.HOURS,
    Field.HOURS_SINCE_CUSTOMER_WROTE: FieldKind.HOURS,
    Field.HOURS_IN_STATUS: FieldKind.HOURS,
    Field.STATUS: FieldKind.KEYWORD,
    Field.TEAM: FieldKind.KEYWORD,
    Field.ASSIGNEE: FieldKind.KEYWORD,
}

OPERATORS_BY_KIND: Mapping[FieldKind, tuple[Operator, ...]] = {
    FieldKind.TEXT: (
        Operator.IS,
        Operator.IS_NOT,
        Operator.IN,
        Operator.NOT_IN,
        Operator.CONTAINS,
        Operator.NOT_CONTAINS,
        Operator.STARTS_WITH,
        Operator.ENDS_WITH,
        Operator.MATCHES,
    ),
    FieldKind.KEYWORD: (Operator.IS, Operator.IS_NOT, Operator.IN, Operator.NOT_IN),
    FieldKind.HOURS: (Operator.GREATER_THAN, Operator.LESS_THAN),
    FieldKind.FLAG: (Operator.IS_TRUE, Operator.IS_FALSE),
    FieldKind.TAGS: (Operator.HAS_TAG, Operator.LACKS_TAG, Operator.IN, Operator.NOT_IN),
}

# Keyword fields whose values come from a fixed list: anything else in rule data is a typo.
_VOCABULARY: Mapping[Field, tuple[str, ...]] = {
    Field.PRIORITY: PRIORITIES,
    Field.STATUS: STATUSES,
    Field.AUTOMATED_KIND: (*(kind.value for kind in AutomatedKind), NOT_AUTOMATED),
}
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$", re.IGNORECASE)
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_WEB_URL = re.compile(r"^https?://[^\s/?#@]+(?:[/?#][^\s]*)?$", re.IGNORECASE)

# The follow-up trigger each fact change causes (`cascade`); other changes (tags, team) trigger nothing.
_CHANGE_TRIGGERS = (
    ("status", Trigger.STATUS_CHANGED),
    ("assignee", Trigger.ASSIGNEE_CHANGED),
    ("priority", Trigger.PRIORITY_CHANGED),
)


# ---------------------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong with rule data: where (``conditions[2].value``) and what, for an administrator."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class RuleError(ValueError):
    """Rule data that cannot become a rule; `problems` lists every problem found, not only the first."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems: tuple[RuleProblem, ...] = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


# ---------------------------------------------------------------------------------------------------------------
# The data model

ConditionValue = str | float | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Condition:
    """`field operator value`; built only through checks, so a Condition object is always valid."""

    field: Field
    operator: Operator
    value: ConditionValue = None

    def __post_init__(self) -> None:
        problems = _condition_problems(self.field, self.operator, self.value, "")
        if problems:
            raise RuleError(problems)

    def explain(self) -> str:
        """The short English reason shown when this condition holds ("subject contains 'refund'")."""
        return _explain(self)


@dataclass(frozen=True, slots=True)
class Action:
    """What a rule does. `value` for single-valued kinds, `tags` for add/remove_tags, `channels` for notify.

    notify's value is "owner" (the assignee), "supervisor" (the team's supervisors) or an agent id or email.
    """

    kind: ActionKind
    value: str = ""
    tags: tuple[str, ...] = ()
    channels: tuple[Channel, ...] = ()

    def __post_init__(self) -> None:
        problems = _action_problems(self.kind, self.value, self.tags, self.channels, "")
        if problems:
            raise RuleError(problems)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str  # stable slug: the conversation's timeline cites it
    name: str
    triggers: frozenset[Trigger]
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    match: Match = Match.ALL
    stop_processing: bool = False
    enabled: bool = True
    order: int = 0


@dataclass(frozen=True, slots=True)
class Facts:
    """The conversation as rules see it, built by the edge. Hours are computed by the edge from its clock.

    `mailbox_id`, `team` and `assignee` are ids written as strings (or emails), compared case-insensitively;
    "" means not set. `automated_kind` None means a person wrote the mail.
    """

    mailbox_id: str = ""
    mailbox_address: str = ""
    sender_address: str = ""
    subject: str = ""
    text: str = ""
    language: str = ""
    category: str = ""
    priority: str = "normal"
    contact_tier: str = ""
    tags: frozenset[str] = frozenset()
    has_attachments: bool = False
    automated_kind: AutomatedKind | None = None
    in_business_hours: bool = True
    hours_since_last_reply: float | None = None  # since an agent last replied; None: no agent reply yet
    hours_since_customer_wrote: float | None = None
    hours_in_status: float | None = None
    status: str = "new"
    team: str = ""
    assignee: str = ""

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2].strip().lower() if "@" in self.sender_address else ""


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule that fired: its id and name, why (one reason per condition that held), and its actions."""

    rule_id: str
    rule_name: str
    reasons: tuple[str, ...]
    actions: tuple[Action, ...]
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class Suppression:
    """Something the loop guard stopped: a rule that would have fired again, or a trigger past the depth limit."""

    trigger: Trigger
    reason: str
    rule_id: str = ""


# Side effects: what the edge must do beyond copying `Outcome.facts` onto the conversation.
_TAG_ACTIONS = frozenset({ActionKind.ADD_TAGS, ActionKind.REMOVE_TAGS})
SIDE_EFFECTS = frozenset({ActionKind.ADD_NOTE, ActionKind.SEND_TEMPLATE, ActionKind.NOTIFY, ActionKind.CALL_WEBHOOK})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What rules decided. Apply `facts` (team, assignee, priority, category, status, tags) and `side_effects`."""

    firings: tuple[Firing, ...]
    facts: Facts
    suppressed: tuple[Suppression, ...] = ()

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(action for firing in self.firings for action in firing.actions)

    @property
    def side_effects(self) -> tuple[tuple[str, Action], ...]:
        """(rule id, action) for notes, templates, notifications and webhooks, in order."""
        return tuple(
            (firing.rule_id, action)
            for firing in self.firings
            for action in firing.actions
            if action.kind in SIDE_EFFECTS
        )

    @property
    def fired_ids(self) -> frozenset[str]:
        return frozenset(firing.rule_id for firing in self.firings)


# ---------------------------------------------------------------------------------------------------------------
# Checking values


def _quote(value: object) -> str:
    return f"'{value}'"


def _condition_problems(fld: Field, op: Operator, value: ConditionValue, path: str) -> list[RuleProblem]:
    """Problems with an already-typed condition (parse_rule coerces raw data first)."""
    where = f"{path}." if path else ""
    kind = FIELD_KINDS[fld]
    allowed = OPERATORS_BY_KIND[kind]
    if op not in allowed:
        names = ", ".join(allowed)
        return [RuleProblem(f"{where}operator", f"{_quote(op.value)} does not apply to {fld.value} (use {names})")]
    vpath = f"{where}value"
    if kind is FieldKind.FLAG:
        return [] if value is None else [RuleProblem(vpath, f"{op.value} takes no value")]
    if kind is FieldKind.HOURS:
        if not isinstance(value, float) or not math.isfinite(value) or value < 0:
            return [RuleProblem(vpath, f"{_quote(value)} is not a number of hours")]
        return []
    if op in (Operator.IN, Operator.NOT_IN):
        if not isinstance(value, tuple) or not value:
            return [RuleProblem(vpath, "must be a non-empty list of values")]
        if len(value) > MAX_LIST_VALUES:
            return [RuleProblem(vpath, f"has more than {MAX_LIST_VALUES} values")]
        problems: list[RuleProblem] = []
        for index, item in enumerate(value):
            problems += _single_value_problems(fld, op, item, f"{vpath}[{index}]", allow_empty=False)
        return problems
    if not isinstance(value, str):
        return [RuleProblem(vpath, "must be text")]
    allow_empty = op in (Operator.IS, Operator.IS_NOT) and kind is not FieldKind.TAGS
    return _single_value_problems(fld, op, value, vpath, allow_empty=allow_empty)


def _single_value_problems(
    fld: Field, op: Operator, value: object, path: str, *, allow_empty: bool
) -> list[RuleProblem]:
    if not isinstance(value, str):
        return [RuleProblem(path, "must be text")]
    if not value.strip():
        return [] if allow_empty and value == "" else [RuleProblem(path, "is missing")]
    if len(value) > MAX_VALUE_LENGTH:
        return [RuleProblem(path, f"is longer than {MAX_VALUE_LENGTH} characters")]
    if op is Operator.MATCHES:
        problem = regex_problem(value)
        return [RuleProblem(path, problem)] if problem else []
    vocabulary = _VOCABULARY.get(fld)
    if vocabulary is not None and value.lower() not in vocabulary:
        return [RuleProblem(path, f"{_quote(value)} is not a known {_LABELS[fld]} (use {', '.join(vocabulary)})")]
    if fld is Field.LANGUAGE and not _LANGUAGE_CODE.match(value):
        return [RuleProblem(path, f"{_quote(value)} is not a language code such as 'en' or 'zh'")]
    return []


def _action_problems(
    kind: ActionKind, value: str, tags: tuple[str, ...], channels: tuple[Channel, ...], path: str
) -> list[RuleProblem]:
    where = f"{path}." if path else ""
    problems: list[RuleProblem] = []
    if kind in _TAG_ACTIONS:
        if not tags:
            problems.append(RuleProblem(f"{where}value", "must name at least one tag"))
        for index, tag in enumerate(tags):
            if not tag.strip():
                problems.append(RuleProblem(f"{where}value[{index}]", "is an empty tag"))
            elif len(tag) > 100:
                problems.append(RuleProblem(f"{where}value[{index}]", "is longer than 100 characters"))
        if value:
            problems.append(RuleProblem(f"{where}value", "tags go in `tags`, not `value`"))
    else:
        if tags:
            problems.append(RuleProblem(f"{where}value", f"{kind.value} takes one value, not a list of tags"))
        limit = MAX_NOTE_LENGTH if kind is ActionKind.ADD_NOTE else MAX_VALUE_LENGTH
        if not value.strip():
            problems.append(RuleProblem(f"{where}value", "is missing"))
        elif len(value) > limit:
            problems.append(RuleProblem(f"{where}value", f"is longer than {limit} characters"))
        elif kind is ActionKind.SET_PRIORITY and value not in PRIORITIES:
            problems.append(
                RuleProblem(f"{where}value", f"{_quote(value)} is not a priority ({', '.join(PRIORITIES)})")
            )
        elif kind is ActionKind.SET_STATUS and value not in STATUSES:
            problems.append(RuleProblem(f"{where}value", f"{_quote(value)} is not a status ({', '.join(STATUSES)})"))
        elif kind is ActionKind.SEND_TEMPLATE and not _SLUG.match(value):
            problems.append(RuleProblem(f"{where}value", f"{_quote(value)} is not a template key (a slug)"))
        elif kind is ActionKind.CALL_WEBHOOK and not _WEB_URL.match(value):
            problems.append(RuleProblem(f"{where}value", f"{_quote(value)} is not an http:// or https:// address"))
    if kind is ActionKind.NOTIFY:
        if not channels:
            problems.append(RuleProblem(f"{where}channels", "must name at least one channel (in_app, email)"))
    elif channels:
        problems.append(RuleProblem(f"{where}channels", f"only notify takes channels, not {kind.value}"))
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Parsing rule data


def parse_rule(data: Mapping[str, object]) -> Rule:
    """Rule data (as `rule_to_data` writes it, e.g. from JSON) to a Rule; raises RuleError listing every problem.

    Keys: id, name, triggers, match ("all"|"any"), conditions [{field, operator, value}], actions [{kind, value,
    channels}], stop_processing, enabled, order. Hours may be given as numbers or numeric text; add_tags and
    remove_tags take a list or comma-separated text.
    """
    problems: list[RuleProblem] = []
    if not isinstance(data, Mapping):
        raise RuleError([RuleProblem("", "a rule must be an object")])
    known = {"id", "name", "triggers", "match", "conditions", "actions", "stop_processing", "enabled", "order"}
    problems += [RuleProblem(str(key), "is not a rule setting") for key in data if key not in known]

    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        problems.append(RuleProblem("id", "is missing"))
        rule_id = ""
    elif len(rule_id) > 100 or not _SLUG.match(rule_id):
        problems.append(RuleProblem("id", f"{_quote(rule_id)} is not a slug (lower-case letters, digits, - and _)"))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(RuleProblem("name", "is missing"))
        name = ""
    elif len(name) > 200:
        problems.append(RuleProblem("name", "is longer than 200 characters"))

    triggers = _parse_enum_list(data.get("triggers"), Trigger, "triggers", "trigger", problems)
    match = _parse_enum(data.get("match", Match.ALL.value), Match, "match", "match (all or any)", problems)
    stop = _parse_bool(data.get("stop_processing", False), "stop_processing", problems)
    enabled = _parse_bool(data.get("enabled", True), "enabled", problems)
    order = data.get("order", 0)
    if not isinstance(order, int) or isinstance(order, bool):
        problems.append(RuleProblem("order", f"{_quote(order)} is not a whole number"))
        order = 0

    conditions: list[Condition] = []
    raw_conditions = data.get("conditions", [])
    if not isinstance(raw_conditions, list):
        problems.append(RuleProblem("conditions", "must be a list"))
    elif len(raw_conditions) > MAX_CONDITIONS:
        problems.append(RuleProblem("conditions", f"has more than {MAX_CONDITIONS} conditions"))
    else:
        for index, raw in enumerate(raw_conditions):
            condition = _parse_condition(raw, f"conditions[{index}]", problems)
            if condition is not None:
                conditions.append(condition)

    actions: list[Action] = []
    raw_actions = data.get("actions")
    if not isinstance(raw_actions, list) or not raw_actions:
        problems.append(RuleProblem("actions", "must be a non-empty list"))
    elif len(raw_actions) > MAX_ACTIONS:
        problems.append(RuleProblem("actions", f"has more than {MAX_ACTIONS} actions"))
    else:
        for index, raw in enumerate(raw_actions):
            action = _parse_action(raw, f"actions[{index}]", problems)
            if action is not None:
                actions.append(action)

    if problems:
        raise RuleError(problems)
    assert match is not None  # no problems means every part parsed
    return Rule(
        id=rule_id,
        name=name.strip(),
        triggers=frozenset(triggers),
        conditions=tuple(conditions),
        actions=tuple(actions),
        match=match,
        stop_processing=stop,
        enabled=enabled,
        order=order,
    )


def _parse_enum(raw: object, enum: type[_E], path: str, what: str, problems: list[RuleProblem]) -> _E | None:
    if not isinstance(raw, str) or not raw:
        problems.append(RuleProblem(path, "is missing"))
        return None
    try:
        return enum(raw)
    except ValueError:
        problems.append(RuleProblem(path, f"{_quote(raw)} is not a known {what}"))
        return None


def _parse_enum_list(raw: object, enum: type[_E], path: str, what: str, problems: list[RuleProblem]) -> list[_E]:
    if not isinstance(raw, list) or not raw:
        problems.append(RuleProblem(path, f"must be a non-empty list of {what}s"))
        return []
    parsed = [_parse_enum(item, enum, f"{path}[{index}]", what, problems) for index, item in enumerate(raw)]
    return [item for item in parsed if item is not None]


def _parse_bool(raw: object, path: str, problems: list[RuleProblem]) -> bool:
    if not isinstance(raw, bool):
        problems.append(RuleProblem(path, f"{_quote(raw)} is not true or false"))
        return False
    return raw


def _parse_condition(raw: object, path: str, problems: list[RuleProblem]) -> Condition | None:
    if not isinstance(raw, Mapping):
        problems.append(RuleProblem(path, "must be an object with field, operator and value"))
        return None
    problems += [
        RuleProblem(f"{path}.{key}", "is not a condition setting") for key in raw if key not in _CONDITION_KEYS
    ]
    fld = _parse_enum(raw.get("field"), Field, f"{path}.field", "field", problems)
    op = _parse_enum(raw.get("operator"), Operator, f"{path}.operator", "operator", problems)
    if fld is None or op is None:
        return None
    kind = FIELD_KINDS[fld]
    if op not in OPERATORS_BY_KIND[kind]:
        problems += _condition_problems(fld, op, None, path)
        return None
    value, ok = _coerce_value(fld, kind, op, raw.get("value"), "value" in raw, f"{path}.value", problems)
    if not ok:
        return None
    own = _condition_problems(fld, op, value, path)
    if own:
        problems += own
        return None
    return Condition(fld, op, value)


_CONDITION_KEYS = frozenset({"field", "operator", "value"})
_ACTION_KEYS = frozenset({"kind", "value", "channels"})
_LOWER_CASE_FIELDS = frozenset({Field.PRIORITY, Field.STATUS, Field.AUTOMATED_KIND})


def _coerce_value(
    fld: Field, kind: FieldKind, op: Operator, raw: object, present: bool, path: str, problems: list[RuleProblem]
) -> tuple[ConditionValue, bool]:
    """Raw JSON to the typed value: numbers from numeric text, ids written as numbers to text, lists to tuples."""
    if kind is FieldKind.FLAG:
        if raw is None or raw == "":
            return None, True
        problems.append(RuleProblem(path, f"{op.value} takes no value"))
        return None, False
    if not present or raw is None:
        problems.append(RuleProblem(path, "is missing"))
        return None, False
    if kind is FieldKind.HOURS:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            problems.append(RuleProblem(path, f"{_quote(raw)} is not a number of hours"))
            return None, False
        try:
            return float(raw), True
        except ValueError:
            problems.append(RuleProblem(path, f"{_quote(raw)} is not a number of hours"))
            return None, False
    if op in (Operator.IN, Operator.NOT_IN):
        if not isinstance(raw, list):
            problems.append(RuleProblem(path, "must be a list of values"))
            return None, False
        items = [_coerce_text(fld, item) for item in raw]
        bad = [index for index, item in enumerate(items) if item is None]
        for index in bad:
            problems.append(RuleProblem(f"{path}[{index}]", "must be text"))
        return tuple(item for item in items if item is not None), not bad
    text = _coerce_text(fld, raw)
    if text is None:
        problems.append(RuleProblem(path, "must be text"))
        return None, False
    return text, True


def _coerce_text(fld: Field, raw: object) -> str | None:
    if isinstance(raw, int) and not isinstance(raw, bool) and FIELD_KINDS[fld] is FieldKind.KEYWORD:
        return str(raw)  # mailbox, team and assignee ids
    if not isinstance(raw, str):
        return None
    return raw.lower() if fld in _LOWER_CASE_FIELDS else raw


def _parse_action(raw: object, path: str, problems: list[RuleProblem]) -> Action | None:
    if not isinstance(raw, Mapping):
        problems.append(RuleProblem(path, "must be an object with kind and value"))
        return None
    problems += [RuleProblem(f"{path}.{key}", "is not an action setting") for key in raw if key not in _ACTION_KEYS]
    kind = _parse_enum(raw.get("kind"), ActionKind, f"{path}.kind", "action", problems)
    if kind is None:
        return None
    raw_value = raw.get("value")
    value = ""
    tags: tuple[str, ...] = ()
    if kind in _TAG_ACTIONS:
        if isinstance(raw_value, str):
            tags = tuple(tag.strip() for tag in raw_value.split(",") if tag.strip())
        elif isinstance(raw_value, list) and all(isinstance(tag, str) for tag in raw_value):
            tags = tuple(tag.strip() for tag in raw_value)
        elif raw_value is not None:
            problems.append(RuleProblem(f"{path}.value", "must be a list of tags"))
            return None
    elif isinstance(raw_value, str):
        value = raw_value.strip()
    elif isinstance(raw_value, int) and not isinstance(raw_value, bool):
        value = str(raw_value)  # team and agent ids
    elif raw_value is not None:
        problems.append(RuleProblem(f"{path}.value", "must be text"))
        return None
    channels: tuple[Channel, ...] = ()
    if kind is ActionKind.NOTIFY:
        known_problems = len(problems)
        channels = tuple(
            _parse_enum_list(
                raw.get("channels", [Channel.IN_APP.value, Channel.EMAIL.value]),
                Channel,
                f"{path}.channels",
                "channel",
                problems,
            )
        )
        if len(problems) > known_problems:
            return None
        channels = tuple(dict.fromkeys(channels))  # once each, in the order given
    elif "channels" in raw:
        channels = (Channel.IN_APP,)  # reported by _action_problems below
    own = _action_problems(kind, value, tags, channels, path)
    if own:
        problems += own
        return None
    return Action(kind, value, tags, channels)


def rule_to_data(rule: Rule) -> dict[str, object]:
    """The JSON-able form of a rule; `parse_rule(rule_to_data(rule)) == rule`."""
    return {
        "id": rule.id,
        "name": rule.name,
        "triggers": [trigger.value for trigger in Trigger if trigger in rule.triggers],
        "match": rule.match.value,
        "conditions": [_condition_data(condition) for condition in rule.conditions],
        "actions": [_action_data(action) for action in rule.actions],
        "stop_processing": rule.stop_processing,
        "enabled": rule.enabled,
        "order": rule.order,
    }


def _condition_data(condition: Condition) -> dict[str, object]:
    data: dict[str, object] = {"field": condition.field.value, "operator": condition.operator.value}
    value = condition.value
    if isinstance(value, float):
        data["value"] = int(value) if value.is_integer() else value
    elif isinstance(value, tuple):
        data["value"] = list(value)
    elif value is not None:
        data["value"] = value
    return data


def _action_data(action: Action) -> dict[str, object]:
    data: dict[str, object] = {"kind": action.kind.value}
    data["value"] = list(action.tags) if action.kind in _TAG_ACTIONS else action.value
    if action.kind is ActionKind.NOTIFY:
        data["channels"] = [channel.value for channel in action.channels]
    return data


# ---------------------------------------------------------------------------------------------------------------
# Explanations

_LABELS: Mapping[Field, str] = {
    Field.MAILBOX: "mailbox",
    Field.SENDER_ADDRESS: "sender address",
    Field.SENDER_DOMAIN: "sender domain",
    Field.SUBJECT: "subject",
    Field.TEXT: "text",
    Field.LANGUAGE: "language",
    Field.CATEGORY: "category",
    Field.PRIORITY: "priority",
    Field.CONTACT_TIER: "contact tier",
    Field.TAGS: "tags",
    Field.HAS_ATTACHMENTS: "attachments",
    Field.AUTOMATED_KIND: "automated kind",
    Field.IN_BUSINESS_HOURS: "business hours",
    Field.HOURS_SINCE_LAST_REPLY: "hours since the last agent reply",
    Field.HOURS_SINCE_CUSTOMER_WROTE: "hours since the customer wrote",
    Field.HOURS_IN_STATUS: "hours in this status",
    Field.STATUS: "status",
    Field.TEAM: "team",
    Field.ASSIGNEE: "assignee",
}
_FLAG_REASONS: Mapping[Field, tuple[str, str]] = {
    Field.HAS_ATTACHMENTS: ("has attachments", "has no attachments"),
    Field.IN_BUSINESS_HOURS: ("in business hours", "outside business hours"),
}
_PHRASES: Mapping[Operator, str] = {
    Operator.CONTAINS: "contains",
    Operator.NOT_CONTAINS: "does not contain",
    Operator.STARTS_WITH: "starts with",
    Operator.ENDS_WITH: "ends with",
    Operator.GREATER_THAN: "is more than",
    Operator.LESS_THAN: "is less than",
}


def _explain(condition: Condition) -> str:
    label, op, value = _LABELS[condition.field], condition.operator, condition.value
    if op in (Operator.IS_TRUE, Operator.IS_FALSE):
        return _FLAG_REASONS[condition.field][op is Operator.IS_FALSE]
    if isinstance(value, float):
        return f"{label} {_PHRASES[op]} {value:g}"
    if isinstance(value, tuple):
        listed = ", ".join(_quote(item) for item in value)
        if condition.field is Field.TAGS:
            return f"has any of the tags {listed}" if op is Operator.IN else f"has none of the tags {listed}"
        return f"{label} is one of {listed}" if op is Operator.IN else f"{label} is none of {listed}"
    if op is Operator.IS:
        return f"{label} is {_quote(value)}" if value else f"{label} is empty"
    if op is Operator.IS_NOT:
        return f"{label} is not {_quote(value)}" if value else f"{label} is not empty"
    if op is Operator.MATCHES:
        return f"{label} matches /{value}/"
    if op is Operator.HAS_TAG:
        return f"has the tag {_quote(value)}"
    if op is Operator.LACKS_TAG:
        return f"lacks the tag {_quote(value)}"
    return f"{label} {_PHRASES[op]} {_quote(value)}"


# ---------------------------------------------------------------------------------------------------------------
# Evaluation

# Fields that actions can change during an evaluation; conditions on any other field are computed once per event.
_CHANGING_FIELDS = frozenset(
    {Field.CATEGORY, Field.PRIORITY, Field.STATUS, Field.TEAM, Field.ASSIGNEE, Field.TAGS, Field.HOURS_IN_STATUS}
)
# Cheap checks first, so an "all" rule stops before it scans the text or runs a regex.
_COST = {FieldKind.FLAG: 0, FieldKind.HOURS: 0, FieldKind.KEYWORD: 1, FieldKind.TAGS: 1, FieldKind.TEXT: 2}


class _Context:
    """One event's view of the facts: case-folded text computed once and shared by every rule."""

    __slots__ = ("_capped", "_folded", "_keys", "_tags", "facts", "memo")

    def __init__(self, facts: Facts, slots: int) -> None:
        self.facts = facts
        self.memo: list[bool | None] = [None] * slots
        self._folded: dict[Field, str] = {}
        self._capped: dict[Field, str] = {}
        self._keys: dict[Field, tuple[str, ...]] = {}
        self._tags: frozenset[str] | None = None

    def update(self, facts: Facts) -> None:
        self.facts = facts
        self._keys.clear()
        self._tags = None

    def raw(self, fld: Field) -> str:
        facts = self.facts
        if fld is Field.SENDER_DOMAIN:
            return facts.sender_domain
        value: str = getattr(facts, fld.value)
        return value

    def folded(self, fld: Field) -> str:
        folded = self._folded.get(fld)
        if folded is None:
            folded = self._folded[fld] = self.raw(fld)[:TEXT_LIMIT].strip().casefold()
        return folded

    def capped(self, fld: Field) -> str:
        capped = self._capped.get(fld)
        if capped is None:
            capped = self._capped[fld] = self.raw(fld)[:REGEX_TEXT_LIMIT]
        return capped

    def keys(self, fld: Field) -> tuple[str, ...]:
        keys = self._keys.get(fld)
        if keys is None:
            facts = self.facts
            if fld is Field.MAILBOX:
                found = tuple(key.strip().casefold() for key in (facts.mailbox_id, facts.mailbox_address) if key)
                keys = found or ("",)
            elif fld is Field.AUTOMATED_KIND:
                keys = (facts.automated_kind.value if facts.automated_kind else NOT_AUTOMATED,)
            else:
                keys = (str(getattr(facts, fld.value)).strip().casefold(),)
            self._keys[fld] = keys
        return keys

    def tags(self) -> frozenset[str]:
        if self._tags is None:
            self._tags = frozenset(tag.casefold() for tag in self.facts.tags)
        return self._tags


_Test = Callable[[_Context], bool]


@dataclass(frozen=True, slots=True)
class _CompiledCondition:
    test: _Test
    reason: str
    slot: int  # memo slot for conditions on facts no action changes; -1 otherwise

    def holds(self, ctx: _Context) -> bool:
        if self.slot < 0:
            return self.test(ctx)
        known = ctx.memo[self.slot]
        if known is None:
            known = ctx.memo[self.slot] = self.test(ctx)
        return known


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    declared: tuple[_CompiledCondition, ...]
    cheapest_first: tuple[_CompiledCondition, ...]

    def reasons(self, ctx: _Context) -> tuple[str, ...] | None:
        """Why the rule matches, or None when it does not."""
        if not self.declared:
            return ("no conditions",)
        if self.rule.match is Match.ALL:
            for condition in self.cheapest_first:
                if not condition.holds(ctx):
                    return None
            return tuple(condition.reason for condition in self.declared)
        held = tuple(condition.reason for condition in self.declared if condition.holds(ctx))
        return held or None


def _build_test(condition: Condition) -> _Test:
    fld, op, value = condition.field, condition.operator, condition.value
    kind = FIELD_KINDS[fld]
    if kind is FieldKind.FLAG:
        wanted = op is Operator.IS_TRUE
        attribute = fld.value
        return lambda ctx: bool(getattr(ctx.facts, attribute)) is wanted
    if kind is FieldKind.HOURS:
        assert isinstance(value, float)
        limit, attribute = value, fld.value

        def more(ctx: _Context) -> bool:
            hours: float | None = getattr(ctx.facts, attribute)
            return hours is not None and hours > limit

        def less(ctx: _Context) -> bool:
            hours: float | None = getattr(ctx.facts, attribute)
            return hours is not None and hours < limit

        return more if op is Operator.GREATER_THAN else less
    if isinstance(value, tuple):
        wanted_set = frozenset(item.strip().casefold() for item in value)
        if kind is FieldKind.TAGS:
            if op is Operator.IN:
                return lambda ctx: not ctx.tags().isdisjoint(wanted_set)
            return lambda ctx: ctx.tags().isdisjoint(wanted_set)
        if kind is FieldKind.KEYWORD:
            if op is Operator.IN:
                return lambda ctx: any(key in wanted_set for key in ctx.keys(fld))
            return lambda ctx: not any(key in wanted_set for key in ctx.keys(fld))
        if op is Operator.IN:
            return lambda ctx: ctx.folded(fld) in wanted_set
        return lambda ctx: ctx.folded(fld) not in wanted_set
    assert isinstance(value, str)
    if op is Operator.MATCHES:
        search = compiled_pattern(value).search
        return lambda ctx: search(ctx.capped(fld)) is not None
    needle = value.strip().casefold()
    if kind is FieldKind.TAGS:
        if op is Operator.HAS_TAG:
            return lambda ctx: needle in ctx.tags()
        return lambda ctx: needle not in ctx.tags()
    if kind is FieldKind.KEYWORD:
        if op is Operator.IS:
            return lambda ctx: needle in ctx.keys(fld)
        return lambda ctx: needle not in ctx.keys(fld)
    if op is Operator.IS:
        return lambda ctx: ctx.folded(fld) == needle
    if op is Operator.IS_NOT:
        return lambda ctx: ctx.folded(fld) != needle
    if op is Operator.CONTAINS:
        return lambda ctx: needle in ctx.folded(fld)
    if op is Operator.NOT_CONTAINS:
        return lambda ctx: needle not in ctx.folded(fld)
    if op is Operator.STARTS_WITH:
        return lambda ctx: ctx.folded(fld).startswith(needle)
    return lambda ctx: ctx.folded(fld).endswith(needle)


def _apply(facts: Facts, action: Action) -> Facts:
    """The facts after a set_* or tag action (others change nothing rules can see)."""
    kind, value = action.kind, action.value
    if kind is ActionKind.SET_STATUS:
        # A new status starts its own clock: "pending for 3 days" counts from here.
        return facts if facts.status == value else replace(facts, status=value, hours_in_status=0.0)
    if kind in _SET_ATTRIBUTES:
        attribute = _SET_ATTRIBUTES[kind]
        current: str = getattr(facts, attribute)
        if current.strip().casefold() == value.strip().casefold():
            return facts
        if kind is ActionKind.SET_TEAM:
            return replace(facts, team=value)
        if kind is ActionKind.SET_ASSIGNEE:
            return replace(facts, assignee=value)
        if kind is ActionKind.SET_PRIORITY:
            return replace(facts, priority=value)
        return replace(facts, category=value)
    if kind is ActionKind.ADD_TAGS:
        have = {tag.casefold() for tag in facts.tags}
        new = [tag for tag in action.tags if tag.casefold() not in have]
        return replace(facts, tags=facts.tags | frozenset(new)) if new else facts
    if kind is ActionKind.REMOVE_TAGS:
        gone = {tag.casefold() for tag in action.tags}
        kept = frozenset(tag for tag in facts.tags if tag.casefold() not in gone)
        return replace(facts, tags=kept) if kept != facts.tags else facts
    return facts


_SET_ATTRIBUTES: Mapping[ActionKind, str] = {
    ActionKind.SET_TEAM: "team",
    ActionKind.SET_ASSIGNEE: "assignee",
    ActionKind.SET_PRIORITY: "priority",
    ActionKind.SET_CATEGORY: "category",
}


class RuleSet:
    """Rules compiled once (regexes, lower-cased needles, per-trigger lists in order) for many evaluations."""

    __slots__ = ("_by_trigger", "_slots", "rules")

    def __init__(self, rules: Iterable[Rule]) -> None:
        ordered = sorted(rules, key=lambda rule: (rule.order, rule.id))
        counts = Counter(rule.id for rule in ordered)
        duplicates = sorted(rule_id for rule_id, count in counts.items() if count > 1)
        if duplicates:
            raise RuleError(
                [RuleProblem("id", f"{_quote(rule_id)} is used by more than one rule") for rule_id in duplicates]
            )
        self.rules: tuple[Rule, ...] = tuple(ordered)
        slots: dict[Condition, int] = {}
        compiled: list[_CompiledRule] = []
        for rule in self.rules:
            if not rule.enabled:
                continue
            declared = []
            for condition in rule.conditions:
                slot = -1
                if condition.field not in _CHANGING_FIELDS:
                    slot = slots.setdefault(condition, len(slots))
                declared.append(_CompiledCondition(_build_test(condition), condition.explain(), slot))
            order = sorted(range(len(declared)), key=lambda index: _COST[FIELD_KINDS[rule.conditions[index].field]])
            compiled.append(_CompiledRule(rule, tuple(declared), tuple(declared[index] for index in order)))
        self._slots = len(slots)
        self._by_trigger: dict[Trigger, tuple[_CompiledRule, ...]] = {
            trigger: tuple(item for item in compiled if trigger in item.rule.triggers) for trigger in Trigger
        }

    def evaluate(self, trigger: Trigger, facts: Facts, *, already_fired: frozenset[str] = frozenset()) -> Outcome:
        """Run the enabled rules for `trigger` once, in order; no follow-up triggers (see `cascade`)."""
        ctx = _Context(facts, self._slots)
        firings = self._round(trigger, ctx, already_fired, None, [])
        return Outcome(tuple(firings), ctx.facts)

    def cascade(
        self,
        trigger: Trigger,
        facts: Facts,
        *,
        already_fired: frozenset[str] = frozenset(),
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> Outcome:
        """Evaluate `trigger`, then the status / assignee / priority changes its actions made, and theirs, ...

        Each rule fires at most once in the whole chain and at most `max_depth` rounds of follow-ups run, so two
        rules that undo each other stop after one turn each; what was held back is in `Outcome.suppressed`.
        """
        ctx = _Context(facts, self._slots)
        firings: list[Firing] = []
        suppressed: list[Suppression] = []
        fired_in_chain: set[str] = set()
        pending: deque[tuple[Trigger, int]] = deque([(trigger, 0)])
        while pending:
            current, depth = pending.popleft()
            if depth > max_depth:
                reason = f"{current} was not evaluated: more than {max_depth} rounds of follow-up changes"
                suppressed.append(Suppression(current, reason))
                continue
            before = ctx.facts
            firings += self._round(current, ctx, already_fired, fired_in_chain, suppressed)
            for attribute, follow_up in _CHANGE_TRIGGERS:
                if getattr(before, attribute) != getattr(ctx.facts, attribute):
                    pending.append((follow_up, depth + 1))
        return Outcome(tuple(firings), ctx.facts, tuple(suppressed))

    def _round(
        self,
        trigger: Trigger,
        ctx: _Context,
        already_fired: frozenset[str],
        fired_in_chain: set[str] | None,
        suppressed: list[Suppression],
    ) -> list[Firing]:
        firings: list[Firing] = []
        for compiled in self._by_trigger[trigger]:
            rule = compiled.rule
            if rule.id in already_fired:
                continue
            reasons = compiled.reasons(ctx)
            if reasons is None:
                continue
            if fired_in_chain is not None:
                if rule.id in fired_in_chain:
                    reason = f"{_quote(rule.id)} already fired for this event; not run again on {trigger}"
                    suppressed.append(Suppression(trigger, reason, rule.id))
                    continue
                fired_in_chain.add(rule.id)
            firings.append(Firing(rule.id, rule.name, reasons, rule.actions, trigger))
            facts = ctx.facts
            for action in rule.actions:
                facts = _apply(facts, action)
            if facts is not ctx.facts:
                ctx.update(facts)
            if rule.stop_processing:
                break
        return firings


def compile_rules(rules: Iterable[Rule]) -> RuleSet:
    """Compile rules once for many evaluations; raises RuleError when two rules share an id."""
    return RuleSet(rules)


def evaluate(
    rules: Iterable[Rule] | RuleSet, trigger: Trigger, facts: Facts, *, already_fired: frozenset[str] = frozenset()
) -> Outcome:
    """Which enabled rules for `trigger` match `facts`, in order, with reasons; see RuleSet.evaluate."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    return ruleset.evaluate(trigger, facts, already_fired=already_fired)


def cascade(
    rules: Iterable[Rule] | RuleSet,
    trigger: Trigger,
    facts: Facts,
    *,
    already_fired: frozenset[str] = frozenset(),
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Outcome:
    """Evaluate `trigger` and the follow-up triggers its changes cause, loop-free; see RuleSet.cascade."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    return ruleset.cascade(trigger, facts, already_fired=already_fired, max_depth=max_depth)

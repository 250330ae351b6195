"""Admin pages for rules (issue 5): the rule definition edited as JSON and checked by triage.rules; webhook calls.

Registered when desk/admin.py imports this module. Like every admin page, only staff with the model's
permissions get here; agents work in the desk, not in the admin.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from postdesk.desk.models import Rule, WebhookCall
from postdesk.desk.rule_runner import describe_rule, rule_from_row
from postdesk.triage.rules import RuleError, RuleProblem, parse_rule, rule_to_data

if TYPE_CHECKING:
    RuleFormBase = forms.ModelForm[Rule]
    RuleAdminBase = admin.ModelAdmin[Rule]
    WebhookCallAdminBase = admin.ModelAdmin[WebhookCall]
else:
    RuleFormBase = forms.ModelForm
    RuleAdminBase = WebhookCallAdminBase = admin.ModelAdmin

# Kept in their own form fields; the same keys inside the JSON would say two different things.
ROW_KEYS = ("id", "name", "order", "enabled")

EXAMPLE = {
    "triggers": ["conversation_created"],
    "match": "all",
    "conditions": [{"field": "subject", "operator": "contains", "value": "refund"}],
    "actions": [
        {"kind": "set_team", "value": "Billing"},
        {"kind": "set_priority", "value": "high"},
        {"kind": "add_tags", "value": ["refund"]},
    ],
    "stop_processing": False,
}


def definition_of(data: dict[str, object]) -> dict[str, object]:
    """The stored definition: a rule's data form without what the row's own columns hold."""
    return {key: value for key, value in data.items() if key not in ROW_KEYS}


def pretty(definition: object) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False)


class RuleForm(RuleFormBase):
    definition_json = forms.CharField(
        label=_("Definition (JSON)"),
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false", "class": "vLargeTextField"}),
        help_text=_(
            "triggers, match (all or any), conditions [{field, operator, value}], actions [{kind, value, channels}], "
            "stop_processing. See docs/rules.md for every field, operator and action."
        ),
    )

    class Meta:
        model = Rule
        fields = ["slug", "name", "order", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        self.fields["definition_json"].initial = pretty(instance.definition if instance.pk else EXAMPLE)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        raw = cleaned.get("definition_json")
        if raw is None:
            return cleaned
        try:
            definition = json.loads(raw)
        except json.JSONDecodeError as exc:
            self.add_error(
                "definition_json",
                _("This is not valid JSON: %(error)s (line %(line)s, column %(column)s).")
                % {"error": exc.msg, "line": exc.lineno, "column": exc.colno},
            )
            return cleaned
        if not isinstance(definition, dict):
            self.add_error("definition_json", _("The definition must be a JSON object ({ … })."))
            return cleaned
        problems = [
            RuleProblem(key, "belongs in its own field above, not in the definition")
            for key in ROW_KEYS
            if key in definition
        ]
        data = {
            **definition,
            "id": cleaned.get("slug") or "",
            "name": cleaned.get("name") or "",
            "order": cleaned.get("order") or 0,
            "enabled": bool(cleaned.get("enabled")),
        }
        try:
            rule = parse_rule(data)
        except RuleError as exc:
            problems += list(exc.problems)
            rule = None
        if problems:
            self._show(problems)
            return cleaned
        assert rule is not None
        cleaned["definition"] = definition_of(rule_to_data(rule))
        return cleaned

    def _show(self, problems: list[RuleProblem]) -> None:
        """Each problem on the field it concerns, one per line: the id on the slug, the rest on the definition."""
        own_fields = {"id": "slug", "name": "name", "order": "order", "enabled": "enabled"}
        for problem in problems:
            target = own_fields.get(problem.path, "definition_json")
            if target in self.errors and target != "definition_json":
                continue  # the field's own validation already said what is wrong
            self.add_error(target, str(problem))

    def save(self, commit: bool = True) -> Rule:
        rule = super().save(commit=False)
        rule.definition = self.cleaned_data["definition"]
        # Each process compiles the rules once and recompiles when this marker moves (rule_runner.current_rules).
        rule.updated_at = timezone.now()
        if commit:
            rule.save()
        return rule


@admin.register(Rule)
class RuleAdmin(RuleAdminBase):
    form = RuleForm
    list_display = ["slug", "name", "order", "enabled", "triggers", "summary", "updated_at"]
    list_display_links = ["slug", "name"]
    list_filter = ["enabled"]
    search_fields = ["slug", "name"]
    ordering = ["order", "id"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["slug", "name", "order", "enabled", "definition_json", "created_at", "updated_at"]
    actions = ["enable", "disable"]

    @admin.display(description=_("triggers"))
    def triggers(self, row: Rule) -> str:
        found = row.definition.get("triggers") if isinstance(row.definition, dict) else None
        return ", ".join(str(item) for item in found) if isinstance(found, list) else ""

    @admin.display(description=_("summary"))
    def summary(self, row: Rule) -> str:
        try:
            return describe_rule(rule_from_row(row))
        except RuleError as exc:
            return str(_("invalid: %(problems)s") % {"problems": exc})

    def _switch(self, request: HttpRequest, queryset: QuerySet[Rule], *, enabled: bool) -> None:
        changed = queryset.exclude(enabled=enabled).update(enabled=enabled, updated_at=timezone.now())
        if enabled:
            text = ngettext("%(count)d rule enabled.", "%(count)d rules enabled.", changed)
        else:
            text = ngettext("%(count)d rule disabled.", "%(count)d rules disabled.", changed)
        self.message_user(request, text % {"count": changed}, messages.SUCCESS)

    @admin.action(description=_("Enable the selected rules"))
    def enable(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._switch(request, queryset, enabled=True)

    @admin.action(description=_("Disable the selected rules"))
    def disable(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._switch(request, queryset, enabled=False)


@admin.register(WebhookCall)
class WebhookCallAdmin(WebhookCallAdminBase):
    """What rules sent where, and how it went: read-only."""

    list_display = ["id", "rule_slug", "url", "state", "attempts", "send_after", "delivered_at", "short_error"]
    list_filter = ["state", "rule_slug"]
    search_fields = ["rule_slug", "url"]
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookCall]:
        return super().get_queryset(request).select_related("conversation")

    @admin.display(description=_("last error"))
    def short_error(self, row: WebhookCall) -> str:
        return row.last_error[:120]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookCall | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebhookCall | None = None) -> bool:
        return False

"""Admin pages for triage (docs/triage.md): urgency terms, classifier models and incidents.

Registered when desk/admin.py imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from postdesk.desk import access, training, triage_step
from postdesk.desk.models import ClassifierModel, Conversation, Incident, Priority, UrgencyTerm
from postdesk.triage import lexicon

if TYPE_CHECKING:
    UrgencyTermFormBase = forms.ModelForm[UrgencyTerm]
    UrgencyTermAdminBase = admin.ModelAdmin[UrgencyTerm]
    ClassifierModelAdminBase = admin.ModelAdmin[ClassifierModel]
    IncidentAdminBase = admin.ModelAdmin[Incident]
    IncidentMemberInlineBase = admin.TabularInline[Conversation, Incident]
else:
    UrgencyTermFormBase = forms.ModelForm
    UrgencyTermAdminBase = ClassifierModelAdminBase = IncidentAdminBase = admin.ModelAdmin
    IncidentMemberInlineBase = admin.TabularInline


class UrgencyTermForm(UrgencyTermFormBase):
    """A term is checked the way intake will use it: a term the lexicon cannot compile is a form error."""

    priority = forms.ChoiceField(
        label=_("priority"),
        choices=[(Priority.URGENT.value, Priority.URGENT.label), (Priority.HIGH.value, Priority.HIGH.label)],
        initial=Priority.HIGH.value,
    )

    class Meta:
        model = UrgencyTerm
        fields = ["term", "language", "topic", "priority"]
        help_texts = {
            "term": _("As customers write it. A word ending in * is a stem: “refund*” matches refunds, refunded."),
            "language": _("ISO 639-1 code, e.g. en, ru"),
            "topic": _("e.g. outage, payment_failed, security, legal, cancel, bug, or your own"),
        }

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        term, language = cleaned.get("term"), cleaned.get("language")
        topic, priority = cleaned.get("topic"), cleaned.get("priority")
        if term and language and topic and priority:
            try:
                candidate = lexicon.UrgencyTerm(
                    term=term, language=language.strip().lower(), topic=topic.strip(), priority=priority
                )
                found = lexicon.Lexicon([candidate]).match(term.replace("*", ""))
            except lexicon.LexiconError as exc:
                raise forms.ValidationError({"term": str(exc)}) from None
            if found is None:
                raise forms.ValidationError(
                    {
                        "term": _(
                            "The term %(term)r would never match, not even its own text; write it as customers do."
                        )
                        % {"term": term}
                    }
                )
            cleaned["language"] = candidate.language
            cleaned["topic"] = candidate.topic
        return cleaned


@admin.register(UrgencyTerm)
class UrgencyTermAdmin(UrgencyTermAdminBase):
    """Administrators' additions to the built-in urgency lexicon; intake uses them within a minute."""

    form = UrgencyTermForm
    list_display = ["term", "language", "topic", "priority", "created_at"]
    list_filter = ["language", "priority", "topic"]
    search_fields = ["term", "topic"]

    def save_model(self, request: HttpRequest, obj: UrgencyTerm, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        triage_step.forget_caches()

    def delete_model(self, request: HttpRequest, obj: UrgencyTerm) -> None:
        super().delete_model(request, obj)
        triage_step.forget_caches()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UrgencyTerm]) -> None:
        super().delete_queryset(request, queryset)
        triage_step.forget_caches()


@admin.register(ClassifierModel)
class ClassifierModelAdmin(ClassifierModelAdminBase):
    """Trained classifiers, read-only: `postdesk train` makes them; "make active" goes back to an older one."""

    list_display = [
        "id",
        "target",
        "trained_at",
        "examples",
        "label_count",
        "accuracy_shown",
        "macro_f1_shown",
        "active",
    ]
    list_filter = ["target", "active"]
    ordering = ["-trained_at", "-id"]
    actions = ["make_active"]

    def get_readonly_fields(self, request: HttpRequest, obj: ClassifierModel | None = None) -> list[str]:
        return [field.name for field in ClassifierModel._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("labels"))
    def label_count(self, row: ClassifierModel) -> int:
        return len(row.labels)

    @admin.display(description=_("accuracy"))
    def accuracy_shown(self, row: ClassifierModel) -> str:
        return f"{row.accuracy:.1%}" if row.accuracy is not None else "—"

    @admin.display(description=_("macro-F1"))
    def macro_f1_shown(self, row: ClassifierModel) -> str:
        return f"{row.macro_f1:.1%}" if row.macro_f1 is not None else "—"

    @admin.action(description=_("Make active (used for new mail)"))
    def make_active(self, request: HttpRequest, queryset: QuerySet[ClassifierModel]) -> None:
        chosen = list(queryset.order_by("target", "-trained_at", "-id"))
        targets = {row.target for row in chosen}
        if len(chosen) != len(targets):
            self.message_user(request, _("Select at most one model per target."), messages.ERROR)
            return
        for row in chosen:
            training.activate(row)
        self.message_user(request, _("The selected models are now active."), messages.SUCCESS)


class IncidentMemberInline(IncidentMemberInlineBase):
    model = Conversation
    fields = ["number", "subject", "contact_address", "status", "created_at"]
    readonly_fields = ["number", "subject", "contact_address", "status", "created_at"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = _("conversation")
    verbose_name_plural = _("conversations in this incident")

    def has_add_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(IncidentAdminBase):
    """Many customers reporting the same thing, grouped by intake; members are read-only here."""

    list_display = ["title", "mailbox", "member_count", "created_at", "resolved_at"]
    list_filter = ["mailbox"]
    search_fields = ["title"]
    ordering = ["-created_at", "-id"]
    fields = ["title", "mailbox", "created_at", "resolved_at"]
    readonly_fields = ["mailbox", "created_at"]
    inlines = [IncidentMemberInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Incident]:
        # Staff who are not superusers see only their teams' mailboxes, as on the conversation list.
        visible = access.visible_mailboxes(request.user).values("pk")
        return super().get_queryset(request).filter(mailbox__in=visible).annotate(members=Count("conversations"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("conversations"), ordering="members")
    def member_count(self, row: Incident) -> int:
        return int(getattr(row, "members", 0))

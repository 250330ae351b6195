"""Django admin for operators: teams, agents, mailboxes (credentials write-only), contacts, and the intake queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_stubs_ext import StrOrPromise

from postdesk.desk import access, secrets_box
from postdesk.desk.models import (
    AgentProfile,
    BlockedSender,
    Contact,
    ContactAddress,
    Conversation,
    Mailbox,
    OutboundMail,
    ReceivedMail,
    ReceivedState,
    Tag,
    Team,
)

# Django's admin and form classes are generic only in the type stubs, not at runtime.
if TYPE_CHECKING:
    TeamAdminBase = admin.ModelAdmin[Team]
    AgentProfileAdminBase = admin.ModelAdmin[AgentProfile]
    MailboxFormBase = forms.ModelForm[Mailbox]
    MailboxAdminBase = admin.ModelAdmin[Mailbox]
    ContactAddressInlineBase = admin.TabularInline[ContactAddress, Contact]
    ContactAdminBase = admin.ModelAdmin[Contact]
    ConversationAdminBase = admin.ModelAdmin[Conversation]
    ReceivedMailAdminBase = admin.ModelAdmin[ReceivedMail]
    BlockedSenderAdminBase = admin.ModelAdmin[BlockedSender]
    TagAdminBase = admin.ModelAdmin[Tag]
    OutboundMailAdminBase = admin.ModelAdmin[OutboundMail]
else:
    BlockedSenderAdminBase = TagAdminBase = OutboundMailAdminBase = admin.ModelAdmin
    TeamAdminBase = AgentProfileAdminBase = MailboxAdminBase = admin.ModelAdmin
    ContactAdminBase = ConversationAdminBase = ReceivedMailAdminBase = admin.ModelAdmin
    MailboxFormBase = forms.ModelForm
    ContactAddressInlineBase = admin.TabularInline


@admin.register(Team)
class TeamAdmin(TeamAdminBase):
    list_display = ["name", "assignment_mode", "language_strict", "calendar", "created_at"]
    list_filter = ["assignment_mode"]
    search_fields = ["name"]
    fields = ["name", "assignment_mode", "language_strict", "calendar"]


@admin.register(AgentProfile)
class AgentProfileAdmin(AgentProfileAdminBase):
    list_display = ["user", "role", "availability", "capacity", "languages", "skills"]
    list_filter = ["role", "teams", "availability"]
    search_fields = ["user__username", "user__email"]
    filter_horizontal = ["teams"]
    autocomplete_fields = ["user"]
    readonly_fields = ["last_assigned_at"]
    fieldsets = [
        (None, {"fields": ["user", "role", "teams"]}),
        (
            _("Routing"),
            {"fields": ["availability", "capacity", "languages", "skills", "schedule", "last_assigned_at"]},
        ),
    ]


def _write_only_password(label: StrOrPromise) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Leave empty to keep the stored password."),
    )


# Secrets typed in plain and stored only encrypted: form field name -> model field.
_SECRET_FIELDS = {
    "imap_password": "imap_password_encrypted",
    "smtp_password": "smtp_password_encrypted",
    "oauth_client_secret": "oauth_client_secret_encrypted",
    "oauth_refresh_token": "oauth_refresh_token_encrypted",
}


class MailboxForm(MailboxFormBase):
    """Passwords and OAuth secrets are typed in plain, stored only encrypted (secrets_box), never shown back."""

    imap_password = _write_only_password(_("IMAP password"))
    clear_imap_password = forms.BooleanField(label=_("Remove the stored IMAP password"), required=False)
    oauth_client_secret = _write_only_password(_("OAuth client secret"))
    clear_oauth_client_secret = forms.BooleanField(label=_("Remove the stored client secret"), required=False)
    oauth_refresh_token = _write_only_password(_("OAuth refresh token"))
    clear_oauth_refresh_token = forms.BooleanField(
        label=_("Remove the stored refresh token (access must be granted again)"), required=False
    )
    smtp_password = _write_only_password(_("SMTP password"))
    clear_smtp_password = forms.BooleanField(label=_("Remove the stored SMTP password"), required=False)

    class Meta:
        model = Mailbox
        exclude = [*_SECRET_FIELDS.values(), "oauth_access_token_encrypted", "oauth_access_token_expires_at"]

    def save(self, commit: bool = True) -> Mailbox:
        mailbox = super().save(commit=False)
        for name, stored in _SECRET_FIELDS.items():
            plain = self.cleaned_data.get(name) or ""
            if plain:
                setattr(mailbox, stored, secrets_box.encrypt(plain))
            elif self.cleaned_data.get(f"clear_{name}"):
                setattr(mailbox, stored, "")
            if stored == "oauth_refresh_token_encrypted" and (plain or self.cleaned_data.get(f"clear_{name}")):
                # An access token from the old grant must not outlive it.
                mailbox.oauth_access_token_encrypted = ""
                mailbox.oauth_access_token_expires_at = None
        if commit:
            mailbox.save()
            self.save_m2m()
        return mailbox


# Kept by Postdesk itself (fetch position and health): shown, never edited.
MAILBOX_STATE_FIELDS = (
    "imap_uidvalidity",
    "imap_last_uid",
    "last_fetch_at",
    "last_error",
    "last_error_at",
    "created_at",
)


@admin.register(Mailbox)
class MailboxAdmin(MailboxAdminBase):
    form = MailboxForm
    list_display = ["address", "name", "team", "active", "last_fetch_at", "last_error"]
    list_filter = ["active", "team"]
    search_fields = ["address", "name"]
    readonly_fields = MAILBOX_STATE_FIELDS
    fieldsets = [
        (None, {"fields": ["address", "name", "team", "active", "signature"]}),
        (_("Business hours and acknowledgement"), {"fields": ["calendar", "acknowledge", "acknowledgement_template"]}),
        (
            _("Incoming mail (IMAP)"),
            {
                "fields": [
                    "imap_host",
                    "imap_port",
                    "imap_ssl",
                    "imap_user",
                    "imap_auth",
                    "imap_password",
                    "clear_imap_password",
                    "imap_folder",
                    "imap_processed_folder",
                ]
            },
        ),
        (
            _("IMAP login with OAuth 2.0 (Gmail, Microsoft 365)"),
            {
                "classes": ["collapse"],
                "description": _(
                    "After saving, grant access once with: postdesk mailbox authorize ADDRESS. "
                    "Empty URLs and scope take the provider's."
                ),
                "fields": [
                    "oauth_provider",
                    "oauth_client_id",
                    "oauth_client_secret",
                    "clear_oauth_client_secret",
                    "oauth_authorization_url",
                    "oauth_token_url",
                    "oauth_scope",
                    "oauth_refresh_token",
                    "clear_oauth_refresh_token",
                ],
            },
        ),
        (
            _("Outgoing mail (SMTP)"),
            {
                "fields": [
                    "smtp_host",
                    "smtp_port",
                    "smtp_starttls",
                    "smtp_user",
                    "smtp_password",
                    "clear_smtp_password",
                ]
            },
        ),
        (
            _("State"),
            {"fields": MAILBOX_STATE_FIELDS},
        ),
    ]


class ContactAddressInline(ContactAddressInlineBase):
    model = ContactAddress
    extra = 1
    fields = ["address", "failing", "failing_reason", "failing_since"]


@admin.register(Contact)
class ContactAdmin(ContactAdminBase):
    list_display = ["__str__", "organisation", "tier", "language", "created_at"]
    list_filter = ["tier"]
    search_fields = ["name", "organisation", "addresses__address", "external_id"]
    inlines = [ContactAddressInline]


@admin.register(Conversation)
class ConversationAdmin(ConversationAdminBase):
    """Read-mostly: routing fields may be corrected; everything about the mail itself is fixed."""

    list_display = ["number", "subject", "mailbox", "contact_address", "status", "priority", "team", "last_message_at"]
    list_filter = ["status", "priority", "mailbox", "team"]
    search_fields = ["=number", "subject", "contact_address", "contact_name"]
    list_select_related = ["mailbox", "team"]
    ordering = ["-last_message_at", "-id"]
    show_full_result_count = False  # COUNT(*) over every conversation on each page is what DESIGN.md §11 forbids
    fields = [
        "number",
        "subject",
        "mailbox",
        "contact",
        "status",
        "priority",
        "team",
        "assignee",
        "previous",
        "merged_into",
        "message_count",
        "has_attachments",
        "created_at",
        "last_message_at",
    ]
    readonly_fields = [
        "number",
        "subject",
        "mailbox",
        "contact",
        "previous",
        "merged_into",
        "message_count",
        "has_attachments",
        "created_at",
        "last_message_at",
    ]
    raw_id_fields = ["assignee"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        # Staff who are not superusers still see only their teams' mailboxes.
        return super().get_queryset(request).filter(pk__in=access.visible_conversations(request.user).values("pk"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(ReceivedMail)
class ReceivedMailAdmin(ReceivedMailAdminBase):
    """The intake queue, read-only; failed rows can be replayed."""

    list_display = ["id", "mailbox", "source", "state", "received_at", "attempts", "message_id", "short_error"]
    list_filter = ["state", "source", "mailbox"]
    search_fields = ["message_id", "envelope_from", "raw_sha256"]
    list_select_related = ["mailbox"]
    ordering = ["-received_at", "-id"]
    show_full_result_count = False
    actions = ["replay_failed"]

    def get_readonly_fields(self, request: HttpRequest, obj: ReceivedMail | None = None) -> list[str]:
        return [field.name for field in ReceivedMail._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ReceivedMail | None = None) -> bool:
        return False

    @admin.display(description=_("error"))
    def short_error(self, row: ReceivedMail) -> str:
        return row.error.splitlines()[0][:120] if row.error else ""

    @admin.action(description=_("Replay failed mail"))
    def replay_failed(self, request: HttpRequest, queryset: QuerySet[ReceivedMail]) -> None:
        ids = replay_failed_rows(queryset)
        if not ids:
            self.message_user(request, _("None of the selected mails had failed."), messages.WARNING)
            return
        self.message_user(
            request,
            ngettext("Queued %(count)d failed mail again.", "Queued %(count)d failed mails again.", len(ids))
            % {"count": len(ids)},
            messages.SUCCESS,
        )


def replay_failed_rows(rows: QuerySet[ReceivedMail]) -> list[int]:
    """Set the failed rows among `rows` back to waiting and queue them; returns their ids."""
    from postdesk.jobs import process_received_mail

    with transaction.atomic():
        # No row lock needed: processing twice is harmless (it re-checks the state under a lock).
        ids = list(rows.filter(state=ReceivedState.FAILED).order_by("received_at", "id").values_list("pk", flat=True))
        ReceivedMail.objects.filter(pk__in=ids, state=ReceivedState.FAILED).update(state=ReceivedState.WAITING)

        def enqueue() -> None:
            for received_mail_id in ids:
                process_received_mail(received_mail_id)

        # Queued only once the rows are committed as waiting, or the job would find them still failed.
        transaction.on_commit(enqueue)
    return ids


@admin.register(BlockedSender)
class BlockedSenderAdmin(BlockedSenderAdminBase):
    """Senders (or "@domain"s) whose mail is filed as spam on arrival; agents add them with "spam and block"."""

    list_display = ["pattern", "created_by", "created_at"]
    search_fields = ["pattern"]
    readonly_fields = ["created_by", "created_at"]


@admin.register(Tag)
class TagAdmin(TagAdminBase):
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(OutboundMail)
class OutboundMailAdmin(OutboundMailAdminBase):
    """The outbox, read-only: what is waiting, sent or failed, and why."""

    list_display = ["message", "mailbox", "state", "attempts", "send_after", "sent_at", "last_error"]
    list_filter = ["state", "mailbox"]
    list_select_related = ["mailbox", "message"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboundMail]:
        visible = access.visible_conversations(request.user).values("pk")
        return super().get_queryset(request).filter(message__conversation__in=visible)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboundMail | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboundMail | None = None) -> bool:
        return False


from postdesk.desk import admin_rules, admin_sla, admin_triage  # noqa: E402, F401  (they register their pages)

"""The data model: mailboxes, teams, agents, contacts, conversations, messages and the durable intake queue.

List rows carry what a list shows; bodies, HTML and raw mail live on messages and blobs (DESIGN.md §11).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q, Value
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AssignmentMode(models.TextChoices):
    MANUAL = "manual", _("Manual")
    ROUND_ROBIN = "round_robin", _("Round robin")
    LEAST_LOADED = "least_loaded", _("Least loaded")


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    assignment_mode = models.CharField(
        _("assignment"),
        max_length=20,
        choices=AssignmentMode.choices,
        default=AssignmentMode.MANUAL,
        db_default=AssignmentMode.MANUAL,
    )
    language_strict = models.BooleanField(
        _("only agents who speak the customer's language"),
        default=False,
        db_default=False,
        help_text=_("When nobody online speaks the language, the conversation waits in the team queue."),
    )
    calendar = models.ForeignKey(
        "BusinessCalendar",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("business hours"),
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    SUPERVISOR = "supervisor", _("Supervisor")
    AGENT = "agent", _("Agent")
    COLLABORATOR = "collaborator", _("Collaborator")


class Availability(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


class AgentProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.AGENT)
    teams = models.ManyToManyField(Team, related_name="agents", blank=True)
    # Routing (triage/assignment.py): who may take what, and how much.
    skills = models.JSONField(_("skills"), default=list, db_default=Value([], models.JSONField()), blank=True)
    languages = models.JSONField(
        _("languages"),
        default=list,
        db_default=Value([], models.JSONField()),
        blank=True,
        help_text=_("ISO 639-1 codes, e.g. en, ru"),
    )
    capacity = models.PositiveIntegerField(
        _("capacity"), null=True, blank=True, help_text=_("At most this many open conversations; empty = no limit.")
    )
    availability = models.CharField(
        _("availability"),
        max_length=10,
        choices=Availability.choices,
        default=Availability.ONLINE,
        db_default=Availability.ONLINE,
    )
    schedule = models.ForeignKey(
        "BusinessCalendar",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("shift schedule"),
        help_text=_("Outside these hours the agent is off shift and gets no new conversations."),
    )
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


_web_url = URLValidator(schemes=["https", "http"])


class ImapAuth(models.TextChoices):
    PASSWORD = "password", _("Password")
    XOAUTH2 = "xoauth2", _("OAuth 2.0 (XOAUTH2)")


class Mailbox(models.Model):
    """A support address, how its mail comes in and goes out."""

    address = models.EmailField(_("address"), max_length=254)
    name = models.CharField(_("name"), max_length=200, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="mailboxes")
    signature = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    calendar = models.ForeignKey(
        "BusinessCalendar",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("business hours"),
        help_text=_("Used for SLA clocks and the acknowledgement's promise; empty = the team's, else 24x7."),
    )
    acknowledge = models.BooleanField(
        _("send an acknowledgement"),
        default=False,
        db_default=False,
        help_text=_("Tell each new customer when to expect an answer (once per conversation, never to robots)."),
    )
    acknowledgement_template = models.CharField(
        _("acknowledgement template key"),
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text=_("The key of the reply template to send; its translations are chosen by the customer's language."),
    )

    imap_host = models.CharField(max_length=255, blank=True)
    imap_port = models.PositiveIntegerField(default=993)
    imap_ssl = models.BooleanField(default=True)
    imap_user = models.CharField(max_length=255, blank=True)
    imap_auth = models.CharField(max_length=10, choices=ImapAuth.choices, default=ImapAuth.PASSWORD)
    imap_password_encrypted = models.TextField(blank=True)
    imap_folder = models.CharField(max_length=255, default="INBOX")
    imap_processed_folder = models.CharField(
        max_length=255, blank=True, help_text=_("Move fetched mail here; empty keeps it and sets \\Seen.")
    )
    imap_uidvalidity = models.BigIntegerField(null=True, blank=True)
    imap_last_uid = models.BigIntegerField(default=0)

    # XOAUTH2 (Gmail, Microsoft 365): the client registration, and the tokens `postdesk mailbox
    # authorize` obtained; the access token is cached so that every process need not refresh it.
    oauth_provider = models.CharField(
        max_length=20,
        blank=True,
        choices=[("", _("Other (give the URLs)")), ("google", "Google"), ("microsoft", "Microsoft")],
    )
    oauth_client_id = models.CharField(max_length=255, blank=True)
    oauth_client_secret_encrypted = models.TextField(blank=True)
    oauth_authorization_url = models.CharField(max_length=500, blank=True, validators=[_web_url])
    oauth_token_url = models.CharField(max_length=500, blank=True, validators=[_web_url])
    oauth_scope = models.CharField(max_length=500, blank=True)
    oauth_refresh_token_encrypted = models.TextField(blank=True)
    oauth_access_token_encrypted = models.TextField(blank=True)
    oauth_access_token_expires_at = models.DateTimeField(null=True, blank=True)

    smtp_host = models.CharField(max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(default=587)
    smtp_starttls = models.BooleanField(default=True)
    smtp_user = models.CharField(max_length=255, blank=True)
    smtp_password_encrypted = models.TextField(blank=True)

    last_fetch_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "mailboxes"
        constraints = [models.UniqueConstraint(fields=["address"], name="mailbox_address_unique")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Stored lowercased so recipient lookups are an indexed equality (DESIGN.md §11).
        self.address = self.address.strip().lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.address

    @property
    def has_imap(self) -> bool:
        return bool(self.imap_host and self.imap_user)


class Tier(models.TextChoices):
    STANDARD = "standard", _("Standard")
    VIP = "vip", _("VIP")


class Contact(models.Model):
    name = models.CharField(max_length=200, blank=True)
    organisation = models.CharField(max_length=200, blank=True)
    language = models.CharField(max_length=16, blank=True)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.STANDARD)
    notes = models.TextField(blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name or f"contact {self.pk}"


class ContactAddress(models.Model):
    """One of a contact's addresses, stored lowercased so lookups are case-insensitive and indexed."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="addresses")
    address = models.CharField(max_length=320, unique=True)
    failing = models.BooleanField(default=False)
    failing_reason = models.CharField(max_length=500, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.address = self.address.strip().lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.address


class Status(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending")
    SNOOZED = "snoozed", _("Snoozed")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    SPAM = "spam", _("Spam")
    MERGED = "merged", _("Merged")


class Priority(models.TextChoices):
    URGENT = "urgent", _("Urgent")
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")
    LOW = "low", _("Low")


PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name = " ".join(self.name.split()).lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.name


class DecisionSource(models.TextChoices):
    RULE = "rule", _("a rule")
    MODEL = "model", _("the classifier")
    LEXICON = "lexicon", _("the urgency lexicon")
    AGENT = "agent", _("an agent")


class Conversation(models.Model):
    number = models.PositiveBigIntegerField(unique=True)
    subject = models.CharField(max_length=998, blank=True)
    subject_key = models.CharField(max_length=255, blank=True, help_text="normalised subject for threading")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NORMAL)
    # 0 = urgent … 3 = low, kept by save() so lists sort by priority through an index.
    priority_rank = models.PositiveSmallIntegerField(default=PRIORITY_RANK[Priority.NORMAL])
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply_token = models.CharField(max_length=40, unique=True)
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followups",
        help_text="the earlier conversation this one continues",
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="conversations")
    followers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="followed_conversations")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # Since when the customer has been waiting for an answer (their oldest unanswered mail); None when
    # the last word is ours. "Oldest waiting" lists sort by it.
    waiting_since = models.DateTimeField(null=True, blank=True)

    # What a list row shows, kept here so lists never touch message bodies.
    contact_name = models.CharField(max_length=200, blank=True)
    contact_address = models.CharField(max_length=320, blank=True)
    snippet = models.CharField(max_length=200, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    has_attachments = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    # Triage (postdesk.triage): what the mail is about, how sure we are, and who decided.
    # db_default: rows written by COPY (bench/seed.py) and older code paths get the same empty values.
    language = models.CharField(max_length=16, blank=True, default="", db_default="")
    category = models.CharField(max_length=100, blank=True, default="", db_default="")
    category_confidence = models.FloatField(null=True, blank=True)
    category_source = models.CharField(
        max_length=10, choices=DecisionSource.choices, blank=True, default="", db_default=""
    )
    priority_source = models.CharField(
        max_length=10, choices=DecisionSource.choices, blank=True, default="", db_default=""
    )
    priority_confidence = models.FloatField(null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="repeats",
        help_text="the customer's open conversation this one asks again about",
    )
    incident = models.ForeignKey(
        "Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    signature = models.CharField(
        max_length=2000,
        blank=True,
        default="",
        db_default="",
        help_text="duplicate-detection signature of the first mail",
    )

    # SLA clocks (postdesk.sla), as due_at columns a periodic job sweeps (DESIGN.md §7).
    sla_policy = models.ForeignKey("SlaPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    next_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    # The earliest of the running deadlines: what lists show and sort by.
    sla_due_at = models.DateTimeField(null=True, blank=True)
    # While paused (waiting on the customer): business seconds left per target, e.g. {"resolution": 5400}.
    sla_paused = models.JSONField(default=dict, db_default=Value({}, models.JSONField()), blank=True)
    # When the sweeper must look next (the next warning or breach); None when nothing is pending.
    sla_check_at = models.DateTimeField(null=True, blank=True)
    # Warnings and breaches already announced, as "target:kind:due_at-isoformat", so each is sent once.
    sla_notices = models.JSONField(default=list, db_default=Value([], models.JSONField()), blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["mailbox", "status", "last_message_at", "id"], name="conv_mailbox_list"),
            models.Index(fields=["team", "status", "last_message_at", "id"], name="conv_team_list"),
            models.Index(fields=["assignee", "status", "last_message_at", "id"], name="conv_assignee_list"),
            models.Index(fields=["status", "last_message_at", "id"], name="conv_status_list"),
            models.Index(fields=["contact", "subject_key", "last_message_at"], name="conv_contact_subject"),
            models.Index(fields=["status", "snoozed_until"], name="conv_snoozed"),
            # Folders ask for several statuses at once (new + open), which the (…, status, sort key) indexes
            # cannot return in order; these walk one mailbox (or, for admins, everything) in sort order.
            models.Index(fields=["mailbox", "last_message_at", "id"], name="conv_mailbox_recent"),
            models.Index(fields=["mailbox", "waiting_since", "id"], name="conv_mailbox_waiting"),
            models.Index(fields=["mailbox", "priority_rank", "-last_message_at", "-id"], name="conv_mailbox_priority"),
            models.Index(fields=["mailbox", "status", "waiting_since", "id"], name="conv_mailbox_status_waiting"),
            models.Index(fields=["last_message_at", "id"], name="conv_recent"),
            models.Index(fields=["waiting_since", "id"], name="conv_waiting"),
            models.Index(fields=["priority_rank", "-last_message_at", "-id"], name="conv_priority"),
            models.Index(fields=["status", "waiting_since", "id"], name="conv_status_waiting"),
            models.Index(fields=["mailbox", "sla_due_at", "id"], name="conv_mailbox_due"),
            models.Index(fields=["sla_due_at", "id"], name="conv_due"),
            models.Index(fields=["sla_check_at"], name="conv_sla_check"),
            # "Oldest waiting" in Resolved, Pending and Snoozed walk rows of other statuses without these
            # (measured at 100k: 21-48 ms → 0.02 ms for Resolved; docs/benchmarks.md).
            models.Index(
                fields=["waiting_since", "id"],
                condition=Q(status__in=["resolved", "closed"], waiting_since__isnull=False),
                name="conv_resolved_waiting",
            ),
            models.Index(
                fields=["id"],
                condition=Q(status__in=["pending", "snoozed"], waiting_since__isnull=True),
                name="conv_parked_not_waiting",
            ),
            # The agents' Unassigned and team counts (mailbox IN … AND status IN … AND assignee IS NULL).
            models.Index(fields=["mailbox", "status", "assignee"], name="conv_mailbox_status_assignee"),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.priority_rank = PRIORITY_RANK.get(Priority(self.priority), PRIORITY_RANK[Priority.NORMAL])
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "priority" in update_fields:
            kwargs["update_fields"] = {*update_fields, "priority_rank"}
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"


class Direction(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")
    NOTE = "note", _("Internal note")
    EVENT = "event", _("Event")


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=16, choices=Direction.choices)
    # NULL, not "", when a mail has none: a plain unique index then serves every lookup (a partial index
    # `WHERE message_id <> ''` is not used for `message_id = ?` by SQLite's planner).
    message_id = models.CharField(max_length=998, null=True, blank=True)
    in_reply_to = models.JSONField(default=list, blank=True)
    references = models.JSONField(default=list, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)  # only on mail we send
    reply_to = models.JSONField(default=list, blank=True)
    date = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="sanitised")
    visible_text = models.TextField(blank=True)
    # The sanitised HTML without its quoted history; empty when the HTML holds no history to cut.
    visible_html = models.TextField(blank=True)
    quoted_text = models.TextField(blank=True)
    signature = models.TextField(blank=True)
    automated_kind = models.CharField(max_length=20, blank=True)
    automated_reason = models.CharField(max_length=500, blank=True)
    problems = models.JSONField(default=list, blank=True)
    received_mail = models.OneToOneField(
        "ReceivedMail", null=True, blank=True, on_delete=models.SET_NULL, related_name="message"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # An outbound message that forwards the conversation to someone else rather than answering it.
    forwarded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["conversation", "created_at", "id"], name="message_thread_order")]
        constraints = [models.UniqueConstraint(fields=["mailbox", "message_id"], name="message_id_per_mailbox")]

    def __str__(self) -> str:
        return f"{self.direction} {self.message_id or self.pk}"


class Attachment(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=500)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    content_id = models.CharField(max_length=998, blank=True)
    inline = models.BooleanField(default=False)
    # The forwarded mail (.eml attachment of the same message) this file was inside, if any.
    enclosed_in = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return self.filename


class ThreadRef(models.Model):
    """A thread key (a Message-ID, or an Outlook Thread-Index root) known to belong to a conversation.

    Every Message-ID a message carries or references is recorded, so a parent that arrives after
    its reply still finds the conversation the reply opened.
    """

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=998)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "key"], name="thread_ref_unique")]


class Source(models.TextChoices):
    SMTP = "smtp", _("SMTP")
    IMAP = "imap", _("IMAP")
    IMPORT = "import", _("Import")
    API = "api", _("API")


class ReceivedState(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")


class ReceivedMail(models.Model):
    """A raw mail accepted for a mailbox: the durable queue between accepting and processing."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="received")
    raw_sha256 = models.CharField(max_length=64)
    raw_size = models.PositiveBigIntegerField()
    message_id = models.CharField(max_length=998, null=True, blank=True)  # NULL when none, as on Message
    envelope_from = models.CharField(max_length=320, blank=True)
    envelope_to = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_ref = models.CharField(max_length=500, blank=True)
    quiet = models.BooleanField(default=False, help_text="imported history: send no automatic mail")
    received_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=16, choices=ReceivedState.choices, default=ReceivedState.WAITING)
    steps = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "received_at"], name="received_state_age")]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "raw_sha256"], name="received_raw_per_mailbox"),
            models.UniqueConstraint(fields=["mailbox", "message_id"], name="received_msgid_per_mailbox"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.raw_sha256[:12]} ({self.state})"


class Counter(models.Model):
    """Named sequences (conversation numbers), incremented under a row lock."""

    name = models.CharField(max_length=50, primary_key=True)
    value = models.PositiveBigIntegerField(default=0)


class EventKind(models.TextChoices):
    RECEIVED = "received", _("Customer wrote")
    REPLIED = "replied", _("Replied")
    FORWARDED = "forwarded", _("Forwarded")
    NOTED = "noted", _("Added a note")
    ASSIGNED = "assigned", _("Assigned")
    STATUS = "status", _("Changed the status")
    PRIORITY = "priority", _("Changed the priority")
    SNOOZED = "snoozed", _("Snoozed")
    WOKE = "woke", _("Woke up")
    TAGGED = "tagged", _("Changed the tags")
    FOLLOWED = "followed", _("Changed the followers")
    MERGED = "merged", _("Merged")
    SPLIT = "split", _("Split")
    SPAM = "spam", _("Marked as spam")
    SEND_FAILED = "send_failed", _("Sending failed")
    SEND_CANCELLED = "send_cancelled", _("Sending undone")
    TRIAGED = "triaged", _("Triaged")
    CATEGORY = "category", _("Changed the category")
    RULE_FIRED = "rule_fired", _("Rule applied")
    ROUTED = "routed", _("Routed")
    SLA = "sla", _("SLA")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    LINKED = "linked", _("Linked")


class Event(models.Model):
    """One entry of a conversation's timeline: who did what, when. Written in the same transaction as the change.

    Event ids only grow, so "what happened since I opened it" is `id > the id the page was rendered with`.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["conversation", "id"], name="event_timeline")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.conversation_id}"


class OutboundState(models.TextChoices):
    QUEUED = "queued", _("Queued")  # waiting for its undo window to pass, or for a retry
    SENDING = "sending", _("Sending")  # handed to the SMTP relay; whether it accepted is not yet recorded
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class OutboundMail(models.Model):
    """The outbox: one row per mail we send, written in the same transaction as its Message (DESIGN.md §6).

    The MIME bytes are composed once, when the row is written, and stored as a blob, so a retry sends
    exactly the same mail with the same Message-ID.
    """

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="outbound")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=OutboundState.choices, default=OutboundState.QUEUED)
    envelope_from = models.CharField(max_length=320)
    recipients = models.JSONField(default=list)  # envelope recipients: To, Cc and Bcc
    raw_sha256 = models.CharField(max_length=64, blank=True)
    send_after = models.DateTimeField(default=timezone.now, help_text="the end of the undo window, or the next retry")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["state", "send_after"], name="outbound_due")]

    def __str__(self) -> str:
        return f"outbound {self.message_id} ({self.state})"


class DraftKind(models.TextChoices):
    REPLY = "reply", _("Reply")
    NOTE = "note", _("Note")
    FORWARD = "forward", _("Forward")


class Draft(models.Model):
    """What an agent is writing on a conversation, saved as they type and visible to teammates."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="drafts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=DraftKind.choices, default=DraftKind.REPLY)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # A reply and a note can be in progress at once; each kind has one draft per agent.
        constraints = [
            models.UniqueConstraint(fields=["conversation", "author", "kind"], name="draft_per_agent_and_kind")
        ]


class SavedView(models.Model):
    """A named inbox filter; `filters` holds the same keys as the list page's query string."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(_("name"), max_length=100)
    filters = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    """Something an agent should look at: an @mention in a note, a failed send."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=500)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["recipient", "read_at", "id"], name="notification_inbox")]


class BlockedSender(models.Model):
    """Mail from this address (or, when it starts with "@", this domain) is filed as spam on arrival."""

    pattern = models.CharField(max_length=320, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pattern = self.pattern.strip().lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.pattern


class BusinessCalendar(models.Model):
    """Business hours of a team, a mailbox or an agent's shift: a time zone, weekly hours and holidays."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    # {"mon": ["09:00-17:00"], "tue": [...], ..., "sun": []}; parsed by sla.business_hours.parse_weekly_hours.
    weekly_hours = models.JSONField(_("weekly hours"), default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_once_per_calendar")]
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SlaPolicy(models.Model):
    """Targets for first response, next response and resolution, chosen by conditions (the first match by order)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    order = models.IntegerField(_("order"), default=0)
    enabled = models.BooleanField(_("enabled"), default=True)
    # Conditions; an empty list means any.
    priorities = models.JSONField(_("priorities"), default=list, blank=True)
    mailboxes = models.ManyToManyField(Mailbox, blank=True, related_name="+", verbose_name=_("mailboxes"))
    categories = models.JSONField(_("categories"), default=list, blank=True)
    tiers = models.JSONField(_("contact tiers"), default=list, blank=True)
    calendar = models.ForeignKey(
        BusinessCalendar,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("business hours"),
        help_text=_("Empty = the mailbox's business hours."),
    )
    first_response_minutes = models.PositiveIntegerField(_("first response (business minutes)"), null=True, blank=True)
    next_response_minutes = models.PositiveIntegerField(_("next response (business minutes)"), null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(_("resolution (business minutes)"), null=True, blank=True)
    warn_before_minutes = models.PositiveIntegerField(_("warn this many minutes before a breach"), default=30)
    # Escalation on breach.
    notify_owner = models.BooleanField(_("notify the assignee"), default=True)
    notify_supervisor = models.BooleanField(_("notify the team's supervisors"), default=True)
    raise_priority = models.BooleanField(_("raise the priority one step"), default=False)
    reassign_to = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("hand over to team")
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order", "id"]
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return self.name


class ReplyTemplate(models.Model):
    """A canned reply; rows sharing a key are translations of one template, chosen by the customer's language."""

    key = models.SlugField(_("key"), max_length=100)
    language = models.CharField(_("language"), max_length=16, blank=True, help_text=_("Empty = the default text."))
    name = models.CharField(_("name"), max_length=200)
    subject = models.CharField(_("subject"), max_length=500, blank=True, help_text=_("Empty = Re: the conversation's."))
    body = models.TextField(
        _("body"), help_text=_("Placeholders: {customer_name}, {number}, {subject}, {promised_time}, {mailbox}.")
    )
    mailbox = models.ForeignKey(
        Mailbox,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("Empty = every mailbox."),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "language", "mailbox"], name="template_translation_once")]

    def __str__(self) -> str:
        return f"{self.key} ({self.language or 'default'})"


class Rule(models.Model):
    """An automation rule: "when TRIGGER, if CONDITIONS, then ACTIONS"; `definition` is triage.rules' data form."""

    slug = models.SlugField(_("id"), max_length=100, unique=True, help_text=_("Stable: the timeline cites it."))
    name = models.CharField(_("name"), max_length=200)
    order = models.IntegerField(_("order"), default=0)
    enabled = models.BooleanField(_("enabled"), default=True)
    definition = models.JSONField(_("definition"), default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.slug}: {self.name}"


class Incident(models.Model):
    """Many customers reporting the same thing in a short time, grouped so one answer serves them all."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(_("title"), max_length=500)
    signature = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.title


class UrgencyTerm(models.Model):
    """An administrator's addition to the built-in urgency lexicon (triage/lexicon.py)."""

    term = models.CharField(_("term"), max_length=200)
    language = models.CharField(_("language"), max_length=16)
    topic = models.CharField(_("topic"), max_length=50)
    priority = models.CharField(_("priority"), max_length=16, choices=Priority.choices, default=Priority.HIGH)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["term", "language"], name="urgency_term_once")]

    def __str__(self) -> str:
        return f"{self.term} ({self.language})"


class ClassifierTarget(models.TextChoices):
    CATEGORY = "category", _("Category")
    PRIORITY = "priority", _("Priority")


class ClassifierModel(models.Model):
    """A trained classifier; the newest active one per target is used. The model file is a blob."""

    target = models.CharField(max_length=10, choices=ClassifierTarget.choices)
    blob_sha256 = models.CharField(max_length=64)
    examples = models.PositiveIntegerField()
    labels = models.JSONField(default=list)
    accuracy = models.FloatField(null=True, blank=True)
    macro_f1 = models.FloatField(null=True, blank=True)
    active = models.BooleanField(default=True)
    trained_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["target", "active", "trained_at"], name="classifier_current")]


class AutoReplyKind(models.TextChoices):
    ACKNOWLEDGEMENT = "ack", _("Acknowledgement")
    RULE = "rule", _("Rule reply")


class AutoReply(models.Model):
    """Every automatic mail we sent, so each sender gets at most N a day and each conversation one acknowledgement."""

    address = models.CharField(max_length=320)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=AutoReplyKind.choices)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["address", "sent_at"], name="auto_reply_per_sender")]


class WebhookState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookCall(models.Model):
    """A rule's call_webhook action, delivered by a worker with retries so a slow endpoint never blocks intake."""

    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule_slug = models.CharField(max_length=100, blank=True)
    url = models.CharField(max_length=2000, validators=[_web_url])
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=WebhookState.choices, default=WebhookState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    send_after = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["state", "send_after"], name="webhook_due")]


class IdempotentRequest(models.Model):
    """An API write made with an Idempotency-Key: a retry with the same key gets the first answer, not a second mail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")]

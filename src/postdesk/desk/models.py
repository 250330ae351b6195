"""The data model: mailboxes, teams, agents, contacts, conversations, messages and the durable intake queue.

List rows carry what a list shows; bodies, HTML and raw mail live on messages and blobs (DESIGN.md §11).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    SUPERVISOR = "supervisor", _("Supervisor")
    AGENT = "agent", _("Agent")
    COLLABORATOR = "collaborator", _("Collaborator")


class AgentProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.AGENT)
    teams = models.ManyToManyField(Team, related_name="agents", blank=True)

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

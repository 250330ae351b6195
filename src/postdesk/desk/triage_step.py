"""The triage step of intake: language, category, priority, duplicates and incidents for a customer's mail.

`understand` runs before the intake transaction: CPU work on the parsed mail, plus cached reads of the
urgency terms and the active classifier models (never a write). `apply` writes its decisions inside the
intake transaction, records them as a TRIAGED event (with the confidences and why), and links repeats and
incidents with LINKED events. `explain` turns the stored decisions back into lines for the conversation page.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db.models import Q
from django.utils.translation import get_language_info
from django.utils.translation import gettext as _

from postdesk.desk import live
from postdesk.desk.blobs import default_store
from postdesk.desk.models import (
    PRIORITY_RANK,
    ClassifierModel,
    ClassifierTarget,
    Contact,
    Conversation,
    DecisionSource,
    Event,
    EventKind,
    Incident,
    Message,
    Priority,
    Status,
)
from postdesk.desk.models import UrgencyTerm as UrgencyTermRow
from postdesk.mail.model import AutomatedVerdict, ParsedMessage, ReplyParts
from postdesk.triage import classify, duplicates, lexicon
from postdesk.triage.language import Detection, LanguageDetector

log = logging.getLogger(__name__)

# The classifiers and the lexicon read at most this much of a mail: what decides is near the top, and a
# pasted log file must not cost seconds.
MAX_TEXT = 20_000
# Incident candidates: the newest conversations of the mailbox within the window, at most this many.
MAX_INCIDENT_CANDIDATES = 500
# Conversations that are no longer waiting for an answer are not "open" for repeat detection.
_CLOSED = (Status.RESOLVED, Status.CLOSED, Status.SPAM, Status.MERGED)


# --- what the mail is about ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the mail is about, decided from its text alone (before it is stored).

    `category` and `priority` are the classifiers' best guesses whatever their confidence (apply()
    decides whether they are sure enough); `*_model` is the ClassifierModel that made the guess.
    `signature` is the duplicate-detection signature (`duplicates.Signature.to_str()`), "" for
    automated mail and mail without words.
    """

    language: Detection = field(default_factory=lambda: Detection(language=None, confidence=0.0))
    urgency: lexicon.UrgencyMatch | None = None
    category: classify.Prediction | None = None
    priority: classify.Prediction | None = None
    signature: str = ""
    automated: bool = False
    category_model: int | None = None
    priority_model: int | None = None

    def __str__(self) -> str:
        parts = [
            f"language {self.language.language} ({_percent(self.language.confidence)})"
            if self.language.language
            else "language unknown"
        ]
        if self.automated:
            parts.append("automated mail: no urgency, category or priority")
        if self.urgency is not None:
            parts.append(f"urgency {self.urgency.priority} ({lexicon_reason(self.urgency)})")
        if self.category is not None:
            parts.append(f"category {self.category.label} ({_percent(self.category.confidence)})")
        if self.priority is not None:
            parts.append(f"priority {self.priority.label} ({_percent(self.priority.confidence)})")
        return ", ".join(parts)


def classifier_text(subject: str, visible_text: str) -> str:
    """The text the classifiers see for a mail; training uses the same, so that both see alike."""
    return f"{subject.strip()}\n{visible_text.strip()}"[:MAX_TEXT]


def lexicon_reason(match: lexicon.UrgencyMatch) -> str:
    """'lexicon: outage term 'is down' (en)': why the lexicon chose a priority."""
    return f"lexicon: {match.topic.replace('_', ' ')} term {match.term!r} ({match.language})"


def _percent(value: float) -> str:
    return f"{round(value * 100)} %"


# --- per-process caches -------------------------------------------------------------------------------
# One language detector per process (its models take ~1 s and ~200 MB to load), the lexicon rebuilt
# only when the administrators' terms change, and each classifier loaded once per model file.


@dataclass(frozen=True, slots=True)
class _Snapshot:
    term_rows: tuple[tuple[str, str, str, str], ...]
    lexicon: lexicon.Lexicon
    # target -> (ClassifierModel id, blob sha256) of the active model
    models: tuple[tuple[str, int, str], ...]
    taken_at: float


_lock = threading.Lock()
_detectors: dict[tuple[str, ...], LanguageDetector] = {}
_builtin: lexicon.Lexicon | None = None
_snapshot: _Snapshot | None = None
# blob sha256 -> the loaded model, or None when the file could not be used (logged once)
_classifiers: dict[str, classify.TextClassifier | None] = {}


def detector() -> LanguageDetector:
    """The process's language detector for settings.POSTDESK_LANGUAGES (built on first use)."""
    codes = tuple(sorted({code.strip().lower() for code in settings.POSTDESK_LANGUAGES if code.strip()}))
    with _lock:
        found = _detectors.get(codes)
        if found is None:
            found = _detectors[codes] = LanguageDetector(codes)
        return found


def forget_caches() -> None:
    """Read the urgency terms and the active models again on the next mail (after an admin's change)."""
    global _snapshot
    with _lock:
        _snapshot = None


def _builtin_lexicon() -> lexicon.Lexicon:
    global _builtin
    if _builtin is None:
        _builtin = lexicon.Lexicon.builtin()
    return _builtin


def _lexicon_of(rows: tuple[tuple[str, str, str, str], ...]) -> lexicon.Lexicon:
    terms = []
    for term, language, topic, priority in rows:
        try:
            terms.append(
                lexicon.UrgencyTerm(
                    term=term, language=language, topic=topic, priority=lexicon.UrgencyPriority(priority)
                )
            )
        except (lexicon.LexiconError, ValueError) as exc:
            # The admin form refuses such terms; one written another way is skipped, not fatal to intake.
            log.warning("urgency term %r (%s) skipped: %s", term, language, exc)
    return _builtin_lexicon().with_extra(terms)


def _current() -> _Snapshot:
    """The lexicon and the active models, read again at most every POSTDESK_TRIAGE_REFRESH_SECONDS."""
    global _snapshot
    now = time.monotonic()
    with _lock:
        known = _snapshot
    if known is not None and now - known.taken_at < settings.POSTDESK_TRIAGE_REFRESH_SECONDS:
        return known
    rows = tuple(UrgencyTermRow.objects.order_by("id").values_list("term", "language", "topic", "priority"))
    built = known.lexicon if known is not None and known.term_rows == rows else _lexicon_of(rows)
    models: dict[str, tuple[int, str]] = {}
    active = ClassifierModel.objects.filter(active=True).order_by("target", "-trained_at", "-id")
    for target, model_id, sha in active.values_list("target", "id", "blob_sha256"):
        models.setdefault(target, (model_id, sha))
    fresh = _Snapshot(
        term_rows=rows,
        lexicon=built,
        models=tuple((target, model_id, sha) for target, (model_id, sha) in sorted(models.items())),
        taken_at=now,
    )
    with _lock:
        _snapshot = fresh
        # Models no longer active are dropped from memory.
        wanted = {sha for _target, _id, sha in fresh.models}
        for sha in [sha for sha in _classifiers if sha not in wanted]:
            del _classifiers[sha]
    return fresh


def _classifier(sha: str) -> classify.TextClassifier | None:
    with _lock:
        if sha in _classifiers:
            return _classifiers[sha]
    try:
        model: classify.TextClassifier | None = classify.load(default_store().path_for(sha))
    except (classify.ModelError, ValueError) as exc:
        log.warning("classifier model %s cannot be used: %s", sha[:12], exc)
        model = None
    with _lock:
        _classifiers[sha] = model
    return model


def _predict(snapshot: _Snapshot, target: str, text: str) -> tuple[classify.Prediction | None, int | None]:
    for model_target, model_id, sha in snapshot.models:
        if model_target == target:
            model = _classifier(sha)
            if model is None:
                return None, None
            return model.predict([text])[0], model_id
    return None, None


def understand(parsed: ParsedMessage, reply: ReplyParts, verdict: AutomatedVerdict) -> Understanding:
    """Language, urgency, category and priority guesses and the duplicate signature of one mail."""
    visible = (reply.visible if reply.visible.strip() else parsed.text)[:MAX_TEXT]
    text = classifier_text(parsed.subject, visible)
    language = detector().detect(text)
    if verdict.is_automated:
        # Out-of-office notes and bounces quote the customer's words ("urgent", "outage"); they are not urgent.
        return Understanding(language=language, automated=True)
    snapshot = _current()
    category, category_model = _predict(snapshot, ClassifierTarget.CATEGORY, text)
    priority, priority_model = _predict(snapshot, ClassifierTarget.PRIORITY, text)
    if priority is not None and priority.label not in Priority.values:
        # A model trained from a CSV with other labels cannot set a priority.
        priority, priority_model = None, None
    signature = duplicates.signature_of(parsed.subject, visible)
    return Understanding(
        language=language,
        urgency=snapshot.lexicon.match(text),
        category=category,
        priority=priority,
        signature="" if signature.is_empty() else signature.to_str(),
        category_model=category_model,
        priority_model=priority_model,
    )


# --- writing the decisions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PriorityProposal:
    priority: str
    source: DecisionSource
    confidence: float | None
    reason: str


def _rank(priority: str) -> int:
    return PRIORITY_RANK.get(Priority(priority), PRIORITY_RANK[Priority.NORMAL])


def _propose_priority(understanding: Understanding, threshold: float) -> _PriorityProposal | None:
    """The lexicon's urgency or the model's sure guess, whichever is higher."""
    proposals = []
    if understanding.urgency is not None:
        match = understanding.urgency
        proposals.append(_PriorityProposal(match.priority.value, DecisionSource.LEXICON, None, lexicon_reason(match)))
    guess = understanding.priority
    if guess is not None and guess.confidence >= threshold:
        reason = f"classifier: {guess.label} ({_percent(guess.confidence)})"
        proposals.append(_PriorityProposal(guess.label, DecisionSource.MODEL, guess.confidence, reason))
    return min(proposals, key=lambda p: _rank(p.priority)) if proposals else None


def _linked(conversation: Conversation, now: datetime, **data: object) -> None:
    Event.objects.create(conversation=conversation, kind=EventKind.LINKED, data=data, created_at=now)
    live.conversation_changed(conversation, EventKind.LINKED)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def apply(message: Message, understanding: Understanding, *, created: bool, now: datetime) -> str:
    """Write what `understanding` decided onto the message's conversation; returns a one-line description.

    On a new conversation: language (also the contact's when it has none), category and priority when
    sure enough, the duplicate signature, a repeat link and incident grouping. On a customer's reply:
    only a higher priority (and the language if none was known). A priority an agent or rule set is
    never lowered.
    """
    conversation = message.conversation
    threshold = float(settings.POSTDESK_TRIAGE_MIN_CONFIDENCE)
    fields: list[str] = []
    described: list[str] = []
    detection = understanding.language
    data: dict[str, object] = {
        "language": detection.language,
        "language_confidence": _round(detection.confidence),
        "automated": understanding.automated,
        "threshold": threshold,
    }

    if detection.language and (created or not conversation.language):
        conversation.language = detection.language
        fields.append("language")
        described.append(f"language {detection.language}")
        Contact.objects.filter(pk=conversation.contact_id, language="").update(language=detection.language)

    guess = understanding.category
    category_applied = False
    if guess is not None:
        data.update(
            category=guess.label,
            category_confidence=_round(guess.confidence),
            category_model=understanding.category_model,
        )
        if created and guess.confidence >= threshold and conversation.category_source != DecisionSource.AGENT:
            conversation.category = guess.label[:100]
            conversation.category_confidence = guess.confidence
            conversation.category_source = DecisionSource.MODEL
            fields += ["category", "category_confidence", "category_source"]
            category_applied = True
            described.append(f"category {guess.label} ({_percent(guess.confidence)})")
        else:
            described.append(f"category {guess.label} not set ({_percent(guess.confidence)} < {_percent(threshold)})")
    data["category_applied"] = category_applied

    if understanding.priority is not None:
        data.update(
            priority_suggested=understanding.priority.label,
            priority_suggested_confidence=_round(understanding.priority.confidence),
            priority_model=understanding.priority_model,
        )
    proposal = _propose_priority(understanding, threshold)
    priority_applied = False
    if proposal is not None and conversation.status not in (Status.SPAM, Status.MERGED):
        current = conversation.priority
        decided_by_people = conversation.priority_source in (DecisionSource.AGENT, DecisionSource.RULE)
        raises = _rank(proposal.priority) < _rank(current)
        if raises or (created and not decided_by_people):
            before = current
            conversation.priority = proposal.priority
            conversation.priority_source = proposal.source
            conversation.priority_confidence = proposal.confidence
            fields += ["priority", "priority_source", "priority_confidence"]
            priority_applied = True
            data["priority_before"] = before
            described.append(f"priority {proposal.priority} ({proposal.reason})")
        data.update(priority=proposal.priority, priority_reason=proposal.reason, priority_source=proposal.source.value)
    data["priority_applied"] = priority_applied

    if created and understanding.signature:
        conversation.signature = understanding.signature[:2000]
        fields.append("signature")

    if fields:
        conversation.save(update_fields=fields)
    if created or priority_applied:
        # A reply that changed nothing leaves no trace on the timeline (the step log has it).
        Event.objects.create(
            conversation=conversation, kind=EventKind.TRIAGED, message=message, data=data, created_at=now
        )
        live.conversation_changed(conversation, EventKind.TRIAGED)

    if created and understanding.signature and conversation.status != Status.SPAM:
        candidate = duplicates.Candidate(
            conversation_id=conversation.pk,
            sender=conversation.contact_address,
            subject=conversation.subject,
            at=conversation.created_at,
            signature=duplicates.Signature.from_str(understanding.signature),
        )
        repeat = _link_repeat(conversation, candidate, now)
        if repeat:
            described.append(repeat)
        incident = _group_incident(conversation, candidate, now)
        if incident:
            described.append(incident)
    return "; ".join(described) or "nothing decided"


def _signature(text: str) -> duplicates.Signature:
    if not text:
        return duplicates.Signature((), 0)
    try:
        return duplicates.Signature.from_str(text)
    except duplicates.DuplicateError:
        return duplicates.Signature((), 0)


def _link_repeat(conversation: Conversation, new: duplicates.Candidate, now: datetime) -> str:
    """Link the conversation to the same customer's open one it asks again about (same mailbox)."""
    window = timedelta(hours=settings.POSTDESK_DUPLICATE_WINDOW_HOURS)
    rows = (
        Conversation.objects.filter(
            contact_id=conversation.contact_id, mailbox_id=conversation.mailbox_id, created_at__gte=now - window
        )
        .exclude(pk=conversation.pk)
        .exclude(status__in=_CLOSED)
        .order_by("-created_at")
        .values_list("pk", "number", "subject", "created_at", "signature")[:50]
    )
    numbers: dict[int, int] = {}
    candidates = []
    for pk, number, subject, created_at, signature in rows:
        numbers[pk] = number
        candidates.append(
            duplicates.Candidate(pk, conversation.contact_address, subject, created_at, _signature(signature))
        )
    match = duplicates.find_repeat(new, candidates, window=window, threshold=duplicates.REPEAT_THRESHOLD)
    if match is None:
        return ""
    original = Conversation.objects.get(pk=match.conversation_id)
    conversation.duplicate_of = original
    conversation.save(update_fields=["duplicate_of"])
    similarity = _round(match.similarity)
    _linked(conversation, now, repeat_of=original.number, reason=match.reason, similarity=similarity)
    _linked(original, now, repeated_by=conversation.number, reason=match.reason, similarity=similarity)
    return f"repeat of #{original.number} ({match.reason})"


def _group_incident(conversation: Conversation, new: duplicates.Candidate, now: datetime) -> str:
    """Group the conversation with other customers' recent similar ones of the mailbox as an incident."""
    window = timedelta(minutes=settings.POSTDESK_INCIDENT_WINDOW_MINUTES)
    rows = (
        Conversation.objects.filter(mailbox_id=conversation.mailbox_id, created_at__gte=now - window)
        .exclude(pk=conversation.pk)
        .exclude(contact_id=conversation.contact_id)
        .exclude(signature="")
        .exclude(status__in=(Status.SPAM, Status.MERGED))
        .order_by("-created_at", "-id")
        .values_list("pk", "number", "contact_address", "subject", "created_at", "signature", "incident_id")[
            :MAX_INCIDENT_CANDIDATES
        ]
    )
    numbers: dict[int, int] = {}
    incidents: dict[int, int | None] = {}
    candidates = []
    for pk, number, sender, subject, created_at, signature, incident_id in rows:
        numbers[pk], incidents[pk] = number, incident_id
        candidates.append(duplicates.Candidate(pk, sender, subject, created_at, _signature(signature), incident_id))
    match = duplicates.find_incident(
        new,
        candidates,
        window=window,
        threshold=duplicates.INCIDENT_THRESHOLD,
        min_reporters=settings.POSTDESK_INCIDENT_MIN_REPORTERS,
    )
    if match is None:
        return ""
    if match.incident_id is not None:
        incident = Incident.objects.get(pk=match.incident_id)
    else:
        first = min((c for c in candidates if c.conversation_id in match.conversation_ids), key=lambda c: c.at)
        earliest = first if first.at <= new.at else new
        incident = Incident.objects.create(
            mailbox_id=conversation.mailbox_id,
            title=(earliest.subject or _("(no subject)"))[:500],
            signature=new.signature.to_str(),
            created_at=now,
        )
    joining = [pk for pk in match.conversation_ids if incidents.get(pk) != incident.pk]
    Conversation.objects.filter(pk__in=joining).update(incident=incident)
    conversation.incident = incident
    conversation.save(update_fields=["incident"])
    members = sorted([numbers[pk] for pk in match.conversation_ids] + [conversation.number])
    _linked(conversation, now, incident=incident.pk, title=incident.title, members=members, reason=match.reason)
    for other in Conversation.objects.filter(pk__in=joining):
        _linked(
            other, now, incident=incident.pk, title=incident.title, joined_by=conversation.number, reason=match.reason
        )
    return f"incident {incident.pk} with {len(members)} conversations ({match.reason})"


# --- explaining the decisions on the conversation page ------------------------------------------------


class ExplanationKind(StrEnum):
    LANGUAGE = "language"
    CATEGORY = "category"
    PRIORITY = "priority"
    DUPLICATE = "duplicate"
    INCIDENT = "incident"


@dataclass(frozen=True, slots=True)
class Explanation:
    """One line the conversation page shows: what was decided, how sure, by whom, and related conversations.

    `text` is translated and complete ("Category: billing (81 %, the classifier)"); the other fields are
    there for styling and links: `numbers` are conversations to link to (the same mailbox, so the
    viewer sees them too).
    """

    kind: ExplanationKind
    text: str
    value: str = ""
    confidence: float | None = None
    source: str = ""
    numbers: tuple[int, ...] = ()


def _language_name(code: str) -> str:
    try:
        return str(get_language_info(code)["name_translated"])
    except KeyError:
        return code


def _source_name(source: str) -> str:
    try:
        return str(DecisionSource(source).label)
    except ValueError:
        return ""


def explain(conversation: Conversation) -> list[Explanation]:
    """What triage decided on `conversation` and why, for its page (the caller has checked access)."""
    triaged = (
        Event.objects.filter(conversation=conversation, kind=EventKind.TRIAGED).order_by("-id").only("data").first()
    )
    data = triaged.data if triaged is not None else {}
    lines: list[Explanation] = []

    if conversation.language:
        stored = data.get("language_confidence") if data.get("language") == conversation.language else None
        sure = stored if isinstance(stored, float) else None
        name = _language_name(conversation.language)
        text = (
            _("Language: %(language)s (%(percent)s)") % {"language": name, "percent": _percent(sure)}
            if sure is not None
            else _("Language: %(language)s") % {"language": name}
        )
        lines.append(Explanation(ExplanationKind.LANGUAGE, text, conversation.language, sure))

    if conversation.category:
        source = conversation.category_source
        confidence = conversation.category_confidence
        who = _source_name(source)
        if confidence is not None:
            text = _("Category: %(category)s (%(percent)s, set by %(who)s)") % {
                "category": conversation.category,
                "percent": _percent(confidence),
                "who": who,
            }
        else:
            text = _("Category: %(category)s (set by %(who)s)") % {"category": conversation.category, "who": who}
        lines.append(Explanation(ExplanationKind.CATEGORY, text, conversation.category, confidence, source))
    elif isinstance(data.get("category"), str) and not data.get("category_applied"):
        stored = data.get("category_confidence")
        sure = stored if isinstance(stored, float) else None
        text = _("Category not set: the classifier suggested %(category)s, but only %(percent)s sure") % {
            "category": data["category"],
            "percent": _percent(sure) if sure is not None else "?",
        }
        lines.append(Explanation(ExplanationKind.CATEGORY, text, "", sure))

    if conversation.priority_source:
        source = conversation.priority_source
        reason = data.get("priority_reason") if data.get("priority") == conversation.priority else None
        if source in (DecisionSource.LEXICON, DecisionSource.MODEL) and isinstance(reason, str):
            text = _("Priority: %(priority)s, set by %(who)s (%(reason)s)") % {
                "priority": Priority(conversation.priority).label,
                "who": _source_name(source),
                "reason": reason,
            }
        else:
            text = _("Priority: %(priority)s, set by %(who)s") % {
                "priority": Priority(conversation.priority).label,
                "who": _source_name(source),
            }
        lines.append(
            Explanation(ExplanationKind.PRIORITY, text, conversation.priority, conversation.priority_confidence, source)
        )

    if conversation.duplicate_of_id is not None:
        original = Conversation.objects.filter(pk=conversation.duplicate_of_id).values_list("number", flat=True).first()
        link = (
            Event.objects.filter(conversation=conversation, kind=EventKind.LINKED, data__has_key="repeat_of")
            .order_by("-id")
            .first()
        )
        if original is not None:
            reason = str(link.data.get("reason", "")) if link is not None else ""
            text = _("Asks again about #%(number)s") % {"number": original}
            if reason:
                text = f"{text} ({reason})"
            lines.append(Explanation(ExplanationKind.DUPLICATE, text, str(original), numbers=(original,)))

    if conversation.incident_id is not None:
        incident = Incident.objects.filter(pk=conversation.incident_id).first()
        if incident is not None:
            members = tuple(
                Conversation.objects.filter(incident=incident, mailbox_id=conversation.mailbox_id)
                .filter(~Q(pk=conversation.pk))
                .order_by("number")
                .values_list("number", flat=True)[:100]
            )
            text = _("Part of incident “%(title)s” with %(count)s other conversations") % {
                "title": incident.title,
                "count": len(members),
            }
            lines.append(Explanation(ExplanationKind.INCIDENT, text, str(incident.pk), numbers=members))
    return lines

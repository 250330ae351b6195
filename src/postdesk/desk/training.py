"""Trains the category and priority classifiers on the installation's own agent-labelled conversations.

Only labels an agent set or confirmed count as training data (category_source / priority_source
"agent"): the classifier's own guesses would teach it what it already believes, and a rule's labels
are the rule, which needs no model. A trained model is a file in the blob store with a
ClassifierModel row; the newest active row per target is what intake uses (triage_step).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from postdesk.desk import triage_step
from postdesk.desk.blobs import default_store
from postdesk.desk.errors import PostdeskError
from postdesk.desk.models import (
    ClassifierModel,
    ClassifierTarget,
    Conversation,
    DecisionSource,
    Direction,
    Message,
    Priority,
)
from postdesk.triage import classify

# The most conversations one training reads (newest first): enough for any model, bounded in memory.
MAX_EXAMPLES = 50_000
# The nightly job retrains when at least this many new labels, or this share more, came in since the last model.
RETRAIN_NEW_LABELS = 20
RETRAIN_GROWTH = 0.10
# Folds of the cross-validation that measures a new model (when every label has enough examples).
DEFAULT_FOLDS = 5

TARGETS = (ClassifierTarget.CATEGORY, ClassifierTarget.PRIORITY)


class TrainingError(PostdeskError):
    """A model cannot be trained or installed (too few labels, a bad model file); the message says what to do."""

    code = "training"


@dataclass(frozen=True, slots=True)
class Examples:
    texts: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Trained:
    """One model trained and activated: its row, and the labels left out for having too few examples."""

    model: ClassifierModel
    dropped: tuple[tuple[str, int], ...]
    cross_validated: bool


def _label_field(target: str) -> tuple[str, str]:
    return (f"{target}_source", target)


def labelled_count(target: str) -> int:
    """How many conversations carry an agent's label for `target`."""
    source_field, label_field = _label_field(target)
    return Conversation.objects.filter(**{source_field: DecisionSource.AGENT}).exclude(**{label_field: ""}).count()


def examples(target: str, *, limit: int = MAX_EXAMPLES) -> Examples:
    """The agent-labelled conversations' first customer mail (subject and visible text) and their labels."""
    source_field, label_field = _label_field(target)
    labelled = dict(
        Conversation.objects.filter(**{source_field: DecisionSource.AGENT})
        .exclude(**{label_field: ""})
        .order_by("-id")
        .values_list("pk", label_field)[:limit]
    )
    first: dict[int, tuple[str, str]] = {}
    ids = list(labelled)
    for start in range(0, len(ids), 1000):
        mails = (
            Message.objects.filter(conversation_id__in=ids[start : start + 1000], direction=Direction.INBOUND)
            .order_by("conversation_id", "created_at", "id")
            .values_list("conversation_id", "subject", "visible_text", "text")
        )
        for conversation_id, subject, visible, text in mails.iterator():
            if conversation_id not in first:
                first[conversation_id] = (subject, visible if visible.strip() else text)
    pairs = [
        (triage_step.classifier_text(*first[pk]), str(label)) for pk, label in sorted(labelled.items()) if pk in first
    ]
    return Examples(tuple(text for text, _ in pairs), tuple(label for _, label in pairs))


def _usable(found: Examples) -> tuple[Examples, tuple[tuple[str, int], ...]]:
    """The examples without labels too rare to learn, and those dropped labels with their counts."""
    counts = Counter(found.labels)
    needed = classify.min_examples_per_label()
    dropped = tuple(sorted((label, n) for label, n in counts.items() if n < needed))
    rare = {label for label, _ in dropped}
    kept = [(t, label) for t, label in zip(found.texts, found.labels, strict=True) if label not in rare]
    return Examples(tuple(t for t, _ in kept), tuple(label for _, label in kept)), dropped


def _store(model: classify.TextClassifier) -> str:
    """Save the model file into the blob store; returns its sha256."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.joblib"
        classify.save(model, path)
        return default_store().put(path.read_bytes())


def activate(model: ClassifierModel) -> None:
    """Make `model` the one intake uses for its target (the others of that target are kept, inactive)."""
    with transaction.atomic():
        ClassifierModel.objects.filter(target=model.target, active=True).exclude(pk=model.pk).update(active=False)
        if not model.active:
            model.active = True
            model.save(update_fields=["active"])
    transaction.on_commit(triage_step.forget_caches)


def train_target(target: str, *, now: datetime, folds: int = DEFAULT_FOLDS) -> Trained:
    """Train, measure and activate a model for `target` from the agents' labels; TrainingError when too few."""
    minimum = int(settings.POSTDESK_CLASSIFIER_MIN_EXAMPLES)
    found, dropped = _usable(examples(target))
    rare = "".join(f"; left out: {label!r} ({n})" for label, n in dropped[:10])
    if len(found.texts) < minimum or len(set(found.labels)) < 2:
        raise TrainingError(
            f"{target}: {len(found.texts)} usable conversations labelled by agents in {len(set(found.labels))} "
            f"labels; training needs at least {minimum} in at least 2 labels, each with "
            f"{classify.min_examples_per_label()} or more{rare}. Label more conversations (set their {target} "
            "on the conversation page), or train from a CSV file: postdesk train --csv FILE --model PATH"
        )
    counts = Counter(found.labels)
    needed = max(folds, math.ceil(classify.min_examples_per_label() * folds / (folds - 1))) if folds >= 2 else 0
    scores: classify.CrossValidation | None = None
    try:
        if folds >= 2 and min(counts.values()) >= needed:
            scores = classify.cross_validate(found.texts, found.labels, folds=folds)
        model = classify.train(found.texts, found.labels, trained_at=now)
    except classify.ModelError as exc:
        raise TrainingError(f"{target}: {exc}") from None
    with transaction.atomic():
        row = ClassifierModel.objects.create(
            target=target,
            blob_sha256=_store(model),
            examples=len(found.texts),
            labels=list(model.labels),
            accuracy=scores.accuracy if scores else None,
            macro_f1=scores.macro_f1 if scores else None,
            active=True,
            trained_at=now,
        )
        activate(row)
    return Trained(row, dropped, scores is not None)


def _describe(trained: Trained) -> str:
    row = trained.model
    measured = (
        f"cross-validated accuracy {row.accuracy:.1%}, macro-F1 {row.macro_f1:.1%}"
        if row.accuracy is not None and row.macro_f1 is not None
        else "not cross-validated (too few examples per label)"
    )
    dropped = "".join(f"; left out {label!r} ({n} examples)" for label, n in trained.dropped[:10])
    return (
        f"{row.target}: model {row.pk} trained on {row.examples} conversations, {len(row.labels)} labels, "
        f"{measured}; now active{dropped}"
    )


def _targets(args: argparse.Namespace) -> Sequence[str]:
    chosen = getattr(args, "target", "") or "both"
    return TARGETS if chosen == "both" else (ClassifierTarget(chosen),)


def train_from_conversations(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`postdesk train` without --csv: train each chosen target; exit 2 when none could be trained."""
    out, err = out or sys.stdout, err or sys.stderr
    now = timezone.now()
    folds = int(getattr(args, "folds", DEFAULT_FOLDS) or DEFAULT_FOLDS)
    trained = 0
    for target in _targets(args):
        try:
            result = train_target(target, now=now, folds=folds)
        except TrainingError as exc:
            print(f"postdesk train: {exc.user_message}", file=err, flush=True)
            continue
        print(_describe(result), file=out, flush=True)
        trained += 1
    return 0 if trained else 2


def install_model(
    path: Path | str,
    target: str,
    *,
    accuracy: float | None = None,
    macro_f1: float | None = None,
) -> ClassifierModel:
    """Register a model file (from `postdesk train --csv`) as the installation's active model for `target`."""
    try:
        model = classify.load(path)
    except classify.ModelError as exc:
        raise TrainingError(str(exc)) from None
    if target == ClassifierTarget.PRIORITY:
        unknown = sorted(set(model.labels) - set(Priority.values))
        if unknown:
            raise TrainingError(
                f"a priority model's labels must be {', '.join(Priority.values)}; this one also has "
                f"{', '.join(map(repr, unknown[:10]))}"
            )
    sha = default_store().put(Path(path).read_bytes())
    with transaction.atomic():
        row = ClassifierModel.objects.create(
            target=target,
            blob_sha256=sha,
            examples=model.info.n_examples,
            labels=list(model.labels),
            accuracy=accuracy,
            macro_f1=macro_f1,
            active=True,
            trained_at=model.info.trained_at,
        )
        activate(row)
    return row


def retrain_scheduled(now: datetime | None = None) -> str:
    """The nightly job: retrain each target that gained enough agent labels since its model; says what it did."""
    now = now or timezone.now()
    minimum = int(settings.POSTDESK_CLASSIFIER_MIN_EXAMPLES)
    outcomes = []
    for target in TARGETS:
        labelled = labelled_count(target)
        current = ClassifierModel.objects.filter(target=target, active=True).order_by("-trained_at", "-id").first()
        if current is None and labelled < minimum:
            outcomes.append(f"{target}: {labelled} labelled conversations, training needs {minimum}")
            continue
        if current is not None:
            grown = labelled - current.examples
            if grown < RETRAIN_NEW_LABELS and labelled < current.examples * (1 + RETRAIN_GROWTH):
                outcomes.append(f"{target}: {max(grown, 0)} new labels since model {current.pk}, not retrained")
                continue
        try:
            outcomes.append(_describe(train_target(target, now=now)))
        except TrainingError as exc:
            outcomes.append(exc.user_message)
    return "; ".join(outcomes)

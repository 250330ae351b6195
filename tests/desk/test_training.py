"""Training the classifiers on the installation's own labels (desk/training.py): agents' corrections become
training data, too few labels is a clear message, the new model is used for the next mail, the nightly job
retrains only when enough new labels came in, and a CSV model can be installed."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from factories import make_raw_mail
from postdesk import cli
from postdesk.desk import actions, training, triage_step
from postdesk.desk.models import ClassifierModel, ClassifierTarget, Conversation, DecisionSource, Message
from triage_examples import TRAINING
from two_teams import BASE_TIME, Deliver, TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def triage_settings(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.POSTDESK_LANGUAGES = ["en", "de", "ru"]
    settings.POSTDESK_TRIAGE_REFRESH_SECONDS = 0
    settings.POSTDESK_CLASSIFIER_MIN_EXAMPLES = 12
    settings.POSTDESK_TRIAGE_MIN_CONFIDENCE = 0.0  # these tests are about training; the threshold has its own
    triage_step.forget_caches()
    yield
    triage_step.forget_caches()


def args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"target": "category", "folds": 5, **given})


def label_by_agent(world: TwoTeams, deliver: Deliver, per_label: int) -> list[Conversation]:
    """Mail from customers, each categorised by an agent on the conversation (the correction path)."""
    labelled = []
    for label, texts in TRAINING.items():
        for index, text in enumerate(texts[:per_label]):
            message = deliver(
                world.mailbox_x,
                make_raw_mail(
                    subject=text.split(",")[0][:40],
                    sender=f"{label}{index} <{label}{index}@c.test>",
                    to="x@support.test",
                    body=text,
                ),
                at=BASE_TIME + timedelta(days=10 * index),  # far apart: no repeats or incidents
            )
            actions.do_set_category(world.agent_x, message.conversation, label)
            labelled.append(message.conversation)
    return labelled


def test_agents_corrections_train_the_model_that_categorises_the_next_mail(
    two_teams: TwoTeams, deliver: Deliver, capsys: pytest.CaptureFixture[str]
) -> None:
    label_by_agent(two_teams, deliver, per_label=5)
    # A model's own guess is not a label: it must not be learnt from.
    Conversation.objects.filter(pk=two_teams.conversation_x.pk).update(
        category="login", category_source=DecisionSource.MODEL
    )

    assert training.train_from_conversations(args()) == 0

    out = capsys.readouterr().out
    assert "category: model" in out and "trained on 15 conversations, 3 labels" in out
    assert "cross-validated accuracy" in out
    model = ClassifierModel.objects.get(target=ClassifierTarget.CATEGORY)
    assert model.active and model.examples == 15
    assert sorted(model.labels) == ["account", "billing", "shipping"]
    assert model.accuracy is not None and 0.0 <= model.accuracy <= 1.0

    message = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Invoice", sender="New <new@n.test>", to="x@support.test", body="Wrong invoice please"),
        at=BASE_TIME + timedelta(days=100),
    )
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.category == "billing"
    assert conversation.category_source == DecisionSource.MODEL


def test_retraining_activates_the_new_model_and_keeps_the_old_one_inactive(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    label_by_agent(two_teams, deliver, per_label=4)
    assert training.train_from_conversations(args()) == 0
    assert training.train_from_conversations(args()) == 0
    first, second = ClassifierModel.objects.order_by("id")
    assert (first.active, second.active) == (False, True)


def test_too_few_labels_is_a_clear_message_and_exit_code_2(
    two_teams: TwoTeams, deliver: Deliver, capsys: pytest.CaptureFixture[str]
) -> None:
    label_by_agent(two_teams, deliver, per_label=3)  # 9 labelled, 12 needed

    assert training.train_from_conversations(args()) == 2

    err = capsys.readouterr().err
    assert "9 usable conversations labelled by agents" in err
    assert "at least 12" in err
    assert "postdesk train --csv" in err
    assert not ClassifierModel.objects.exists()


def test_labels_with_too_few_examples_are_left_out_and_named(
    two_teams: TwoTeams, deliver: Deliver, capsys: pytest.CaptureFixture[str]
) -> None:
    label_by_agent(two_teams, deliver, per_label=5)
    actions.do_set_category(two_teams.agent_x, two_teams.conversation_x, "rare")

    assert training.train_from_conversations(args()) == 0

    assert "left out 'rare' (1 examples)" in capsys.readouterr().out
    assert "rare" not in ClassifierModel.objects.get().labels


def test_the_nightly_job_retrains_only_after_enough_new_labels(
    two_teams: TwoTeams,
    deliver: Deliver,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    assert "0 labelled conversations, training needs 12" in training.retrain_scheduled()
    label_by_agent(two_teams, deliver, per_label=4)
    outcome = training.retrain_scheduled()
    assert "category: model" in outcome and "priority: 0 labelled" in outcome
    assert ClassifierModel.objects.count() == 1

    outcome = training.retrain_scheduled()
    assert "category: 0 new labels since model" in outcome
    assert ClassifierModel.objects.count() == 1


def test_the_priority_an_agent_sets_is_recorded_as_the_agents(two_teams: TwoTeams) -> None:
    assert two_teams.conversation_x.priority_source == DecisionSource.LEXICON  # "I cannot log in": high
    actions.do_set_priority(two_teams.agent_x, two_teams.conversation_x, "low")
    conversation = Conversation.objects.get(pk=two_teams.conversation_x.pk)
    assert (conversation.priority, conversation.priority_source, conversation.priority_confidence) == (
        "low",
        DecisionSource.AGENT,
        None,
    )
    assert training.labelled_count(ClassifierTarget.PRIORITY) == 1


def labelled_csv(folder: Path) -> Path:
    source = folder / "labelled.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for label, texts in TRAINING.items():
            writer.writerows([text, label] for text in texts)
    return source


def test_a_model_trained_from_csv_can_be_installed_as_the_category_classifier(
    two_teams: TwoTeams, deliver: Deliver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_setup_django", lambda: None)
    source = labelled_csv(tmp_path)
    model_path = tmp_path / "model.joblib"

    code = cli.main(["train", "--csv", str(source), "--model", str(model_path), "--activate", "--target", "category"])

    assert code == 0
    installed = ClassifierModel.objects.get()
    assert installed.active and installed.target == ClassifierTarget.CATEGORY and installed.examples == 15
    message: Message = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Parcel", sender="P <p@p.test>", to="x@support.test", body="Where is my parcel delivery"),
        at=BASE_TIME + timedelta(days=1),
    )
    assert Conversation.objects.get(pk=message.conversation_id).category == "shipping"


def test_activate_needs_a_target_and_a_priority_model_needs_priority_labels(
    two_teams: TwoTeams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_setup_django", lambda: None)
    source = labelled_csv(tmp_path)
    model_path = str(tmp_path / "model")

    assert cli.main(["train", "--csv", str(source), "--model", model_path, "--activate"]) == 2
    assert "--activate needs --target category or --target priority" in capsys.readouterr().err

    assert cli.main(["train", "--csv", str(source), "--model", model_path, "--activate", "--target", "priority"]) == 2
    assert "a priority model's labels must be urgent, high, normal, low" in capsys.readouterr().err
    assert not ClassifierModel.objects.exists()

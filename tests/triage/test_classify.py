"""Tests of `postdesk.triage.classify`: training, predictions with confidences, model files and refusals."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import csv
import pickle
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import joblib
import pytest

from corpora_path import CORPORA
from postdesk.triage.classify import (
    ModelError,
    TextClassifier,
    cross_validate,
    load,
    min_examples_per_label,
    save,
    train,
)

pytestmark = pytest.mark.pure

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BANKING77 = CORPORA / "banking77-train" / "train.csv"

SYNTHETIC = {
    "billing": [
        "I was charged twice for my invoice",
        "Please send me a copy of the invoice",
        "Why is my bill higher this month?",
        "Can I pay the invoice by bank transfer?",
        "Не проходит оплата счёта",
        "Где найти счёт за март?",
    ],
    "delivery": [
        "My parcel has not arrived yet",
        "Where is my order? The tracking number does not work",
        "The courier left the package at the wrong address",
        "When will my order be delivered?",
        "Посылка до сих пор не доставлена",
        "Курьер не привёз заказ",
    ],
    "account": [
        "I forgot my password and cannot log in",
        "How do I change the email address of my account?",
        "Please delete my account and my data",
        "The login page says my password is wrong",
        "Не могу войти в личный кабинет",
        "Как сменить пароль от аккаунта?",
    ],
}


def synthetic() -> tuple[list[str], list[str]]:
    texts = [text for examples in SYNTHETIC.values() for text in examples]
    labels = [label for label, examples in SYNTHETIC.items() for _ in examples]
    return texts, labels


@pytest.fixture(scope="module")
def synthetic_model() -> TextClassifier:
    return train(*synthetic(), trained_at=NOW)


def banking_sample(per_label: int, label_count: int) -> tuple[list[str], list[str]]:
    """The first `per_label` examples of the first `label_count` intents of banking77 (a few hundred rows)."""
    if not BANKING77.is_file():  # pragma: no cover - depends on the machine
        pytest.skip(f"!!! CORPORA MISSING: {BANKING77} does not exist; banking77 tests NOT run !!!")
    by_label: dict[str, list[str]] = defaultdict(list)
    with BANKING77.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_label[row["category"]].append(row["text"])
    chosen = sorted(by_label)[:label_count]
    texts = [text for label in chosen for text in by_label[label][:per_label]]
    labels = [label for label in chosen for _ in by_label[label][:per_label]]
    return texts, labels


def test_a_small_model_recognises_new_wording_in_two_languages(synthetic_model: TextClassifier) -> None:
    predictions = synthetic_model.predict(
        ["my invoice was charged twice", "the parcel was not delivered", "не могу войти, забыл пароль"]
    )
    assert [p.label for p in predictions] == ["billing", "delivery", "account"]
    assert all(0.0 <= p.confidence <= 1.0 for p in predictions)
    assert synthetic_model.labels == ("account", "billing", "delivery")
    assert synthetic_model.info.n_examples == 18 and synthetic_model.info.trained_at == NOW
    assert synthetic_model.predict([]) == []


def test_confidence_is_higher_for_a_clear_text_than_for_an_unrelated_one(synthetic_model: TextClassifier) -> None:
    clear, unrelated = synthetic_model.predict(["When will my order be delivered? Where is my parcel?", "xyzzy"])
    assert clear.label == "delivery"
    assert clear.confidence > unrelated.confidence


def test_banking77_sample_predicts_held_out_questions() -> None:
    texts, labels = banking_sample(per_label=40, label_count=8)
    held_out = {index for index in range(len(texts)) if index % 5 == 0}
    model = train(
        [t for i, t in enumerate(texts) if i not in held_out],
        [label for i, label in enumerate(labels) if i not in held_out],
        trained_at=NOW,
    )
    predictions = model.predict([texts[i] for i in sorted(held_out)])
    correct = sum(p.label == labels[i] for p, i in zip(predictions, sorted(held_out), strict=True))
    assert correct / len(held_out) >= 0.75
    assert all(0.0 <= p.confidence <= 1.0 for p in predictions)


def test_cross_validation_reports_each_fold_and_beats_chance() -> None:
    texts, labels = banking_sample(per_label=20, label_count=6)
    scores = cross_validate(texts, labels, folds=5, seed=0)
    assert len(scores.per_fold) == 5
    assert scores.accuracy == pytest.approx(sum(f.accuracy for f in scores.per_fold) / 5)
    assert 0.5 < scores.accuracy <= 1.0 and 0.5 < scores.macro_f1 <= 1.0
    # Timings differ between runs; the figures must not.
    again = cross_validate(texts, labels, folds=5, seed=0)
    assert (again.accuracy, again.macro_f1) == (scores.accuracy, scores.macro_f1)


def test_save_and_load_round_trip(synthetic_model: TextClassifier, tmp_path: Path) -> None:
    path = tmp_path / "models" / "category.joblib"
    save(synthetic_model, path)
    loaded = load(path)
    assert loaded.info == synthetic_model.info
    texts = ["where is my parcel", "change my password", "invoice copy please"]
    assert loaded.predict(texts) == synthetic_model.predict(texts)
    assert [p.name for p in path.parent.iterdir()] == ["category.joblib"], "no temporary file is left behind"


def test_saving_over_an_existing_model_replaces_it(synthetic_model: TextClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"old model")
    save(synthetic_model, path)
    assert load(path).labels == synthetic_model.labels


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a Postdesk model file"),
        (b"this is not a model at all", "not a Postdesk model file"),
        (pickle.dumps({"some": "dict"}), "not a Postdesk model file"),
    ],
)
def test_a_corrupt_or_foreign_file_is_a_model_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load(path)


def test_a_truncated_model_file_is_a_model_error(synthetic_model: TextClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save(synthetic_model, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError, match=r"model\.joblib"):
        load(path)


def test_a_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model file at"):
        load(tmp_path / "nope.joblib")


def rewrite_header(path: Path, **changes: object) -> None:
    payload = joblib.load(path)
    payload["header"].update(changes)
    joblib.dump(payload, path)


def test_a_model_from_another_format_or_scikit_learn_version_is_refused(
    synthetic_model: TextClassifier, tmp_path: Path
) -> None:
    path = tmp_path / "model.joblib"
    save(synthetic_model, path)
    rewrite_header(path, format_version=99)
    with pytest.raises(ModelError, match="model format 99; this Postdesk reads format 1: train it again"):
        load(path)
    save(synthetic_model, path)
    rewrite_header(path, sklearn_version="0.24.2")
    with pytest.raises(ModelError, match=r"trained with scikit-learn 0\.24\.2"):
        load(path)


def test_training_needs_two_labels() -> None:
    with pytest.raises(ModelError, match="at least 2 different labels; found only 'billing'"):
        train(["a b c", "d e f", "g h i"], ["billing"] * 3, trained_at=NOW)
    with pytest.raises(ModelError, match="found none"):
        train([], [], trained_at=NOW)


def test_training_refuses_labels_with_too_few_examples_and_names_them() -> None:
    texts, labels = synthetic()
    few = min_examples_per_label() - 1
    texts += ["refund please"] * few
    labels += ["refunds"] * few
    with pytest.raises(ModelError, match=r"at least 3 examples; too few for 'refunds' \(2\)"):
        train(texts, labels, trained_at=NOW)


def test_texts_and_labels_must_pair_up() -> None:
    with pytest.raises(ModelError, match="3 texts but 2 labels"):
        train(["a", "b", "c"], ["x", "y"], trained_at=NOW)


def test_texts_without_any_letters_cannot_be_learnt() -> None:
    with pytest.raises(ModelError, match="cannot learn from these texts"):
        train(["", " ", "..."] * 2, ["a", "b"] * 3, trained_at=NOW)


def test_cross_validation_needs_an_example_of_each_label_per_fold() -> None:
    texts, labels = synthetic()
    with pytest.raises(ModelError, match="10-fold cross-validation: every label needs at least 10 examples"):
        cross_validate(texts, labels, folds=10)

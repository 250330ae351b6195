"""Tests of `postdesk train --csv` and `postdesk classify`: the classifier on its own, for data from elsewhere."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest

from postdesk.cli import main

pytestmark = pytest.mark.pure

ROWS = [
    ("billing", "I was charged twice for my invoice"),
    ("billing", "Please send me a copy of the invoice"),
    ("billing", "Why is my bill higher this month?"),
    ("billing", "Can I pay the invoice by bank transfer?"),
    ("delivery", "My parcel has not arrived yet"),
    ("delivery", "Where is my order? The tracking number does not work"),
    ("delivery", "The courier left the package at the wrong address"),
    ("delivery", "When will my order be delivered?"),
    ("account", "I forgot my password and cannot log in"),
    ("account", "How do I change the email address of my account?"),
    ("account", "The login page says my password is wrong"),
    ("account", "Please reset the password of my account"),
]


def write_csv(path: Path, header: list[str], rows: Sequence[tuple[str, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def training_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "labelled.csv", ["category", "body"], ROWS)


@pytest.fixture
def model_path(tmp_path: Path, training_csv: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "model.joblib"
    args = ["train", "--csv", str(training_csv), "--text-column", "body", "--label-column", "category"]
    assert main([*args, "--model", str(path)]) == 0
    capsys.readouterr()
    return path


def test_train_evaluates_and_saves_a_model(
    tmp_path: Path, training_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "models" / "category.joblib"
    code = main(
        [
            "train",
            "--csv",
            str(training_csv),
            "--text-column",
            "body",
            "--label-column",
            "category",
            "--model",
            str(path),
            "--evaluate",
            "--folds",
            "4",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "examples: 12, labels: 3" in out
    assert "4-fold cross-validated accuracy: " in out and "macro-F1: " in out
    assert f"model saved to {path}" in out
    assert path.is_file()


def test_classify_writes_the_input_columns_plus_label_and_confidence(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = write_csv(
        tmp_path / "inbox.csv",
        ["id", "text"],
        [("17", "where is my parcel, it has not arrived"), ("18", "I cannot log in, wrong password"), ("19", "")],
    )
    assert main(["classify", "--model", str(model_path), "--csv", str(inbox)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [list(row) for row in rows] == [["id", "text", "label", "confidence"]] * 3
    assert [(row["id"], row["label"]) for row in rows[:2]] == [("17", "delivery"), ("18", "account")]
    assert all(0.0 <= float(row["confidence"]) <= 1.0 for row in rows)
    assert rows[2]["label"] in {"billing", "delivery", "account"}, "an empty text still gets a row"


def test_classify_keeps_an_existing_label_column_beside_the_prediction(
    model_path: Path, training_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labelled = write_csv(tmp_path / "check.csv", ["label", "text"], [("delivery", "my parcel never arrived")])
    assert main(["classify", "--model", str(model_path), "--csv", str(labelled)]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["label"] == "delivery" and row["predicted_label"] == "delivery"
    assert 0.0 <= float(row["predicted_confidence"]) <= 1.0


def error_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


def test_clear_errors_for_missing_files_and_columns(
    tmp_path: Path, training_csv: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope.csv")
    assert "cannot read" in error_of(["train", "--csv", missing, "--model", str(tmp_path / "m")], capsys)
    assert "cannot read" in error_of(["classify", "--model", str(model_path), "--csv", missing], capsys)
    err = error_of(["train", "--csv", str(training_csv), "--model", str(tmp_path / "m")], capsys)
    assert "has no column 'text', 'label' (its columns: category, body)" in err
    err = error_of(["classify", "--model", str(model_path), "--csv", str(training_csv)], capsys)
    assert "has no column 'text'" in err
    err = error_of(
        ["classify", "--model", str(tmp_path / "nope.joblib"), "--csv", str(training_csv), "--text-column", "body"],
        capsys,
    )
    assert "no model file at" in err


def test_clear_errors_for_empty_files(tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "is empty" in error_of(["train", "--csv", str(empty), "--model", str(tmp_path / "m")], capsys)
    assert "is empty" in error_of(["classify", "--model", str(model_path), "--csv", str(empty)], capsys)
    header_only = write_csv(tmp_path / "header.csv", ["text", "label"], [])
    err = error_of(["train", "--csv", str(header_only), "--model", str(tmp_path / "m")], capsys)
    assert "no labelled rows" in err
    assert "header but no rows" in error_of(["classify", "--model", str(model_path), "--csv", str(header_only)], capsys)


def test_clear_errors_for_a_bad_model_file_and_untrainable_data(
    tmp_path: Path, training_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"\x80\x04garbage")
    err = error_of(["classify", "--model", str(bad), "--csv", str(training_csv), "--text-column", "body"], capsys)
    assert "is not a Postdesk model file" in err
    one_label = write_csv(tmp_path / "one.csv", ["text", "label"], [("a", "x"), ("b", "x"), ("c", "x")])
    err = error_of(["train", "--csv", str(one_label), "--model", str(tmp_path / "m")], capsys)
    assert "at least 2 different labels" in err
    assert "--csv needs --model" in error_of(["train", "--csv", str(one_label)], capsys)
    not_utf8 = tmp_path / "latin1.csv"
    not_utf8.write_bytes("text,label\ncaf\xe9,x\n".encode("latin-1"))
    assert "not readable as UTF-8 CSV" in error_of(["train", "--csv", str(not_utf8), "--model", str(bad)], capsys)


def test_train_without_csv_hands_over_to_the_installation_training(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("postdesk.cli._setup_django", lambda: None)
    placeholder = types.ModuleType("postdesk.desk.training")
    monkeypatch.setitem(sys.modules, "postdesk.desk.training", placeholder)
    assert "not available yet; use --csv FILE" in error_of(["train"], capsys)

    calls = []

    def train_from_conversations(args: object) -> int:
        calls.append(args)
        return 0

    placeholder.train_from_conversations = train_from_conversations  # type: ignore[attr-defined]
    assert main(["train", "--model", "x.joblib"]) == 0
    assert len(calls) == 1 and getattr(calls[0], "model", None) == "x.joblib"


def test_train_and_classify_need_no_database(tmp_path: Path, training_csv: Path) -> None:
    env = {
        **os.environ,
        "POSTDESK_DATA_DIR": str(tmp_path / "never-used"),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
    }
    model = tmp_path / "model.joblib"
    base = [sys.executable, "-m", "postdesk.cli"]
    columns = ["--text-column", "body"]
    trained = subprocess.run(
        [*base, "train", "--csv", str(training_csv), *columns, "--label-column", "category", "--model", str(model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert trained.returncode == 0, trained.stderr
    classified = subprocess.run(
        [*base, "classify", "--model", str(model), "--csv", str(training_csv), *columns],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert classified.returncode == 0, classified.stderr
    rows = list(csv.DictReader(io.StringIO(classified.stdout)))
    assert len(rows) == len(ROWS)
    assert sum(row["label"] == row["category"] for row in rows) >= 10
    assert not (tmp_path / "never-used").exists()

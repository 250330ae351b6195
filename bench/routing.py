"""Routing and duplicate-detection benchmark: hand-out time, comparison time and similarity separation.

Prints (a) the time to hand out 1,000 waiting conversations to 100 agents in each mode,
(b) the time to build a signature and to run `find_incident` for one new mail against 500
recent ones, and (c) on ../shared/corpora/banking77-train (when present), how often two
questions with the same intent and with different intents reach each similarity threshold:
the first is the recall of a paraphrase, the second the false-match rate an incident
threshold has to live with.

    python bench/routing.py [--repeat N]

Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from postdesk.triage.assignment import AgentState, Availability, Mode, Need, Waiting, hand_out  # noqa: E402
from postdesk.triage.duplicates import (  # noqa: E402
    Candidate,
    Signature,
    find_incident,
    signature_of,
    similarity,
)

BANKING77 = REPO.parent / "shared" / "corpora" / "banking77-train" / "train.csv"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def best_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def routing(repeat: int) -> None:
    rng = random.Random(1)
    languages = ["en", "ru", "uk", "fa", "zh"]
    skills = ["billing", "tech", "legal", "vat"]
    agents = [
        AgentState(
            agent_id=i,
            name=f"agent{i}",
            skills=frozenset(rng.sample(skills, 2)),
            languages=frozenset({"en", rng.choice(languages)}),
            capacity=rng.choice([None, 10, 20, 30]),
            open_count=rng.randrange(0, 10),
            availability=rng.choice([Availability.ONLINE] * 4 + [Availability.AWAY, Availability.OFFLINE]),
            on_shift=rng.random() < 0.9,
            last_assigned_at=None if i % 7 == 0 else NOW - timedelta(minutes=rng.randrange(1, 600)),
        )
        for i in range(100)
    ]
    queue = [
        Waiting(
            conversation_id=i,
            need=Need(rng.choice(languages), frozenset(rng.sample(skills, rng.randrange(0, 2))), "normal"),
            waiting_since=NOW - timedelta(minutes=rng.randrange(1, 1000)),
            due_at=None if i % 3 == 0 else NOW + timedelta(minutes=rng.randrange(1, 500)),
        )
        for i in range(1000)
    ]
    for mode in (Mode.ROUND_ROBIN, Mode.LEAST_LOADED):
        assigned = len(hand_out(queue, agents, mode, NOW, language_strict=False))
        ms = best_ms(partial(hand_out, queue, agents, mode, NOW, language_strict=False), repeat)
        print(f"hand_out {mode:<13} 1,000 waiting, 100 agents: {ms:7.1f} ms  ({assigned} assigned)")


def duplicates(repeat: int, texts: list[str]) -> None:
    rng = random.Random(2)
    start = time.perf_counter()
    signatures = [signature_of("", text) for text in texts[:2000]]
    per_signature = (time.perf_counter() - start) / len(signatures) * 1e6
    long_text = " ".join(texts[:40])
    long_us = best_ms(lambda: signature_of("Subject", long_text), repeat) * 1000
    print(f"signature_of: {per_signature:.0f} µs per short question; {long_us:.0f} µs for {len(long_text):,} chars")
    recent = [
        Candidate(i, f"c{i}@example.net", "", NOW - timedelta(seconds=i), signatures[rng.randrange(len(signatures))])
        for i in range(500)
    ]
    new = Candidate.of(10_000, "new@example.net", "Card payment", texts[0], NOW)
    stored = [Signature.from_str(c.signature.to_str()) for c in recent]
    ms = best_ms(lambda: find_incident(new, recent, window=timedelta(hours=1), threshold=0.25, min_reporters=3), repeat)
    print(f"find_incident against 500 recent short questions: {ms:.2f} ms")
    # Long mails fill the sketch (128 hashes), the slower path.
    longs = [signature_of("", " ".join(rng.sample(texts, 20))) for _ in range(500)]
    recent_long = [Candidate(i, f"c{i}@example.net", "", NOW, longs[i]) for i in range(500)]
    new_long = Candidate.of(10_000, "new@example.net", "Card payment", " ".join(texts[:20]), NOW)
    ms = best_ms(
        lambda: find_incident(new_long, recent_long, window=timedelta(hours=1), threshold=0.25, min_reporters=3),
        repeat,
    )
    print(f"find_incident against 500 recent long mails (full sketches): {ms:.2f} ms")
    ms = best_ms(lambda: [Signature.from_str(c.signature.to_str()) for c in recent], repeat)
    print(f"to_str + from_str of 500 signatures: {ms:.2f} ms (mean stored length "
          f"{statistics.mean(len(s.to_str()) for s in stored):.0f} chars)")  # fmt: skip


def separation(rows: list[tuple[str, str]]) -> None:
    rng = random.Random(3)
    by_label: dict[str, list[Signature]] = {}
    for text, label in rows:
        by_label.setdefault(label, []).append(signature_of("", text))
    labels = sorted(by_label)
    same, different = [], []
    for _ in range(20_000):
        label = rng.choice(labels)
        first, second = rng.sample(by_label[label], 2)
        same.append(similarity(first, second))
        one, other = rng.sample(labels, 2)
        different.append(similarity(rng.choice(by_label[one]), rng.choice(by_label[other])))
    print(f"banking77 ({len(rows):,} questions, 20,000 pairs each): share of pairs at or above the threshold")
    print("threshold  same intent  different intent")
    for threshold in (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
        hit = sum(value >= threshold for value in same) / len(same)
        false = sum(value >= threshold for value in different) / len(different)
        print(f"  {threshold:4.2f}       {hit:6.1%}        {false:6.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    routing(args.repeat)
    if BANKING77.is_file():
        with BANKING77.open(newline="", encoding="utf-8") as handle:
            rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    else:
        print(f"!!! {BANKING77} not found: duplicates measured on synthetic text, no separation figures !!!")
        rows = [(f"question {i} about card payment number {i % 37} and transfer {i % 11}", "x") for i in range(2000)]
    duplicates(args.repeat, [text for text, _ in rows])
    if BANKING77.is_file():
        separation(rows)


if __name__ == "__main__":
    main()

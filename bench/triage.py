"""Triage benchmark: classifier accuracy by cross-validation, triage time per mail, rule evaluation time.

Prints (a) 5-fold cross-validated accuracy and macro-F1 on ../shared/corpora/banking77-train for
Postdesk's classifier and for a baseline (word-unigram TF-IDF + logistic regression) in the same
run, with training times; (b) the language detector's build and model-loading time and memory, then
the time to triage one mail (language detection + urgency lexicon + classifier prediction), p50 and
p95 over a few hundred mails (banking77 questions and multilingual support mails); (c) the time to
evaluate 500 rules per mail, from bench/rules.py's `measure(n_rules)`, beside parsing them on every mail.

    python bench/triage.py [--folds N] [--mails N] [--no-cv]

Figures, not pass/fail.
"""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import csv
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from postdesk.triage.classify import Algorithm, CrossValidation, cross_validate, train  # noqa: E402
from postdesk.triage.language import LanguageDetector  # noqa: E402
from postdesk.triage.lexicon import Lexicon  # noqa: E402

BANKING77 = REPO.parent / "shared" / "corpora" / "banking77-train" / "train.csv"
LANGUAGES = ["en", "de", "fr", "es", "ru", "uk", "fa", "zh"]
# Short support mails as customers write them, one or two per configured language.
MULTILINGUAL = [
    "Hello, my payment failed twice this morning and I was still charged. Please check.",
    "Guten Tag, meine Karte wurde abgelehnt, obwohl genug Geld auf dem Konto ist.",
    "Bonjour, je n'arrive pas à me connecter à mon compte depuis hier soir.",
    "Hola, quiero cancelar mi suscripción y recibir un reembolso, por favor.",
    "Здравствуйте! Не проходит оплата картой, пишет ошибку. Что делать?",
    "Добрый день, сайт не работает уже час, клиенты не могут оформить заказ.",
    "Доброго дня! Не можу увійти в особистий кабінет, пароль не підходить.",
    "Вітаю, оплата не пройшла, але гроші з картки списали. Допоможіть, будь ласка.",
    "سلام، پرداخت من ناموفق بود ولی مبلغ از حسابم کسر شد. لطفا پیگیری کنید.",
    "با سلام، سایت از صبح کار نمی‌کند و نمی‌توانم وارد حساب شوم.",
    "你好，我昨天的支付失败了，但是钱已经扣了，请尽快处理。",
    "我的账号无法登录，一直显示密码错误，请帮忙。",
]


def rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def read_banking77() -> tuple[list[str], list[str]]:
    with BANKING77.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["category"] for row in rows]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def show_cv(name: str, result: CrossValidation, seconds: float) -> None:
    fold_fit = statistics.mean(fold.train_seconds for fold in result.per_fold)
    folds = " ".join(f"{fold.accuracy:.3f}" for fold in result.per_fold)
    print(
        f"  {name:<44} accuracy {result.accuracy:6.2%}  macro-F1 {result.macro_f1:6.2%}"
        f"  (folds {folds}; fit {fold_fit:.1f} s/fold, {seconds:.0f} s in all)"
    )


def bench_accuracy(texts: list[str], labels: list[str], folds: int) -> None:
    print(f"(a) {folds}-fold stratified cross-validation on banking77 ({len(texts)} texts, {len(set(labels))} labels)")
    for name, algorithm in (
        ("Postdesk: word 1-2 + char 2-5 TF-IDF, calibrated LinearSVC", Algorithm.CALIBRATED_SVM),
        ("baseline: word unigram TF-IDF + LogisticRegression", Algorithm.BASELINE),
    ):
        started = time.perf_counter()
        result = cross_validate(texts, labels, folds=folds, seed=0, algorithm=algorithm)
        show_cv(name, result, time.perf_counter() - started)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def bench_triage(texts: list[str], labels: list[str], mails: int) -> None:
    print(f"(b) triage of one mail: languages {', '.join(LANGUAGES)}")
    before = rss_mb()
    started = time.perf_counter()
    detector = LanguageDetector(LANGUAGES)
    detector.preload()
    print(
        f"  language detector: built and all models loaded in {time.perf_counter() - started:.1f} s,"
        f" +{rss_mb() - before:.0f} MB resident"
    )
    started = time.perf_counter()
    lexicon = Lexicon.builtin()
    print(f"  urgency lexicon: {len(lexicon.terms)} terms compiled in {(time.perf_counter() - started) * 1000:.0f} ms")
    before = rss_mb()
    started = time.perf_counter()
    model = train(texts, labels, trained_at=datetime.now(UTC))
    print(
        f"  classifier: trained on all {len(texts)} texts in {time.perf_counter() - started:.1f} s,"
        f" +{rss_mb() - before:.0f} MB resident"
    )
    sample = [texts[i] for i in range(0, len(texts), max(1, len(texts) // (mails - len(MULTILINGUAL))))]
    sample = (sample[: mails - len(MULTILINGUAL)] + MULTILINGUAL)[:mails]
    parts: dict[str, list[float]] = {"language": [], "lexicon": [], "classifier": [], "all three": []}
    urgent = 0
    for text in sample:
        language_ms = timed(lambda: detector.detect(text))  # noqa: B023 - called at once
        lexicon_ms = timed(lambda: lexicon.match(text))  # noqa: B023
        classifier_ms = timed(lambda: model.predict([text]))  # noqa: B023
        parts["language"].append(language_ms)
        parts["lexicon"].append(lexicon_ms)
        parts["classifier"].append(classifier_ms)
        parts["all three"].append(language_ms + lexicon_ms + classifier_ms)
        urgent += lexicon.match(text) is not None
    print(f"  {len(sample)} mails ({len(MULTILINGUAL)} multilingual), {urgent} hit the urgency lexicon:")
    for name, values in parts.items():
        print(f"    {name:<11} p50 {percentile(values, 0.5):7.2f} ms   p95 {percentile(values, 0.95):7.2f} ms")
    for text in MULTILINGUAL[4:12:2]:
        detected = detector.detect(text)
        match = lexicon.match(text)
        print(
            f"    e.g. {detected.language} ({detected.confidence:.2f}),"
            f" lexicon {match.priority + '/' + match.topic if match else '-'}: {text[:40]}…"
        )


def bench_rules(n_rules: int) -> None:
    print(f"(c) rule evaluation with {n_rules} rules")
    rules = importlib.import_module("rules")  # bench/rules.py, next to this script
    r = rules.measure(n_rules)
    print(
        f"  compiled rule set: p50 {r['p50_us']:,.0f} µs  p95 {r['p95_us']:,.0f} µs  {r['mails_per_s']:,.0f} mails/s"
        f"  ({r['fired_per_mail']:.1f} rules fire per mail)"
    )
    print(
        f"  baseline, rules parsed on every mail: p50 {r['naive_p50_us']:,.0f} µs  p95 {r['naive_p95_us']:,.0f} µs"
        f"  {r['naive_mails_per_s']:,.0f} mails/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--mails", type=int, default=300, help="mails timed in (b)")
    parser.add_argument("--no-cv", action="store_true", help="skip (a), the slow part")
    parser.add_argument("--rules", type=int, default=500)
    args = parser.parse_args()
    load_before = os.getloadavg()
    if not BANKING77.is_file():
        print(f"!!! {BANKING77} is missing: (a) and (b) NOT measured !!!")
    else:
        texts, labels = read_banking77()
        if not args.no_cv:
            bench_accuracy(texts, labels, args.folds)
        bench_triage(texts, labels, args.mails)
    bench_rules(args.rules)
    load_after = os.getloadavg()
    print(f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

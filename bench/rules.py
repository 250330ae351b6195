"""Rule evaluation time per mail with N realistic rules, against the naive path and a small rule set in the same run.

    python bench/rules.py [--rules 500] [--mails 300] [--repeat 5]

Builds N rules (seeded, so every run measures the same ones) of the kinds administrators write: subject and text
keywords (contains / any-of), regexes on subject and text (order and invoice numbers, "urgent" subjects), sender
domains in lists, languages, tiers and tags, hours-since-wrote checks for the periodic sweep; about 80 % are for
new conversations. Then evaluates them with `RuleSet.cascade(conversation_created, facts)` (what the intake step
runs) for a few hundred varied mails of 0.3-6 KB, and prints p50/p95 in microseconds and mails/s for:

- compiled: `compile_rules` once, then evaluate per mail (the intended path);
- naive: `parse_rule` on every rule's data and compile on every mail (what calling `cascade(list_of_dicts…)`
  per mail would cost);
- 50 rules: the compiled path with a tenth of the rules.

Figures only, no pass/fail. `measure(n_rules)` returns the compiled and naive figures for bench/triage.py.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from postdesk.mail.model import AutomatedKind  # noqa: E402
from postdesk.triage.rules import Facts, Outcome, Trigger, compile_rules, parse_rule  # noqa: E402

KEYWORDS = [
    "refund",
    "invoice",
    "password",
    "login",
    "outage",
    "cancel",
    "subscription",
    "charged twice",
    "delivery",
    "broken",
    "crash",
    "upgrade",
    "downgrade",
    "api key",
    "webhook",
    "gdpr",
    "delete my account",
    "export",
    "security",
    "phishing",
    "lawyer",
    "chargeback",
    "vat",
    "receipt",
    "shipping",
    "tracking",
    "coupon",
    "discount",
    "возврат",
    "оплата",
    "пароль",
    "退款",
    "发票",
    "بازپرداخت",
    "рахунок",
    "bug",
    "error 500",
    "timeout",
    "slow",
]
FILLER = [
    "hello",
    "team",
    "I",
    "have",
    "a",
    "question",
    "about",
    "my",
    "account",
    "and",
    "the",
    "last",
    "order",
    "we",
    "placed",
    "it",
    "seems",
    "that",
    "something",
    "went",
    "wrong",
    "when",
    "we",
    "tried",
    "to",
    "pay",
    "please",
    "have",
    "a",
    "look",
    "and",
    "let",
    "me",
    "know",
    "what",
    "you",
    "need",
    "from",
    "us",
    "thanks",
    "a",
    "lot",
    "best",
    "regards",
]
DOMAINS = [f"customer{index}.example" for index in range(200)] + ["gmail.com", "yahoo.com", "mail.ru", "qq.com"]
REGEXES = [
    r"order\s*#?\d{4,10}",
    r"\binvoice\s+(?:no\.?\s*)?\d+",
    r"^(?:re|fwd?):\s*urgent",
    r"\b(?:cannot|can't) (?:log ?in|sign in)\b",
    r"\berror\s+[45]\d\d\b",
    r"ticket\s*\[#\d+\]",
    r"\b(?:visa|mastercard|amex)\b",
    r"\b[\w.+-]+@example\.(?:com|org)\b",
]
TEAMS = ["billing", "tech", "sales", "legal", "security", "logistics"]
LANGUAGES = ["en", "ru", "uk", "fa", "zh", "de"]


def make_rule_data(count: int, seed: int = 1) -> list[dict[str, object]]:
    """`count` rules of the mix described in the module docstring, the same for the same seed."""
    rng = random.Random(seed)
    rules: list[dict[str, object]] = []
    for index in range(count):
        roll = rng.random()
        trigger = "conversation_created" if rng.random() < 0.8 else rng.choice(["customer_replied", "time_check"])
        conditions: list[dict[str, object]] = []
        if roll < 0.35:
            words = rng.sample(KEYWORDS, rng.randint(1, 3))
            conditions += [{"field": "subject", "operator": "contains", "value": word} for word in words]
            match = "any"
        elif roll < 0.55:
            conditions.append({"field": "text", "operator": "contains", "value": rng.choice(KEYWORDS)})
            conditions.append({"field": "priority", "operator": "in", "value": rng.sample(["low", "normal"], 1)})
            match = "all"
        elif roll < 0.70:
            field = rng.choice(["subject", "text"])
            conditions.append({"field": field, "operator": "matches", "value": rng.choice(REGEXES)})
            conditions.append({"field": "automated_kind", "operator": "is", "value": "none"})
            match = "all"
        elif roll < 0.82:
            conditions.append({"field": "sender_domain", "operator": "in", "value": rng.sample(DOMAINS, 10)})
            match = "all"
        elif roll < 0.92:
            conditions.append({"field": "status", "operator": "is", "value": "pending"})
            conditions.append(
                {"field": "hours_since_customer_wrote", "operator": "greater_than", "value": rng.randint(24, 240)}
            )
            match = "all"
        else:
            conditions.append({"field": "tags", "operator": "has_tag", "value": rng.choice(["vip", "eu", "trial"])})
            conditions.append({"field": "language", "operator": "in", "value": rng.sample(LANGUAGES, 2)})
            conditions.append({"field": "contact_tier", "operator": "is", "value": "gold"})
            match = "all"
        actions: list[dict[str, object]] = [
            rng.choice(
                [
                    {"kind": "set_team", "value": rng.choice(TEAMS)},
                    {"kind": "set_priority", "value": rng.choice(["urgent", "high", "normal"])},
                    {"kind": "set_category", "value": rng.choice(KEYWORDS)},
                    {"kind": "add_tags", "value": [rng.choice(KEYWORDS).replace(" ", "-")]},
                    {"kind": "notify", "value": "supervisor"},
                ]
            )
        ]
        rules.append(
            {
                "id": f"rule-{index:04d}",
                "name": f"Rule {index}",
                "triggers": [trigger],
                "match": match,
                "conditions": conditions,
                "actions": actions,
                "order": rng.randint(0, 100),
                "stop_processing": rng.random() < 0.02,
            }
        )
    return rules


def make_facts(count: int, seed: int = 2) -> list[Facts]:
    """Varied mails: a subject with a keyword half the time, 50-1,000 words of text with a few keywords."""
    rng = random.Random(seed)
    mails: list[Facts] = []
    for _ in range(count):
        words = [rng.choice(FILLER) for _ in range(rng.randint(50, 1000))]
        for _ in range(rng.randint(0, 3)):
            words.insert(rng.randrange(len(words)), rng.choice(KEYWORDS))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), f"order #{rng.randint(1000, 99999999)}")
        subject = " ".join(rng.choice(FILLER) for _ in range(rng.randint(2, 8)))
        if rng.random() < 0.5:
            subject = f"{rng.choice(['', 'Re: ', 'Fwd: '])}{rng.choice(KEYWORDS)} {subject}"
        mails.append(
            Facts(
                mailbox_id=str(rng.randint(1, 5)),
                mailbox_address="support@example.com",
                sender_address=f"user{rng.randint(1, 9999)}@{rng.choice(DOMAINS)}",
                subject=subject,
                text=" ".join(words),
                language=rng.choice(LANGUAGES),
                priority=rng.choice(["low", "normal", "normal", "high"]),
                contact_tier=rng.choice(["", "", "gold", "silver"]),
                tags=frozenset(rng.sample(["vip", "eu", "trial", "beta"], rng.randint(0, 2))),
                has_attachments=rng.random() < 0.2,
                automated_kind=AutomatedKind.AUTO_REPLY if rng.random() < 0.05 else None,
                hours_since_customer_wrote=0.0,
                status="new",
            )
        )
    return mails


def _time_per_mail(run: Callable[[Facts], Outcome], mails: list[Facts], repeat: int) -> tuple[list[float], int]:
    timings: list[float] = []
    fired = 0
    for _ in range(repeat):
        for facts in mails:
            started = time.perf_counter_ns()
            outcome = run(facts)
            timings.append((time.perf_counter_ns() - started) / 1000)
            fired += len(outcome.firings)
    return timings, fired


def _figures(timings: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[94], 1e6 / statistics.fmean(timings)


def measure(n_rules: int, *, mails: int = 300, repeat: int = 5) -> dict[str, float]:
    """p50/p95 µs and mails/s of compiled evaluation with `n_rules` rules, and of the naive path (parse per mail)."""
    data = make_rule_data(n_rules)
    facts = make_facts(mails)
    ruleset = compile_rules(parse_rule(item) for item in data)
    compiled_times, fired = _time_per_mail(lambda f: ruleset.cascade(Trigger.CONVERSATION_CREATED, f), facts, repeat)

    def naive(f: Facts) -> Outcome:
        return compile_rules(parse_rule(item) for item in data).cascade(Trigger.CONVERSATION_CREATED, f)

    naive_times, _ = _time_per_mail(naive, facts[: max(20, mails // 10)], 1)
    p50, p95, rate = _figures(compiled_times)
    naive_p50, naive_p95, naive_rate = _figures(naive_times)
    return {
        "rules": float(n_rules),
        "p50_us": p50,
        "p95_us": p95,
        "mails_per_s": rate,
        "fired_per_mail": fired / len(compiled_times),
        "naive_p50_us": naive_p50,
        "naive_p95_us": naive_p95,
        "naive_mails_per_s": naive_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    big = measure(args.rules, mails=args.mails, repeat=args.repeat)
    small = measure(max(1, args.rules // 10), mails=args.mails, repeat=args.repeat)
    print(f"rule evaluation per mail (cascade on conversation_created), {args.mails} mails x {args.repeat}")
    print(f"{'path':34} {'p50 µs':>10} {'p95 µs':>10} {'mails/s':>10}")
    rows = [
        (f"compiled, {args.rules} rules", big["p50_us"], big["p95_us"], big["mails_per_s"]),
        (f"naive (parse per mail), {args.rules}", big["naive_p50_us"], big["naive_p95_us"], big["naive_mails_per_s"]),
        (f"compiled, {int(small['rules'])} rules", small["p50_us"], small["p95_us"], small["mails_per_s"]),
    ]
    for label, p50, p95, rate in rows:
        print(f"{label:34} {p50:10.0f} {p95:10.0f} {rate:10.0f}")
    print(
        f"rules fired per mail: {big['fired_per_mail']:.1f} of {args.rules}, {small['fired_per_mail']:.1f} of "
        f"{int(small['rules'])}"
    )
    print(f"compiled vs naive at {args.rules} rules: {big['naive_p50_us'] / big['p50_us']:.0f}x faster (p50)")


if __name__ == "__main__":
    main()

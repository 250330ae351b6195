"""The urgency lexicon: phrases that mark a mail urgent or high priority before any model is trained.

A term is written as the customer writes it, normalised the same way as the mail text (see
`normalise`). A word ending in `*` is a stem and matches any ending ("оплат*" matches "оплата",
"оплату", "оплатой"), because Russian, Ukrainian and Persian inflect what English does not. Words
of alphabetic scripts match on word boundaries ("bug" never fires on "debugging"); Chinese and
Japanese are written without spaces, so their terms match anywhere. All terms of one priority are
compiled into a single regular expression shaped like a trie, so matching costs about the same for
ten terms as for thousands.
"""

# Terms in Cyrillic, Persian and Chinese are the point here: confusable letters are intentional.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Lexicon",
    "LexiconError",
    "Topic",
    "UrgencyMatch",
    "UrgencyPriority",
    "UrgencyTerm",
    "normalise",
]


class LexiconError(ValueError):
    """A term an administrator entered cannot be used; the message says why."""


class UrgencyPriority(StrEnum):
    """The priorities the lexicon can set; the values are those of the conversation's priority field."""

    URGENT = "urgent"
    HIGH = "high"


class Topic(StrEnum):
    """The built-in topics; administrators' own terms may name any other topic."""

    PAYMENT_FAILED = "payment_failed"
    OUTAGE = "outage"
    BUG = "bug"
    SECURITY = "security"
    LEGAL = "legal"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class UrgencyTerm:
    """One phrase: `term` in `language` (ISO 639-1) means `topic` at `priority`."""

    term: str
    language: str
    topic: str
    priority: UrgencyPriority

    def __post_init__(self) -> None:
        if not normalise(self.term).replace("*", "").strip():
            raise LexiconError(f"urgency term {self.term!r} is empty")
        if any("*" in word[:-1] or word == "*" for word in self.term.split()):
            raise LexiconError(f"urgency term {self.term!r}: '*' may only end a word (a stem)")
        if not self.language.strip():
            raise LexiconError(f"urgency term {self.term!r} has no language")
        if not self.topic.strip():
            raise LexiconError(f"urgency term {self.term!r} has no topic")
        try:
            # Administrators' terms arrive from forms and data files as plain strings.
            object.__setattr__(self, "priority", UrgencyPriority(self.priority))
        except ValueError:
            allowed = ", ".join(p.value for p in UrgencyPriority)
            raise LexiconError(
                f"urgency term {self.term!r}: priority {self.priority!r} is not one of {allowed}"
            ) from None


@dataclass(frozen=True, slots=True)
class UrgencyMatch:
    """The hit that decided: its priority and topic, and the term (as written in the lexicon) that matched."""

    priority: UrgencyPriority
    topic: str
    term: str
    language: str


# Arabic letters that Persian writes with its own code points, and Arabic diacritics and the
# elongation stroke (tatweel) that change the look but not the word.
_PERSIAN_LETTERS = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "ۀ": "ه", "\u0640": None})
_ARABIC_MARKS = re.compile("[\u064b-\u065f\u0670]")
# The zero-width non-joiner splits Persian words ("نمی‌شود"); writers also use a space or nothing.
_ZWNJ = re.compile("[\u200c\u200d\u200b\ufeff]")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The text as terms are matched against it: NFKC, case-folded, ё→е, Persian letters unified, one space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("ё", "е").translate(_PERSIAN_LETTERS).translate(_QUOTES)
    text = _ARABIC_MARKS.sub("", text)
    text = _ZWNJ.sub(" ", text)
    return _SPACES.sub(" ", text)


# Scripts written without spaces between words: terms there match as substrings.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_ARABIC_CHAR = re.compile("[\u0600-\u06ff]")

# Trie tokens other than single characters.
_SEP = "\x00sep"  # one or more spaces between words
_OPT_SEP = "\x00opt-sep"  # Persian: a space, a ZWNJ (normalised to a space) or nothing
_END_WORD = "\x00end-word"
_END_STEM = "\x00end-stem"
_END_NONE = "\x00end-none"
_TOKEN_PATTERN = {
    _SEP: r"\s+",
    _OPT_SEP: r"\s*",
    _END_WORD: r"(?!\w)",
    _END_STEM: r"\w*",
    _END_NONE: "",
}
# Characters, then separators, then ends: at one position the longer phrase wins.
_TOKEN_ORDER = {_SEP: 1, _OPT_SEP: 1, _END_WORD: 2, _END_STEM: 2, _END_NONE: 2}


def _tokens(term: str) -> tuple[list[str], bool]:
    """The trie path of a term, and whether it needs a word boundary before it."""
    text = normalise(term).strip()
    if _UNSPACED_CHAR.search(text):
        return [*text.replace(" ", "").replace("*", ""), _END_NONE], False
    separator = _OPT_SEP if _ARABIC_CHAR.search(text) else _SEP
    path: list[str] = []
    words = text.split(" ")
    for index, word in enumerate(words):
        stem = word.endswith("*")
        path.extend(word.rstrip("*"))
        if index < len(words) - 1:
            # A stem inside a phrase ("не проход* оплат*") takes any ending before the next word.
            if stem:
                path.append(_END_STEM)
            path.append(separator)
        else:
            path.append(_END_STEM if stem else _END_WORD)
    return path, True


class _Node(dict[str, "_Node"]):
    """A trie node: children by token; `term` is set on the node after a term's last token."""

    __slots__ = ("term",)

    def __init__(self) -> None:
        super().__init__()
        self.term: UrgencyTerm | None = None


class _Matcher:
    """All terms of one priority as trie-shaped regular expressions; `lastindex` names the term."""

    def __init__(self, terms: Sequence[UrgencyTerm]) -> None:
        bounded, unbounded = _Node(), _Node()
        for term in terms:
            path, needs_boundary = _tokens(term.term)
            node = bounded if needs_boundary else unbounded
            for token in path:
                node = node.setdefault(token, _Node())
            node.term = term  # a later term with the same spelling wins: administrators override
        self._bounded = self._compile(bounded, r"(?<!\w)")
        self._unbounded = self._compile(unbounded, "")

    def _compile(self, root: _Node, prefix: str) -> tuple[re.Pattern[str], list[UrgencyTerm]] | None:
        if not root:
            return None
        terms: list[UrgencyTerm] = []
        return re.compile(prefix + self._emit(root, terms)), terms

    def _emit(self, node: _Node, terms: list[UrgencyTerm]) -> str:
        alternatives = []
        for token in sorted(node, key=lambda t: (_TOKEN_ORDER.get(t, 0), t)):
            piece = _TOKEN_PATTERN[token] if token in _TOKEN_PATTERN else re.escape(token)
            alternatives.append(piece + self._emit(node[token], terms))
        if node.term is not None:
            # An empty group per term: it closes last, so the match's `lastindex` is this term's number.
            terms.append(node.term)
            alternatives.append("()")
        if len(alternatives) == 1:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")"

    def search(self, spaced: str, text: str) -> UrgencyTerm | None:
        """The leftmost hit; `spaced` is `text` with unspaced-script letters blanked (same length)."""
        best: tuple[int, UrgencyTerm] | None = None
        for compiled, haystack in ((self._bounded, spaced), (self._unbounded, text)):
            if compiled is None:
                continue
            regex, terms = compiled
            found = regex.search(haystack)
            if found is not None and found.lastindex is not None and (best is None or found.start() < best[0]):
                best = (found.start(), terms[found.lastindex - 1])
        return best[1] if best else None


class Lexicon:
    """An immutable set of urgency terms; `match` returns the highest-priority hit in a text."""

    __slots__ = ("_matchers", "terms")

    def __init__(self, terms: Iterable[UrgencyTerm]) -> None:
        self.terms: tuple[UrgencyTerm, ...] = tuple(terms)
        self._matchers = [
            (priority, _Matcher([t for t in self.terms if t.priority == priority])) for priority in UrgencyPriority
        ]

    @classmethod
    def builtin(cls) -> Lexicon:
        """The lexicon shipped with Postdesk (en, ru, uk, fa, zh)."""
        return cls(builtin_terms())

    def with_extra(self, terms: Iterable[UrgencyTerm]) -> Lexicon:
        """This lexicon plus an administrator's terms; an extra term spelled like an existing one replaces it."""
        return Lexicon([*self.terms, *terms])

    def match(self, text: str) -> UrgencyMatch | None:
        """The first hit of the highest priority that has one, or None when nothing in the text is urgent."""
        normalised = normalise(text)
        # Chinese letters count as word characters in Python's regular expressions; blanked, they
        # are boundaries, so that an English "bug" is found in "这个bug很严重".
        spaced = _UNSPACED_CHAR.sub(" ", normalised)
        for priority, matcher in self._matchers:
            term = matcher.search(spaced, normalised)
            if term is not None:
                return UrgencyMatch(priority=priority, topic=term.topic, term=term.term, language=term.language)
        return None


_U = UrgencyPriority.URGENT
_H = UrgencyPriority.HIGH

# (language, topic, priority): terms. Phrases were chosen to be what customers write when the
# topic is really the case; words that are frequent in harmless mail ("problem", "issue", Russian
# "зависит" from "завис-") are left out or spelled out in full.
_BUILTIN: dict[tuple[str, Topic, UrgencyPriority], tuple[str, ...]] = {
    ("en", Topic.PAYMENT_FAILED, _U): (
        "payment fail*",
        "payment was declined",
        "payment declined",
        "payment was rejected",
        "payment didn't go through",
        "payment did not go through",
        "payment isn't going through",
        "payment is not going through",
        "card declined",
        "card was declined",
        "card is declined",
        "card keeps getting declined",
        "transaction fail*",
        "transaction declined",
        "charged twice",
        "double charged",
        "double charge",
        "charged me twice",
        "can't pay",
        "cannot pay",
        "unable to pay",
    ),
    ("en", Topic.OUTAGE, _U): (
        "outage",
        "site is down",
        "website is down",
        "service is down",
        "server is down",
        "app is down",
        "is down for everyone",
        "completely down",
        "nothing works",
        "nothing is working",
        "503 service unavailable",
        "502 bad gateway",
        "500 internal server error",
    ),
    ("en", Topic.OUTAGE, _H): (
        "can't log in",
        "cannot log in",
        "can't login",
        "cannot login",
        "unable to log in",
        "unable to login",
        "can't sign in",
        "cannot sign in",
        "unable to sign in",
        "can't access my account",
        "cannot access my account",
        "locked out of my account",
    ),
    ("en", Topic.BUG, _H): (
        "bug",
        "bugs",
        "crash*",
        "keeps freezing",
        "error message",
        "getting an error",
        "doesn't work",
        "does not work",
        "isn't working",
        "is not working",
        "not working",
        "stopped working",
        "is broken",
        "glitch*",
    ),
    ("en", Topic.SECURITY, _U): (
        "hacked",
        "been hacked",
        "account compromised",
        "account was compromised",
        "account has been compromised",
        "phishing",
        "unauthorized",
        "unauthorised",
        "fraud*",
        "identity theft",
        "data breach",
        "data leak",
        "security vulnerabilit*",
        "suspicious login*",
        "suspicious activity",
        "someone logged into my account",
        "card was stolen",
        "stolen card",
    ),
    ("en", Topic.LEGAL, _U): (
        "lawyer*",
        "attorney*",
        "lawsuit",
        "sue you",
        "legal action",
        "take legal",
        "small claims court",
        "see you in court",
        "cease and desist",
        "subpoena",
        "data protection authority",
        "ombudsman",
    ),
    ("en", Topic.LEGAL, _H): (
        "gdpr",
        "formal complaint",
        "chargeback",
    ),
    ("en", Topic.CANCEL, _H): (
        "cancel*",
        "refund*",
        "money back",
        "close my account",
        "delete my account",
        "terminate my contract",
        "terminate my subscription",
    ),
    ("ru", Topic.PAYMENT_FAILED, _U): (
        "не проход* оплат*",
        "не проход* платеж*",
        "оплат* не проход*",
        "оплат* не прошл*",
        "платеж* не проход*",
        "платеж не прошел",
        "не могу оплатить",
        "не могу заплатить",
        "не получается оплатить",
        "ошибк* оплат*",
        "ошибк* при оплате",
        "списали дважды",
        "списал* два раза",
        "двойн* списани*",
        "карт* отклонен*",
        "платеж отклонен",
        "оплат* отклонен*",
    ),
    ("ru", Topic.OUTAGE, _U): (
        "сайт не работает",
        "сервис не работает",
        "приложение не работает",
        "ничего не работает",
        "сайт недоступ*",
        "сервис недоступ*",
        "сервер недоступ*",
        "сайт лежит",
        "сайт упал",
        "все упало",
        "все легло",
    ),
    ("ru", Topic.OUTAGE, _H): (
        "не могу войти",
        "не могу зайти",
        "не получается войти",
        "не пускает в личный кабинет",
    ),
    ("ru", Topic.BUG, _H): (
        "не работает",
        "перестал* работать",
        "ошибк*",
        "баг*",
        "глюк*",
        "глючит",
        "вылетает",
        "зависает",
        "зависло",
        "сломал*",
    ),
    ("ru", Topic.SECURITY, _U): (
        "взлом*",
        "мошенни*",
        "украли",
        "украден*",
        "несанкционирован*",
        "фишинг*",
        "утечк* данных",
        "кто-то зашел в мой аккаунт",
    ),
    ("ru", Topic.LEGAL, _U): (
        "в суд",
        "судебн*",
        "подам иск",
        "подать иск",
        "исков* заявлени*",
        "юрист*",
        "адвокат*",
        "прокуратур*",
        "роспотребнадзор*",
        "защите прав потребителей",
    ),
    ("ru", Topic.LEGAL, _H): ("претензи*",),
    ("ru", Topic.CANCEL, _H): (
        "отмените",
        "отменить",
        "отмена подписки",
        "отказ* от подписки",
        "верните деньги",
        "вернуть деньги",
        "возврат денег",
        "возврат средств",
        "расторгн*",
        "удалить аккаунт",
        "удалите аккаунт",
        "закрыть счет",
        "отписаться",
    ),
    # Stems shared with Russian ("не проход* оплат*", "баг*", "юрист*", "в суд") are listed once, above.
    ("uk", Topic.PAYMENT_FAILED, _U): (
        "не проход* платіж*",
        "оплат* не пройшл*",
        "платіж не пройшов",
        "не можу оплатити",
        "не можу сплатити",
        "не вдається оплатити",
        "помилк* оплат*",
        "помилк* під час оплати",
        "списали двічі",
        "списал* двічі",
        "подвійн* списан*",
        "картк* відхилен*",
        "платіж відхилен*",
    ),
    ("uk", Topic.OUTAGE, _U): (
        "сайт не працює",
        "сервіс не працює",
        "застосунок не працює",
        "нічого не працює",
        "сайт недоступн*",
        "сервіс недоступн*",
        "сервер недоступн*",
        "сайт впав",
        "все впало",
    ),
    ("uk", Topic.OUTAGE, _H): (
        "не можу увійти",
        "не можу зайти",
        "не вдається увійти",
    ),
    ("uk", Topic.BUG, _H): (
        "не працює",
        "перестав працювати",
        "перестала працювати",
        "перестало працювати",
        "помилк*",
        "збій",
        "збої",
        "глюч*",
        "вилітає",
        "зависає",
        "зламався",
        "зламалася",
        "зламалось",
    ),
    ("uk", Topic.SECURITY, _U): (
        "зламали",
        "злам акаунт*",
        "шахра*",
        "вкрали",
        "викрадено",
        "несанкціонован*",
        "фішинг*",
        "витік даних",
        "витоку даних",
    ),
    ("uk", Topic.LEGAL, _U): (
        "до суду",
        "судов*",
        "позов",
        "позовн*",
        "захист прав споживачів",
    ),
    ("uk", Topic.LEGAL, _H): ("претензі*",),
    ("uk", Topic.CANCEL, _H): (
        "скасуван*",
        "скасуват*",
        "скасуйте",
        "повернення коштів",
        "поверніть гроші",
        "повернути гроші",
        "розірва*",
        "видалити акаунт",
        "видаліть акаунт",
        "відписатися",
    ),
    ("fa", Topic.PAYMENT_FAILED, _U): (
        "پرداخت ناموفق",
        "پرداخت من ناموفق",
        "پرداختم ناموفق",
        "پرداخت انجام نشد",
        "پرداخت نشد",
        "تراکنش ناموفق",
        "خطای پرداخت",
        "نمی توانم پرداخت",
        "نمیتوانم پرداخت",
        "دو بار کسر",
        "پول کسر شد",
        "مبلغ کسر شد",
    ),
    ("fa", Topic.OUTAGE, _U): (
        "سایت کار نمی کند",
        "سایت از دسترس خارج",
        "سایت قطع",
        "سرویس قطع",
        "قطعی سایت",
        "قطعی سرویس",
        "قطع شده",
        "هیچ چیز کار نمی کند",
    ),
    ("fa", Topic.OUTAGE, _H): (
        "نمی توانم وارد شوم",
        "وارد حساب نمی شوم",
        "نمی توانم وارد حساب",
    ),
    ("fa", Topic.BUG, _H): (
        "کار نمی کند",
        "خطا*",
        "باگ",
        "مشکل فنی",
        "کرش",
    ),
    ("fa", Topic.SECURITY, _U): (
        "هک شد*",
        "هک شده",
        "کلاهبرداری",
        "فیشینگ",
        "دسترسی غیرمجاز",
        "دسترسی غیر مجاز",
        "سرقت",
    ),
    ("fa", Topic.LEGAL, _U): (
        "وکیل",
        "دادگاه",
        "پیگرد قانونی",
        "اقدام قانونی",
        "شکایت قانونی",
    ),
    ("fa", Topic.LEGAL, _H): ("شکایت",),
    ("fa", Topic.CANCEL, _H): (
        "لغو",
        "لغو اشتراک",
        "بازپرداخت",
        "استرداد وجه",
        "پس دادن پول",
        "بازگشت پول",
        "حذف حساب",
    ),
    ("zh", Topic.PAYMENT_FAILED, _U): (
        "支付失败",
        "付款失败",
        "支付不成功",
        "付款不成功",
        "无法支付",
        "不能支付",
        "付不了款",
        "扣款失败",
        "重复扣款",
        "扣了两次",
        "交易失败",
    ),
    ("zh", Topic.OUTAGE, _U): (
        "无法访问",
        "网站打不开",
        "打不开网站",
        "服务中断",
        "宕机",
        "服务器挂了",
        "全部瘫痪",
    ),
    ("zh", Topic.OUTAGE, _H): (
        "无法登录",
        "不能登录",
        "登录不了",
        "登不上",
    ),
    ("zh", Topic.BUG, _H): (
        "报错",
        "出错",
        "崩溃",
        "闪退",
        "故障",
        "不能用",
        "用不了",
        "无法使用",
    ),
    ("zh", Topic.SECURITY, _U): (
        "被盗",
        "被黑",
        "盗号",
        "诈骗",
        "欺诈",
        "钓鱼网站",
        "钓鱼邮件",
        "未经授权",
        "泄露",
    ),
    ("zh", Topic.LEGAL, _U): (
        "律师",
        "起诉",
        "法院",
        "法律途径",
        "消协",
        "报警",
    ),
    ("zh", Topic.LEGAL, _H): ("投诉",),
    ("zh", Topic.CANCEL, _H): (
        "退款",
        "退钱",
        "取消订阅",
        "取消订单",
        "取消",
        "注销",
        "退订",
    ),
}


def builtin_terms() -> list[UrgencyTerm]:
    """Every built-in term, for listing in the admin and for extending."""
    return [
        UrgencyTerm(term=term, language=language, topic=topic, priority=priority)
        for (language, topic, priority), terms in _BUILTIN.items()
        for term in terms
    ]

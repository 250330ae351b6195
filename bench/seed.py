# ruff: noqa: RUF001  (multilingual support mail on purpose: Cyrillic, Persian and full-width punctuation)
"""Fill PostgreSQL with a workspace at scale: teams, mailboxes, agents, contacts, conversations, messages, events.

    python bench/seed.py [--conversations 100000] [--messages-per 5] [--teams 4] [--agents 40]
                         [--database-url postgres://root@127.0.0.1:5432/postdesk_bench] [--reset] [--seed 1]

Rows go in with COPY (psycopg 3), not the ORM, in one transaction: the bulk tables are truncated, their
secondary indexes and foreign keys are dropped, the rows are copied with FREEZE (so no VACUUM pass is
needed for index-only scans), then every index and constraint the migrations defined is rebuilt from
its own definition, and the tables are analysed. The search index's triggers are paused during the load
(postdesk.desk.search.PAUSE_SQL) and the index is rebuilt in bulk afterwards (search.rebuild()).
Everything is shaped like what the app writes itself (list-row fields, waiting_since, priority_rank,
reply tokens, Message-IDs and ThreadRefs per mailbox, timeline events, the conversation-number counter),
so the pages, the search index and threading of new mail work on it as on real data.

Distributions: status ~10 % new, 15 % open, 10 % pending, 3 % snoozed, 55 % resolved, 5 % closed,
2 % spam (active ones skewed towards recent conversations); mailboxes weighted 1, 1/2, 1/3 …; 60 %
assigned; ages over two years with volume growing towards today; priority 80 % normal; bodies made of
short support sentences in en, ru, uk, fa and zh. Some rare words are sprinkled in for search
benchmarks; the script prints them with their exact counts.

Every seeded account (admin@bench.example, agent001@bench.example …) has the password PASSWORD below.
The target database is created if missing; a database that already holds conversations or users is
refused unless --reset, which drops and recreates it.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DEFAULT_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/postdesk_bench")
PASSWORD = "bench-password-123"  # every seeded agent's, hashed once
ADMIN_EMAIL = "admin@bench.example"
DOMAIN = "bench.example"

# Tables filled with COPY (truncated first, in the same transaction, so COPY FREEZE is allowed).
BULK_TABLES = (
    "desk_contact",
    "desk_contactaddress",
    "desk_conversation",
    "desk_conversation_tags",
    "desk_message",
    "desk_event",
    "desk_threadref",
)

STATUS_WEIGHTS = {
    "new": 0.10,
    "open": 0.15,
    "pending": 0.10,
    "snoozed": 0.03,
    "resolved": 0.55,
    "closed": 0.05,
    "spam": 0.02,
}
ACTIVE = ("new", "open", "pending", "snoozed")
PRIORITIES = (("urgent", 0, 0.02), ("high", 1, 0.08), ("normal", 2, 0.80), ("low", 3, 0.10))
LANGUAGE_WEIGHTS = {"en": 0.50, "ru": 0.15, "uk": 0.10, "fa": 0.10, "zh": 0.15}
ASSIGNED_SHARE = 0.60
NOTE_SHARE = 0.15  # of the messages between the first and the last
HTML_SHARE = 0.30  # inbound mails that also carry an HTML part
TAGGED_SHARE = 0.25
TAGS = ("billing", "refund", "shipping", "login", "bug", "invoice", "vip", "feature-request", "returns", "damaged")
TEAM_NAMES = ("Billing", "Technical", "Sales", "Returns", "Partners", "Enterprise", "Wholesale", "Marketplace")
SPAN_SECONDS = 730 * 86400  # two years of history
MEAN_GAP_SECONDS = 7 * 3600  # between the messages of a conversation
SNIPPET_INBOUND = 160  # as processing.SNIPPET_LENGTH
SNIPPET_OUTBOUND = 200  # as actions.do_reply

# Rare words for search benchmarks: (language, word, one message in N of that language carries it).
RARE_WORDS: tuple[tuple[str, str, int], ...] = (
    ("en", "quokka", 20_000),
    ("en", "xylograph", 200_000),
    ("ru", "сердолик", 20_000),
    ("ru", "кукурузник", 200_000),
    ("uk", "ґринджоли", 20_000),
    ("uk", "ожеледиця", 200_000),
    ("fa", "شاهتوت", 20_000),
    ("fa", "زنبورک", 200_000),
    ("zh", "蝾螈", 20_000),
    ("zh", "麒麟", 200_000),
)
# Words and phrases that occur in a large share of each language's messages.
COMMON_WORDS = {"en": "order", "ru": "заказ", "uk": "замовлення", "fa": "سفارش", "zh": "订单"}
PHRASES = {
    "en": "tracking number",
    "ru": "номер заказа",
    "uk": "номер відстеження",
    "fa": "کد رهگیری",
    "zh": "快递单号",
}


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    first_names: tuple[tuple[str, str, str], ...]  # (native, latin, "m"/"f"/"")
    last_names: tuple[tuple[str, str, str], ...]  # (masculine, feminine, latin)
    domains: tuple[str, ...]
    subjects: tuple[str, ...]  # "{n}" is an order number
    openers: tuple[str, ...]
    problems: tuple[str, ...]
    followups: tuple[str, ...]
    closers: tuple[str, ...]
    answers: tuple[str, ...]
    agent_closers: tuple[str, ...]
    rare_sentence: str  # "{w}" is a rare word
    reply_prefix: str = "Re: "
    joiner: str = " "  # between sentences
    family_first: bool = False  # "王伟" rather than "Wei Wang"


def _same(*names: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((n, n, n.lower()) for n in names)


LANGUAGES: dict[str, Language] = {
    "en": Language(
        code="en",
        first_names=tuple(
            (n, n.lower(), "")
            for n in (
                "James",
                "Mary",
                "John",
                "Patricia",
                "Robert",
                "Jennifer",
                "Michael",
                "Linda",
                "David",
                "Emily",
                "Daniel",
                "Sarah",
                "Oliver",
                "Chloe",
                "Thomas",
                "Grace",
            )
        ),
        last_names=_same(
            "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker", "Clarke", "Wright", "Hughes"
        ),
        domains=("gmail.test", "outlook.test", "yahoo.test", "shop-customer.test"),
        subjects=(
            "Order #{n} has not arrived",
            "Refund request for order #{n}",
            "Cannot log in to my account",
            "Wrong item received (order #{n})",
            "Question about my invoice {n}",
            "Payment failed twice",
            "How do I change my delivery address?",
            "Damaged package, order #{n}",
            "Subscription renewal charged twice",
            "Password reset email never arrives",
            "Where is my tracking number?",
            "Cancel my order #{n}, please",
        ),
        openers=("Hello,", "Hi there,", "Good morning,", "Hi support team,", "Dear customer service,"),
        problems=(
            "I placed order #{n} last week and it still has not arrived.",
            "The tracking number you sent me does not work on the courier's site.",
            "I was charged twice for the same subscription this month.",
            "The package arrived damaged and the screen is cracked.",
            "I received a blue jacket instead of the black one I ordered.",
            "I cannot log in since yesterday; the site says my password is wrong.",
            "The password reset email never arrives, I checked the spam folder too.",
            "Could you please send me an invoice with our company VAT number?",
            "I would like to return the headphones from order #{n} and get a refund.",
            "Your app crashes every time I open the payment page.",
            "I moved last month and need to change the delivery address for order #{n}.",
            "The discount code from your newsletter is not accepted at checkout.",
        ),
        followups=(
            "Any update on this?",
            "I am still waiting for an answer.",
            "Thanks, but the problem is still there.",
            "I tried that and it did not help.",
            "Here is the screenshot you asked for.",
            "The courier says the parcel was returned to you.",
            "Could you at least tell me when the refund will be processed?",
            "It works now, thank you!",
            "I attached a photo of the damaged box.",
        ),
        closers=("Thanks in advance,", "Best regards,", "Kind regards,", "Thank you,", "Cheers,"),
        answers=(
            "Thank you for contacting us and sorry for the trouble.",
            "I have checked order #{n}: it left our warehouse on Monday.",
            "I have issued a full refund; it should reach your card within 5 business days.",
            "Your new tracking number is {n}; it becomes active within 24 hours.",
            "Please try resetting your password again, I have cleared the lock on your account.",
            "A replacement is on its way at no extra cost.",
            "Could you send us a photo of the damaged item and the box?",
            "I have updated the delivery address as requested.",
            "The duplicate charge has been reversed.",
            "Our developers know about the crash and a fix comes with the next release.",
            "The discount code has been applied to your order by hand.",
        ),
        agent_closers=(
            "Let me know if there is anything else I can do.",
            "Have a great day!",
            "We are here if you need anything else.",
        ),
        rare_sentence="P.S. The courier said something about a {w}, no idea what that means.",
    ),
    "ru": Language(
        code="ru",
        first_names=(
            ("Ольга", "olga", "f"),
            ("Сергей", "sergey", "m"),
            ("Анна", "anna", "f"),
            ("Дмитрий", "dmitry", "m"),
            ("Екатерина", "ekaterina", "f"),
            ("Алексей", "alexey", "m"),
            ("Наталья", "natalia", "f"),
            ("Иван", "ivan", "m"),
            ("Мария", "maria", "f"),
            ("Михаил", "mikhail", "m"),
        ),
        last_names=(
            ("Иванов", "Иванова", "ivanov"),
            ("Смирнов", "Смирнова", "smirnov"),
            ("Кузнецов", "Кузнецова", "kuznetsov"),
            ("Попов", "Попова", "popov"),
            ("Соколов", "Соколова", "sokolov"),
            ("Лебедев", "Лебедева", "lebedev"),
            ("Козлов", "Козлова", "kozlov"),
            ("Новиков", "Новикова", "novikov"),
        ),
        domains=("yandex.test", "mail-ru.test", "gmail.test"),
        subjects=(
            "Заказ №{n} не пришёл",
            "Возврат денег за заказ №{n}",
            "Не могу войти в личный кабинет",
            "Пришёл не тот товар (заказ №{n})",
            "Вопрос по счёту {n}",
            "Оплата не проходит",
            "Как изменить адрес доставки?",
            "Повреждённая посылка, заказ №{n}",
            "Списали деньги дважды за подписку",
            "Не приходит письмо для сброса пароля",
            "Где мой трек-номер?",
            "Отмените, пожалуйста, заказ №{n}",
        ),
        openers=("Здравствуйте!", "Добрый день.", "Добрый вечер,", "Уважаемая служба поддержки,"),
        problems=(
            "Я оформил заказ №{n} на прошлой неделе, но он до сих пор не пришёл.",
            "Трек-номер, который вы прислали, не находится на сайте курьерской службы.",
            "С моей карты дважды списали деньги за подписку в этом месяце.",
            "Посылка пришла повреждённой, экран треснул.",
            "Вместо чёрной куртки мне прислали синюю.",
            "Со вчерашнего дня не могу войти: сайт пишет, что пароль неверный.",
            "Письмо для сброса пароля не приходит, папку «Спам» я проверил.",
            "Пришлите, пожалуйста, счёт с ИНН нашей компании.",
            "Хочу вернуть наушники из заказа №{n} и получить деньги обратно.",
            "Приложение вылетает каждый раз, когда я открываю страницу оплаты.",
            "Я переехал и хочу изменить адрес доставки для заказа №{n}.",
            "Промокод из вашей рассылки не принимается при оформлении заказа.",
            "Уточните, пожалуйста, номер заказа в вашей системе, у меня их два.",
        ),
        followups=(
            "Есть новости?",
            "Я всё ещё жду ответа.",
            "Спасибо, но проблема осталась.",
            "Попробовал, не помогло.",
            "Прикладываю скриншот, как вы просили.",
            "Курьер говорит, что посылку вернули вам.",
            "Подскажите хотя бы, когда вернут деньги?",
            "Всё заработало, спасибо!",
        ),
        closers=("Заранее спасибо.", "С уважением,", "Спасибо!", "Жду ответа."),
        answers=(
            "Спасибо за обращение, приносим извинения за неудобства.",
            "Я проверила заказ №{n}: он отправлен со склада в понедельник.",
            "Мы оформили полный возврат, деньги поступят на карту в течение 5 рабочих дней.",
            "Ваш новый трек-номер {n}, он станет активным в течение суток.",
            "Попробуйте сбросить пароль ещё раз, я сняла блокировку с вашей учётной записи.",
            "Замена уже отправлена, без дополнительной оплаты.",
            "Пришлите, пожалуйста, фото повреждённого товара и коробки.",
            "Я изменила адрес доставки, как вы просили.",
            "Двойное списание отменено.",
            "Разработчики знают о сбое, исправление выйдет в следующем обновлении.",
        ),
        agent_closers=("Если будут вопросы — пишите.", "Хорошего дня!", "Всегда рады помочь."),
        rare_sentence="P.S. Курьер что-то говорил про {w}, не знаю, что это значит.",
    ),
    "uk": Language(
        code="uk",
        first_names=(
            ("Олена", "olena", "f"),
            ("Андрій", "andriy", "m"),
            ("Оксана", "oksana", "f"),
            ("Тарас", "taras", "m"),
            ("Ірина", "iryna", "f"),
            ("Богдан", "bohdan", "m"),
            ("Наталія", "nataliia", "f"),
            ("Юрій", "yuriy", "m"),
        ),
        last_names=(
            ("Шевченко", "Шевченко", "shevchenko"),
            ("Коваленко", "Коваленко", "kovalenko"),
            ("Бондаренко", "Бондаренко", "bondarenko"),
            ("Ткаченко", "Ткаченко", "tkachenko"),
            ("Мельник", "Мельник", "melnyk"),
            ("Бойко", "Бойко", "boyko"),
            ("Лисенко", "Лисенко", "lysenko"),
        ),
        domains=("ukr-net.test", "gmail.test", "i-ua.test"),
        subjects=(
            "Замовлення №{n} не прийшло",
            "Повернення коштів за замовлення №{n}",
            "Не можу увійти в особистий кабінет",
            "Надіслали не той товар (замовлення №{n})",
            "Питання щодо рахунку {n}",
            "Оплата не проходить",
            "Як змінити адресу доставки?",
            "Пошкоджена посилка, замовлення №{n}",
            "Двічі списали гроші за підписку",
            "Не надходить лист для скидання пароля",
            "Де мій номер відстеження?",
            "Скасуйте, будь ласка, замовлення №{n}",
        ),
        openers=("Добрий день!", "Вітаю!", "Доброго ранку,", "Шановна службо підтримки,"),
        problems=(
            "Я оформив замовлення №{n} минулого тижня, але воно досі не прийшло.",
            "Номер відстеження, який ви надіслали, не знаходиться на сайті перевізника.",
            "З моєї картки двічі списали гроші за підписку цього місяця.",
            "Посилка прийшла пошкодженою, екран тріснув.",
            "Замість чорної куртки мені надіслали синю.",
            "З учорашнього дня не можу увійти: сайт пише, що пароль неправильний.",
            "Лист для скидання пароля не надходить, теку «Спам» я перевірив.",
            "Надішліть, будь ласка, рахунок з кодом ЄДРПОУ нашої компанії.",
            "Хочу повернути навушники із замовлення №{n} і отримати гроші назад.",
            "Застосунок вилітає щоразу, коли я відкриваю сторінку оплати.",
            "Я переїхав і хочу змінити адресу доставки для замовлення №{n}.",
            "Промокод з вашої розсилки не приймається під час оформлення.",
        ),
        followups=(
            "Є новини?",
            "Я досі чекаю на відповідь.",
            "Дякую, але проблема залишилася.",
            "Спробував, не допомогло.",
            "Додаю знімок екрана, як ви просили.",
            "Кур'єр каже, що посилку повернули вам.",
            "Підкажіть хоча б, коли повернуть гроші?",
            "Усе запрацювало, дякую!",
        ),
        closers=("Наперед дякую.", "З повагою,", "Дякую!", "Чекаю на відповідь."),
        answers=(
            "Дякуємо за звернення, перепрошуємо за незручності.",
            "Я перевірила замовлення №{n}: його відправлено зі складу в понеділок.",
            "Ми оформили повне повернення, кошти надійдуть на картку протягом 5 робочих днів.",
            "Ваш новий номер відстеження {n}, він стане активним протягом доби.",
            "Спробуйте скинути пароль ще раз, я зняла блокування з вашого облікового запису.",
            "Заміну вже відправлено без додаткової оплати.",
            "Надішліть, будь ласка, фото пошкодженого товару та коробки.",
            "Я змінила адресу доставки, як ви просили.",
            "Подвійне списання скасовано.",
        ),
        agent_closers=("Якщо будуть питання — пишіть.", "Гарного дня!", "Завжди раді допомогти."),
        rare_sentence="P.S. Кур'єр щось казав про {w}, не знаю, що це означає.",
    ),
    "fa": Language(
        code="fa",
        first_names=(
            ("علی", "ali", "m"),
            ("زهرا", "zahra", "f"),
            ("محمد", "mohammad", "m"),
            ("فاطمه", "fatemeh", "f"),
            ("رضا", "reza", "m"),
            ("مریم", "maryam", "f"),
            ("حسین", "hossein", "m"),
            ("سارا", "sara", "f"),
        ),
        last_names=(
            ("احمدی", "احمدی", "ahmadi"),
            ("محمدی", "محمدی", "mohammadi"),
            ("حسینی", "حسینی", "hosseini"),
            ("رضایی", "رضایی", "rezaei"),
            ("کریمی", "کریمی", "karimi"),
            ("موسوی", "موسوی", "mousavi"),
            ("جعفری", "جعفری", "jafari"),
        ),
        domains=("gmail.test", "yahoo.test", "chmail.test"),
        subjects=(
            "سفارش شماره {n} هنوز نرسیده است",
            "درخواست بازپرداخت برای سفارش {n}",
            "نمی‌توانم وارد حساب کاربری‌ام شوم",
            "کالای اشتباه دریافت کردم (سفارش {n})",
            "سؤال درباره فاکتور {n}",
            "پرداخت انجام نمی‌شود",
            "چطور آدرس تحویل را تغییر دهم؟",
            "بسته آسیب‌دیده، سفارش {n}",
            "اشتراک دو بار از حسابم کسر شد",
            "ایمیل بازیابی رمز عبور نمی‌رسد",
            "کد رهگیری من کجاست؟",
            "لطفاً سفارش {n} را لغو کنید",
        ),
        openers=("سلام،", "سلام وقت بخیر،", "با سلام و احترام،", "پشتیبانی محترم،"),
        problems=(
            "سفارش شماره {n} را هفته گذشته ثبت کردم ولی هنوز به دستم نرسیده است.",
            "کد رهگیری که فرستادید در سایت شرکت پست پیدا نمی‌شود.",
            "این ماه مبلغ اشتراک دو بار از کارتم کسر شده است.",
            "بسته آسیب‌دیده رسید و صفحه نمایش ترک خورده است.",
            "به جای کاپشن مشکی، کاپشن آبی برایم فرستاده‌اند.",
            "از دیروز نمی‌توانم وارد شوم؛ سایت می‌گوید رمز عبور اشتباه است.",
            "ایمیل بازیابی رمز عبور نمی‌رسد، پوشه هرزنامه را هم بررسی کردم.",
            "لطفاً فاکتور رسمی با شناسه ملی شرکت ما ارسال کنید.",
            "می‌خواهم هدفون سفارش {n} را مرجوع کنم و پولم را پس بگیرم.",
            "برنامه هر بار که صفحه پرداخت را باز می‌کنم بسته می‌شود.",
            "نقل مکان کرده‌ام و باید آدرس تحویل سفارش {n} را تغییر دهم.",
            "کد تخفیف خبرنامه شما هنگام پرداخت پذیرفته نمی‌شود.",
        ),
        followups=(
            "خبری نشد؟",
            "هنوز منتظر پاسخ هستم.",
            "ممنون، ولی مشکل هنوز پابرجاست.",
            "امتحان کردم، فایده‌ای نداشت.",
            "تصویر صفحه را همان‌طور که خواسته بودید پیوست کردم.",
            "پیک می‌گوید بسته به شما برگشت داده شده است.",
            "حداقل بگویید بازپرداخت کی انجام می‌شود؟",
            "الان درست شد، ممنونم!",
        ),
        closers=("پیشاپیش سپاسگزارم.", "با احترام،", "ممنون،", "منتظر پاسخ شما هستم."),
        answers=(
            "از تماس شما سپاسگزاریم و بابت مشکل پیش‌آمده عذرخواهی می‌کنیم.",
            "سفارش {n} را بررسی کردم: روز دوشنبه از انبار ارسال شده است.",
            "بازپرداخت کامل انجام شد و ظرف ۵ روز کاری به کارت شما می‌رسد.",
            "کد رهگیری جدید شما {n} است و ظرف ۲۴ ساعت فعال می‌شود.",
            "لطفاً دوباره رمز عبور را بازیابی کنید، قفل حساب شما را برداشتم.",
            "کالای جایگزین بدون هزینه اضافه ارسال شد.",
            "لطفاً از کالای آسیب‌دیده و جعبه آن عکس بفرستید.",
            "آدرس تحویل را طبق درخواست شما تغییر دادم.",
            "کسر دوباره مبلغ برگشت داده شد.",
        ),
        agent_closers=("اگر سؤال دیگری دارید در خدمتیم.", "روز خوبی داشته باشید!", "همیشه آماده کمک هستیم."),
        rare_sentence="پی‌نوشت: پیک چیزی درباره {w} گفت، نمی‌دانم یعنی چه.",
    ),
    "zh": Language(
        code="zh",
        first_names=(
            ("伟", "wei", ""),
            ("芳", "fang", ""),
            ("娜", "na", ""),
            ("敏", "min", ""),
            ("静", "jing", ""),
            ("磊", "lei", ""),
            ("洋", "yang", ""),
            ("婷", "ting", ""),
            ("强", "qiang", ""),
            ("晓明", "xiaoming", ""),
        ),
        last_names=(
            ("王", "王", "wang"),
            ("李", "李", "li"),
            ("张", "张", "zhang"),
            ("刘", "刘", "liu"),
            ("陈", "陈", "chen"),
            ("杨", "杨", "yang"),
            ("黄", "黄", "huang"),
            ("赵", "赵", "zhao"),
        ),
        domains=("qq.test", "163.test", "126.test", "foxmail.test"),
        subjects=(
            "订单{n}还没有收到",
            "订单{n}的退款申请",
            "无法登录我的账户",
            "收到的商品不对（订单{n}）",
            "关于发票{n}的问题",
            "付款一直失败",
            "如何修改收货地址？",
            "包裹破损，订单{n}",
            "订阅被重复扣费",
            "收不到重置密码的邮件",
            "我的快递单号在哪里？",
            "请取消订单{n}",
        ),
        openers=("您好，", "你好！", "客服您好，", "早上好，"),
        problems=(
            "我上周下的订单{n}到现在还没有收到。",
            "你们发给我的快递单号在快递公司网站上查不到。",
            "这个月我的信用卡被重复扣了两次订阅费。",
            "包裹到的时候已经破损，屏幕裂了。",
            "我订的是黑色外套，收到的却是蓝色的。",
            "从昨天开始我就登录不了，网站提示密码错误。",
            "重置密码的邮件一直收不到，垃圾邮件文件夹也查过了。",
            "请给我开一张带公司税号的发票。",
            "我想退回订单{n}里的耳机并申请退款。",
            "每次打开支付页面应用就闪退。",
            "我上个月搬家了，需要修改订单{n}的收货地址。",
            "你们邮件里的优惠码结账时无法使用。",
        ),
        followups=(
            "请问有进展吗？",
            "我还在等你们的回复。",
            "谢谢，但是问题还是没有解决。",
            "我试过了，没有用。",
            "按你们的要求附上截图。",
            "快递员说包裹已经退回给你们了。",
            "至少告诉我退款什么时候到账？",
            "现在可以了，谢谢！",
        ),
        closers=("先谢谢了。", "此致敬礼", "谢谢！", "等待您的回复。"),
        answers=(
            "感谢您的来信，给您带来不便深表歉意。",
            "我查了订单{n}：已于周一从仓库发出。",
            "我们已为您办理全额退款，款项将在5个工作日内退回您的卡。",
            "您的新快递单号是{n}，24小时内生效。",
            "请再试一次重置密码，我已经解除了您账户的锁定。",
            "我们已免费为您补发新商品。",
            "请发给我们破损商品和包装盒的照片。",
            "已按您的要求修改了收货地址。",
            "重复扣款已经退回。",
        ),
        agent_closers=("如有其他问题，请随时联系我们。", "祝您生活愉快！", "随时为您服务。"),
        rare_sentence="另外，快递员提到了{w}，不知道是什么意思。",
        reply_prefix="回复：",
        joiner="",
        family_first=True,
    ),
}

NOTES = (
    "Checked with the warehouse: the parcel was scanned on Monday.",
    "Refund approved by finance.",
    "Second complaint this month, handle with care.",
    "Escalated to the developers, bug {n}.",
    "VIP customer, please answer within the hour.",
    "Waiting for the courier's investigation report.",
    "Same issue as last week's outage, see the status page.",
    "Replacement shipped from the spare stock.",
)


@dataclass(frozen=True, slots=True)
class Options:
    conversations: int = 100_000
    messages_per: int = 5
    teams: int = 4
    agents: int = 40
    seed: int = 1
    batch: int = 5_000  # conversations per COPY round
    maintenance_work_mem: str = "1GB"
    quiet: bool = False


@dataclass(slots=True)
class Account:
    id: int
    email: str
    role: str
    teams: tuple[int, ...]  # team ids


@dataclass(slots=True)
class Result:
    rows: dict[str, int] = field(default_factory=dict)
    rare: Tally[str] = field(default_factory=Tally)
    statuses: Tally[str] = field(default_factory=Tally)
    accounts: list[Account] = field(default_factory=list)
    mailboxes: dict[int, str] = field(default_factory=dict)  # id → address
    mailbox_names: dict[int, str] = field(default_factory=dict)
    mailbox_teams: dict[int, int] = field(default_factory=dict)
    teams: dict[int, str] = field(default_factory=dict)  # id → name
    copy_seconds: float = 0.0
    index_seconds: float = 0.0
    analyze_seconds: float = 0.0
    search_seconds: float | None = None  # None: the app has no search.rebuild()


def _say(options: Options, text: str) -> None:
    if not options.quiet:
        print(text, flush=True)


def _weighted(rng: random.Random, weights: dict[str, float]) -> list[str]:
    """A lookup table of 1,000 entries: rng.choice on it draws with these weights, fast."""
    table: list[str] = []
    for key, weight in weights.items():
        table += [key] * round(weight * 1000)
    return table


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _base36(number: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    while number:
        number, rest = divmod(number, 36)
        out.append(digits[rest])
    return "".join(reversed(out)).rjust(width, "0")


# --- schema handling ---------------------------------------------------------------------------------


def _detach(cur: psycopg.Cursor[Any], table: str) -> list[str]:
    """Drop the table's foreign keys, unique constraints and secondary indexes; return the SQL that rebuilds them."""
    constraints = cur.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('f', 'u') ORDER BY contype DESC, conname",
        (table,),
    ).fetchall()
    indexes = cur.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = %s::regclass AND NOT indisprimary"
        " AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    ).fetchall()
    rebuild = [definition for _name, definition in indexes]
    # Unique constraints ('u') first, then foreign keys ('f'): the ORDER BY contype DESC above.
    rebuild += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, _kind, definition in constraints]
    for name, _kind, _definition in constraints:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')  # type: ignore[arg-type]
    for name, _definition in indexes:
        cur.execute(f"DROP INDEX {name}")  # type: ignore[arg-type]
    return rebuild


def _count(cur: psycopg.Cursor[Any], table: str) -> int:
    row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else 0


# --- the small tables: teams, mailboxes, agents, tags ----------------------------------------------------


def _people(cur: psycopg.Cursor[Any], options: Options, rng: random.Random, now: str, result: Result) -> None:
    from django.contrib.auth.hashers import make_password

    hashed = make_password(PASSWORD)  # once: argon2 on every agent would cost seconds for nothing
    team_ids: list[int] = []
    for index in range(options.teams):
        name = TEAM_NAMES[index] if index < len(TEAM_NAMES) else f"Team {index + 1}"
        row = cur.execute(
            "INSERT INTO desk_team (name, created_at) VALUES (%s, %s) RETURNING id", (name, now)
        ).fetchone()
        assert row
        team_ids.append(int(row[0]))
        result.teams[int(row[0])] = name
        address = f"{name.lower().replace(' ', '-')}@{DOMAIN}"
        mailbox = cur.execute(
            "INSERT INTO desk_mailbox (address, name, team_id, signature, active, imap_host, imap_port, imap_ssl,"
            " imap_user, imap_auth, imap_password_encrypted, imap_folder, imap_processed_folder, imap_last_uid,"
            " oauth_provider, oauth_client_id, oauth_client_secret_encrypted, oauth_authorization_url,"
            " oauth_token_url, oauth_scope, oauth_refresh_token_encrypted, oauth_access_token_encrypted,"
            " smtp_host, smtp_port, smtp_starttls, smtp_user, smtp_password_encrypted, last_error, created_at)"
            " VALUES (%s, %s, %s, %s, true, '', 993, true, '', 'password', '', 'INBOX', '', 0,"
            " '', '', '', '', '', '', '', '', '', 587, true, '', '', '', %s) RETURNING id",
            (address, f"{name} support", row[0], f"— {name} support, Bench Ltd", now),
        ).fetchone()
        assert mailbox
        result.mailboxes[int(mailbox[0])] = address
        result.mailbox_names[int(mailbox[0])] = f"{name} support"
        result.mailbox_teams[int(mailbox[0])] = int(row[0])

    def add_user(email: str, first: str, last: str, *, superuser: bool, role: str, teams: tuple[int, ...]) -> None:
        user = cur.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
            " is_active, date_joined) VALUES (%s, %s, %s, %s, %s, %s, %s, true, %s) RETURNING id",
            (hashed, superuser, email, first, last, email, superuser, now),
        ).fetchone()
        assert user
        profile = cur.execute(
            "INSERT INTO desk_agentprofile (user_id, role) VALUES (%s, %s) RETURNING id", (user[0], role)
        ).fetchone()
        assert profile
        for team in teams:
            cur.execute(
                "INSERT INTO desk_agentprofile_teams (agentprofile_id, team_id) VALUES (%s, %s)", (profile[0], team)
            )
        result.accounts.append(Account(int(user[0]), email, role, teams))

    add_user(ADMIN_EMAIL, "Ada", "Admin", superuser=True, role="admin", teams=())
    languages = list(LANGUAGES.values())
    for index in range(options.agents):
        language = languages[index % len(languages)]
        first = language.first_names[rng.randrange(len(language.first_names))]
        last = language.last_names[rng.randrange(len(language.last_names))]
        team = team_ids[index % len(team_ids)]
        teams = (team,)
        if index % 7 == 6 and len(team_ids) > 1:
            teams = (team, team_ids[(index + 1) % len(team_ids)])
        # The first agent of each team supervises it; every tenth only reads and writes notes.
        role = "supervisor" if index < len(team_ids) else "collaborator" if index % 10 == 9 else "agent"
        add_user(
            f"agent{index + 1:03d}@{DOMAIN}",
            first[0],
            last[1] if first[2] == "f" else last[0],
            superuser=False,
            role=role,
            teams=teams,
        )
    for tag in TAGS:
        cur.execute("INSERT INTO desk_tag (name) VALUES (%s)", (tag,))


# --- the bulk rows ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Contact:
    name: str
    address: str
    language: Language


class _Generator:
    """Rows of the bulk tables as COPY text, one batch of conversations at a time, deterministic for a seed."""

    def __init__(self, options: Options, result: Result, tag_ids: list[int], now: float) -> None:
        self.o = options
        self.r = result
        self.rng = random.Random(options.seed * 7919 + 1)
        self.now = now
        self.tag_ids = tag_ids
        self.statuses_active = [s for s in _weighted(self.rng, STATUS_WEIGHTS) if s in ACTIVE]
        self.statuses_inactive = [s for s in _weighted(self.rng, STATUS_WEIGHTS) if s not in ACTIVE]
        self.active_share = sum(STATUS_WEIGHTS[s] for s in ACTIVE)
        self.priorities = [(name, rank) for name, rank, weight in PRIORITIES for _ in range(round(weight * 1000))]
        self.languages = [LANGUAGES[code] for code in _weighted(self.rng, LANGUAGE_WEIGHTS)]
        mailbox_ids = sorted(result.mailboxes)
        # (mailbox id, team id, address, domain, name), repeated by weight
        self.mailboxes: list[tuple[int, int, str, str, str]] = []
        weights = {str(m): 1 / (i + 1) for i, m in enumerate(mailbox_ids)}
        total = sum(weights.values())
        for key in _weighted(self.rng, {k: v / total for k, v in weights.items()}):
            address = result.mailboxes[int(key)]
            self.mailboxes.append(
                (
                    int(key),
                    result.mailbox_teams[int(key)],
                    address,
                    address.rpartition("@")[2],
                    result.mailbox_names[int(key)],
                )
            )
        self.agents_of: dict[int, list[tuple[int, str]]] = {}  # team id → [(user id, display name)]
        for account in result.accounts:
            if account.role in ("agent", "supervisor"):
                for team in account.teams:
                    self.agents_of.setdefault(team, []).append((account.id, account.email))
        self.contact_count = max(1, int(options.conversations * 0.4))
        self.contacts: list[_Contact] = []
        self.rare_by_language: dict[str, list[tuple[str, float]]] = {}
        for code, word, one_in in RARE_WORDS:
            self.rare_by_language.setdefault(code, []).append((word, 1 / one_in))
        self.next_message = 1
        self.next_event = 1
        self.next_ref = 1
        self.next_tag_link = 1

    # Contacts are made up front: a conversation draws one with a skew, so some customers write often.
    def contact_rows(self) -> tuple[str, str]:
        rng = self.rng
        contacts: list[str] = []
        addresses: list[str] = []
        created = _ts(self.now - SPAN_SECONDS)
        for index in range(1, self.contact_count + 1):
            language = self.languages[rng.randrange(1000)]
            first = language.first_names[rng.randrange(len(language.first_names))]
            last = language.last_names[rng.randrange(len(language.last_names))]
            surname = last[1] if first[2] == "f" else last[0]
            name = f"{surname}{first[0]}" if language.family_first else f"{first[0]} {surname}"
            domain = language.domains[rng.randrange(len(language.domains))]
            address = f"{first[1]}.{last[2]}{index}@{domain}"
            self.contacts.append(_Contact(name, address, language))
            contacts.append(f"{index}\t{name}\t\t{language.code}\tstandard\t\t\t{created}\n")
            addresses.append(f"{index}\t{address}\tf\t\t\\N\t{index}\n")
        return "".join(contacts), "".join(addresses)

    def _body(self, language: Language, paragraphs: Sequence[Sequence[str]], order: str) -> tuple[str, str]:
        """COPY text (paragraphs apart, newlines escaped as \\n) and the one-line snippet of `paragraphs`."""
        joined = [language.joiner.join(sentences).replace("{n}", order) for sentences in paragraphs if sentences]
        return "\\n\\n".join(joined), " ".join(joined)

    def _rare(self, language: Language) -> str | None:
        for word, chance in self.rare_by_language.get(language.code, ()):
            if self.rng.random() < chance:
                self.r.rare[word] += 1
                return language.rare_sentence.replace("{w}", word)
        return None

    def batch(self, first: int, last: int) -> dict[str, str]:
        rng = self.rng
        rand = rng.random
        o = self.o
        n = o.conversations
        now = self.now
        conversations: list[str] = []
        messages: list[str] = []
        events: list[str] = []
        refs: list[str] = []
        tag_links: list[str] = []
        statuses = self.r.statuses
        for number in range(first, last + 1):
            # Stratified in time: conversation numbers grow with their creation time, volume grows towards today.
            q = (number - 1 + rand()) / n
            created = now - SPAN_SECONDS * (1 - math.sqrt(q)) - 600
            if rand() < self.active_share * 2 * q:
                status = self.statuses_active[rng.randrange(len(self.statuses_active))]
            else:
                status = self.statuses_inactive[rng.randrange(len(self.statuses_inactive))]
            statuses[status] += 1
            priority, rank = self.priorities[rng.randrange(1000)]
            mailbox = self.mailboxes[rng.randrange(len(self.mailboxes))]
            mailbox_id, team_id, mailbox_address, mailbox_domain, mailbox_name = mailbox
            contact_id = 1 + int(self.contact_count * rand() ** 1.6)
            contact = self.contacts[contact_id - 1]
            language = contact.language
            order = str(rng.randrange(100000, 999999))
            subject = language.subjects[rng.randrange(len(language.subjects))].replace("{n}", order)
            subject_key = subject.casefold()
            token = _base36(rng.getrandbits(52), 10)[-10:] + _base36(number, 6)
            team_agents = self.agents_of.get(team_id, [])
            with_replies = status not in ("new", "spam")
            assignee: tuple[int, str] | None = None
            if with_replies and team_agents and rand() < ASSIGNED_SHARE / (1 - 0.12):
                assignee = team_agents[rng.randrange(len(team_agents))]
            replier = assignee or (team_agents[rng.randrange(len(team_agents))] if team_agents else None)

            # Directions: the customer first, then turns; the last word is the customer's while they wait
            # (new, open, spam), ours otherwise; some middle messages are internal notes.
            count = o.messages_per
            if with_replies and replier:
                directions = ["inbound" if k % 2 == 0 else "outbound" for k in range(count)]
                if count > 1:
                    directions[-1] = "inbound" if status == "open" else "outbound"
                for k in range(1, count - 1):
                    if rand() < NOTE_SHARE:
                        directions[k] = "note"
            else:
                directions = ["inbound"] * count
            gaps = [rng.expovariate(1 / MEAN_GAP_SECONDS) for _ in range(count)]
            budget = now - created - 120
            scale = min(1.0, budget / sum(gaps)) if sum(gaps) > 0 else 1.0
            when = created
            mail_ids: list[str] = []
            last_mail_at = created
            last_inbound_at: float | None = None
            waiting_since: float | None = None
            snippet = ""
            contact_json = f'[{{"name": "{contact.name}", "address": "{contact.address}"}}]'
            mailbox_json = f'[{{"name": "{mailbox_name}", "address": "{mailbox_address}"}}]'
            event_rows: list[str] = []
            for k, direction in enumerate(directions):
                if k:
                    when += gaps[k] * scale
                message_id = self.next_message
                self.next_message += 1
                stamp = _ts(when)
                html = ""
                if direction == "inbound":
                    if k == 0:
                        said = [
                            language.problems[rng.randrange(len(language.problems))],
                            language.problems[rng.randrange(len(language.problems))],
                        ]
                        opener = [language.openers[rng.randrange(len(language.openers))]]
                    else:
                        said = [language.followups[rng.randrange(len(language.followups))]]
                        opener = []
                    rare = self._rare(language)
                    if rare:
                        said.append(rare)
                    closer = [language.closers[rng.randrange(len(language.closers))], contact.name]
                    text, line = self._body(language, [opener, said, closer], order)
                    key = f"{_base36(rng.getrandbits(40), 8)}.{number}.{k}@{contact.address.partition('@')[2]}"
                    if rand() < HTML_SHARE:
                        html = f'<div dir="auto"><p>{line}</p></div>'
                    in_reply_to = f'["{mail_ids[-1]}"]' if mail_ids else "[]"
                    refs_json = "[" + ", ".join(f'"{m}"' for m in mail_ids[-10:]) + "]"
                    subject_line = subject if k == 0 else language.reply_prefix + subject
                    messages.append(
                        f"{message_id}\tinbound\t{key}\t{in_reply_to}\t{refs_json}\t{contact.address}\t{contact.name}\t"
                        f"{mailbox_json}\t[]\t[]\t{stamp}\t{subject_line}\t{text}\t{html}\t{text}\t\t\t\t\t[]\t"
                        f"{stamp}\t\\N\t{number}\t{mailbox_id}\t\\N\t\t[]\tf\n"
                    )
                    mail_ids.append(key)
                    refs.append(f"{self.next_ref}\t{key}\t{number}\t{mailbox_id}\n")
                    self.next_ref += 1
                    event_rows.append(f"received\t{{}}\t{stamp}\t\\N\t{number}\t{message_id}\n")
                    last_mail_at = last_inbound_at = when
                    if waiting_since is None:
                        waiting_since = when
                    snippet = line[:SNIPPET_INBOUND]
                elif direction == "outbound":
                    assert replier is not None
                    answer = [
                        language.answers[rng.randrange(len(language.answers))],
                        language.answers[rng.randrange(len(language.answers))],
                    ]
                    closing = [language.agent_closers[rng.randrange(len(language.agent_closers))]]
                    text, line = self._body(language, [answer, closing], order)
                    signature = f"— {mailbox_name}, Bench Ltd"  # as the mailbox's signature
                    key = f"pd.{token}.{k:04x}{rng.getrandbits(48):012x}@{mailbox_domain}"
                    parent = next((m for m in reversed(mail_ids) if not m.startswith("pd.")), mail_ids[-1])
                    refs_json = "[" + ", ".join(f'"{m}"' for m in mail_ids[-10:]) + "]"
                    messages.append(
                        f'{message_id}\toutbound\t{key}\t["{parent}"]\t{refs_json}\t{mailbox_address}\t'
                        f"{mailbox_name}\t{contact_json}\t[]\t[]\t{stamp}\t{language.reply_prefix}{subject}\t"
                        f"{text}\\n\\n-- \\n{signature}\t\t{text}\t\t{signature}\t\t\t[]\t{stamp}\t{replier[0]}\t"
                        f"{number}\t{mailbox_id}\t\\N\t\t[]\tf\n"
                    )
                    mail_ids.append(key)
                    refs.append(f"{self.next_ref}\t{key}\t{number}\t{mailbox_id}\n")
                    self.next_ref += 1
                    event_rows.append(
                        f'replied\t{{"to": ["{contact.address}"]}}\t{stamp}\t{replier[0]}\t{number}\t{message_id}\n'
                    )
                    last_mail_at = when
                    waiting_since = None
                    snippet = line[:SNIPPET_OUTBOUND]
                else:  # an internal note: no Message-ID, and it moves neither the list order nor the snippet
                    assert replier is not None
                    text = NOTES[rng.randrange(len(NOTES))].replace("{n}", order)
                    messages.append(
                        f"{message_id}\tnote\t\\N\t[]\t[]\t{replier[1]}\t{replier[1]}\t[]\t[]\t[]\t{stamp}\t\t{text}\t\t"
                        f"{text}\t\t\t\t\t[]\t{stamp}\t{replier[0]}\t{number}\t{mailbox_id}\t\\N\t\t[]\tf\n"
                    )
                    event_rows.append(f'noted\t{{"mentioned": []}}\t{stamp}\t{replier[0]}\t{number}\t{message_id}\n')
                if k == 0 and assignee is not None:
                    # Taken soon after the first mail (before the next message).
                    at = _ts(when + min(600.0, gaps[1] * scale / 2 if count > 1 else 600.0))
                    event_rows.append(
                        f'assigned\t{{"assignee": {assignee[0]}, "assignee_name": "{assignee[1]}"}}\t{at}\t'
                        f"{assignee[0]}\t{number}\t\\N\n"
                    )
            updated = when
            resolved_at = closed_at = snoozed_until = "\\N"
            if status in ("resolved", "closed", "snoozed", "spam"):
                at = min(now - 60, when + rand() * 2 * 86400)
                updated = max(updated, at)
                actor = replier[0] if replier else (self.r.accounts[0].id)
                if status == "resolved":
                    resolved_at = _ts(at)
                    event_rows.append(
                        f'status\t{{"before": "pending", "after": "resolved"}}\t{_ts(at)}\t{actor}\t{number}\t\\N\n'
                    )
                elif status == "closed":
                    closed_at = _ts(at)
                    event_rows.append(
                        f'status\t{{"before": "pending", "after": "closed"}}\t{_ts(at)}\t{actor}\t{number}\t\\N\n'
                    )
                elif status == "snoozed":
                    until = _ts(now + 3600 + rand() * 7 * 86400)
                    snoozed_until = until
                    event_rows.append(f'snoozed\t{{"until": "{until}"}}\t{_ts(at)}\t{actor}\t{number}\t\\N\n')
                else:
                    event_rows.append(
                        f'spam\t{{"before": "new", "blocked": false}}\t{_ts(at)}\t{actor}\t{number}\t\\N\n'
                    )
            if status not in ("new", "open"):
                waiting_since = None
            for row in event_rows:
                events.append(f"{self.next_event}\t{row}")
                self.next_event += 1
            conversations.append(
                f"{number}\t{number}\t{subject}\t{subject_key}\t{status}\t{priority}\t{token}\t{contact.name}\t"
                f"{contact.address}\t{snippet}\t{count}\tf\t{_ts(created)}\t{_ts(updated)}\t{_ts(last_mail_at)}\t"
                f"{_ts(last_inbound_at) if last_inbound_at else chr(92) + 'N'}\t{resolved_at}\t{closed_at}\t"
                f"{assignee[0] if assignee else chr(92) + 'N'}\t{contact_id}\t\\N\t\\N\t{mailbox_id}\t{team_id}\t"
                f"{rank}\t{snoozed_until}\t{_ts(waiting_since) if waiting_since else chr(92) + 'N'}\n"
            )
            if self.tag_ids and rand() < TAGGED_SHARE:
                for tag in rng.sample(self.tag_ids, 1 + (rand() < 0.3)):
                    tag_links.append(f"{self.next_tag_link}\t{number}\t{tag}\n")
                    self.next_tag_link += 1
        return {
            "desk_conversation": "".join(conversations),
            "desk_message": "".join(messages),
            "desk_event": "".join(events),
            "desk_threadref": "".join(refs),
            "desk_conversation_tags": "".join(tag_links),
        }


COLUMNS = {
    "desk_contact": "id, name, organisation, language, tier, notes, external_id, created_at",
    "desk_contactaddress": "id, address, failing, failing_reason, failing_since, contact_id",
    "desk_conversation": (
        "id, number, subject, subject_key, status, priority, reply_token, contact_name, contact_address, snippet,"
        " message_count, has_attachments, created_at, updated_at, last_message_at, last_inbound_at, resolved_at,"
        " closed_at, assignee_id, contact_id, merged_into_id, previous_id, mailbox_id, team_id, priority_rank,"
        " snoozed_until, waiting_since"
    ),
    "desk_message": (
        'id, direction, message_id, in_reply_to, "references", from_address, from_name, "to", cc, reply_to, date,'
        " subject, text, html, visible_text, quoted_text, signature, automated_kind, automated_reason, problems,"
        " created_at, author_id, conversation_id, mailbox_id, received_mail_id, visible_html, bcc, forwarded"
    ),
    "desk_event": "id, kind, data, created_at, actor_id, conversation_id, message_id",
    "desk_threadref": "id, key, conversation_id, mailbox_id",
    "desk_conversation_tags": "id, conversation_id, tag_id",
}


def _copy(cur: psycopg.Cursor[Any], table: str, data: str) -> None:
    if not data:
        return
    with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN WITH (FREEZE)") as copy:  # type: ignore[arg-type]
        copy.write(data)


def seed(conn: psycopg.Connection[Any], options: Options) -> Result:
    """Fill an empty, migrated database through `conn`; returns what was written. One transaction."""
    result = Result()
    rng = random.Random(options.seed)
    now = time.time()
    now_text = _ts(now)
    with conn.transaction(), conn.cursor() as cur:
        for table in ("desk_conversation", "desk_contact", "auth_user"):
            existing = _count(cur, table)
            if existing:
                raise SystemExit(
                    f"the database already holds {existing} rows in {table}; seed an empty one (or pass --reset)"
                )
        cur.execute(f"SET LOCAL maintenance_work_mem = '{options.maintenance_work_mem}'")  # type: ignore[arg-type]
        cur.execute("SET LOCAL synchronous_commit = off")
        pause = _search_pause_sql()
        if pause:
            # The search triggers would index every COPY row one by one; rebuild_search() does it in bulk after.
            cur.execute(pause)  # type: ignore[arg-type]
        # Empty already (checked above); truncating in this transaction is what lets COPY FREEZE run.
        cur.execute(f"TRUNCATE {', '.join(BULK_TABLES)} CASCADE")  # type: ignore[arg-type]
        _people(cur, options, rng, now_text, result)
        # Check the deferred foreign keys of those rows now: ALTER TABLE refuses tables with pending checks.
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        tag_ids = [int(r[0]) for r in cur.execute("SELECT id FROM desk_tag ORDER BY id").fetchall()]
        rebuild: list[str] = []
        for table in BULK_TABLES:
            rebuild += _detach(cur, table)

        started = time.perf_counter()
        generator = _Generator(options, result, tag_ids, now)
        contacts, addresses = generator.contact_rows()
        _copy(cur, "desk_contact", contacts)
        _copy(cur, "desk_contactaddress", addresses)
        result.rows["desk_contact"] = result.rows["desk_contactaddress"] = generator.contact_count
        total = options.conversations
        done = 0
        last_report = started
        while done < total:
            upto = min(total, done + options.batch)
            for table, data in generator.batch(done + 1, upto).items():
                _copy(cur, table, data)
            done = upto
            if time.perf_counter() - last_report > 15:
                last_report = time.perf_counter()
                rate = done / (last_report - started)
                _say(options, f"  … {done:,} conversations ({rate:,.0f}/s)")
        result.rows["desk_conversation"] = total
        result.rows["desk_message"] = generator.next_message - 1
        result.rows["desk_event"] = generator.next_event - 1
        result.rows["desk_threadref"] = generator.next_ref - 1
        result.rows["desk_conversation_tags"] = generator.next_tag_link - 1
        result.copy_seconds = time.perf_counter() - started

        started = time.perf_counter()
        for statement in rebuild:
            cur.execute(statement)  # type: ignore[arg-type]
        for table in BULK_TABLES:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(max(id), 1), max(id) IS NOT NULL)"  # type: ignore[arg-type]
                f" FROM {table}"
            )
        cur.execute(
            "INSERT INTO desk_counter (name, value) VALUES ('conversation-number', %s)"
            " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            (total,),
        )
        result.index_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with conn.cursor() as cur:
        for table in (*BULK_TABLES, "desk_team", "desk_mailbox", "auth_user", "desk_agentprofile", "desk_tag"):
            cur.execute(f"ANALYZE {table}")  # type: ignore[arg-type]
    conn.commit()
    result.analyze_seconds = time.perf_counter() - started
    result.search_seconds = rebuild_search()
    return result


# --- the command ------------------------------------------------------------------------------------------


def _server_and_name(url: str) -> tuple[str, str]:
    server, _slash, name = url.rpartition("/")
    return server, name.partition("?")[0]


def ensure_database(url: str, *, reset: bool) -> None:
    server, name = _server_and_name(url)
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing a database name that is not a plain identifier: {name!r}")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and reset:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # type: ignore[arg-type]
            exists = None
        if not exists:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("POSTDESK_DATA_DIR", str(REPO / "var" / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    import django

    django.setup()


def _search_module() -> Any:
    try:
        from postdesk.desk import search  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return None
    return search


def _search_pause_sql() -> str:
    """The statement that pauses the search triggers for this transaction (postdesk.desk.search.PAUSE_SQL)."""
    return str(getattr(_search_module(), "PAUSE_SQL", "") or "")


def rebuild_search() -> float | None:
    """Fill the search index from the tables with the app's own search.rebuild(); seconds taken, or None."""
    rebuild = getattr(_search_module(), "rebuild", None)
    if rebuild is None:
        return None
    started = time.perf_counter()
    rebuild()
    return time.perf_counter() - started


def print_summary(result: Result, options: Options, *, migrate_seconds: float) -> None:
    search_seconds = result.search_seconds
    total_rows = sum(result.rows.values())
    load = result.copy_seconds + result.index_seconds
    print(f"\n{'table':<24}{'rows':>12}")
    for table, rows in result.rows.items():
        print(f"{table:<24}{rows:>12,}")
    print(f"{'total':<24}{total_rows:>12,}")
    print(
        f"\nmigrate {migrate_seconds:.1f} s · generate+COPY {result.copy_seconds:.1f} s "
        f"({total_rows / result.copy_seconds:,.0f} rows/s) · indexes and constraints {result.index_seconds:.1f} s · "
        f"ANALYZE {result.analyze_seconds:.1f} s"
        + (f" · search rebuild {search_seconds:.1f} s" if search_seconds is not None else " · no search rebuild()")
    )
    print(
        f"load total {load:.1f} s = {total_rows / load:,.0f} rows/s, "
        f"{options.conversations / load:,.0f} conversations/s"
    )
    print("\nstatus        share")
    for status in STATUS_WEIGHTS:
        print(f"{status:<12}{result.statuses[status] / max(1, options.conversations):>7.1%}")
    print("\nrare words (for search):  language  word  messages")
    for code, word, _one_in in RARE_WORDS:
        print(f"  {code}  {word}  {result.rare[word]}")
    print("common words: " + ", ".join(f"{k} {v!r}" for k, v in COMMON_WORDS.items()))
    print("phrases:      " + ", ".join(f"{k} {v!r}" for k, v in PHRASES.items()))
    agent = next((a for a in result.accounts if a.role == "agent"), None)
    print(f"\nsign in as {ADMIN_EMAIL} (admin) or e.g. {agent.email if agent else '-'} (agent); password {PASSWORD!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages-per", type=int, default=5)
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5_000, help="conversations per COPY round")
    parser.add_argument("--reset", action="store_true", help="drop and recreate the database first")
    args = parser.parse_args(argv)
    if args.conversations < 1 or args.messages_per < 1 or args.teams < 1 or args.agents < 1:
        parser.error("--conversations, --messages-per, --teams and --agents must be at least 1")
    options = Options(
        conversations=args.conversations,
        messages_per=args.messages_per,
        teams=args.teams,
        agents=args.agents,
        seed=args.seed,
        batch=args.batch,
    )
    url = args.database_url
    print(f"seeding {url}: {options.conversations:,} conversations × {options.messages_per} messages", flush=True)
    ensure_database(url, reset=args.reset)
    setup_django(url)
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrate_seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        result = seed(conn, options)
    print_summary(result, options, migrate_seconds=migrate_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

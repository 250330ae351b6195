"""The SMTP listener, spoken to with smtplib over loopback: what a sending MTA sees, and what gets stored."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from factories import make_mailbox, make_raw_mail
from postdesk.config import ConfigError
from postdesk.desk.blobs import default_store
from postdesk.desk.models import Message, ReceivedMail, ReceivedState, Source
from postdesk.transports.smtp_listener import (
    ListenerOptions,
    SmtpListener,
    listener_options_from_env,
    start_smtp_listener,
)

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "alice@customer.test"


@pytest.fixture
def listener() -> Iterator[SmtpListener]:
    running = start_smtp_listener("127.0.0.1", 0, options=ListenerOptions())
    yield running
    running.stop()


def client(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    smtp.ehlo("mta.customer.test")
    return smtp


def crlf(raw: bytes) -> bytes:
    """The mail as an MTA puts it on the wire: CRLF line ends (smtplib.data leaves bytes as they are)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def send(port: int, raw: bytes, to: list[str], mail_options: tuple[str, ...] = ()) -> tuple[int, str]:
    """One SMTP transaction; the reply to DATA (or to the first refused command)."""
    with client(port) as smtp:
        code, reply = smtp.mail(SENDER, list(mail_options))
        if code != 250:
            return code, reply.decode()
        for rcpt in to:
            code, reply = smtp.rcpt(rcpt)
            if code != 250:
                return code, reply.decode()
        code, reply = smtp.data(raw)
        return code, reply.decode()


def test_accepted_mail_is_stored_before_250_and_becomes_a_conversation(listener: SmtpListener) -> None:
    mailbox = make_mailbox("support@example.com")
    raw = crlf(make_raw_mail(subject="Parcel never arrived", message_id="<parcel-1@customer.test>"))

    code, reply = send(listener.port, raw, ["support@example.com"])

    row = ReceivedMail.objects.get(mailbox=mailbox)
    assert code == 250
    assert reply == f"2.0.0 Ok: queued as {row.pk}"
    assert row.source == Source.SMTP
    assert row.envelope_from == SENDER
    assert row.envelope_to == ["support@example.com"]
    assert default_store().get(row.raw_sha256) == raw
    assert hashlib.sha256(raw).hexdigest() == row.raw_sha256
    # huey runs inline in tests: the on_commit job has processed it by now.
    assert row.state == ReceivedState.PROCESSED, row.error
    message = Message.objects.select_related("conversation").get(message_id="parcel-1@customer.test")
    assert message.conversation.subject == "Parcel never arrived"
    assert message.conversation.mailbox == mailbox


def test_unknown_recipient_is_refused_at_rcpt(listener: SmtpListener) -> None:
    make_mailbox("support@example.com")
    old = make_mailbox("old@example.com")
    old.active = False
    old.save()

    with client(listener.port) as smtp:
        assert smtp.mail(SENDER)[0] == 250
        code, reply = smtp.rcpt("nobody@example.com")
        assert (code, reply) == (550, b"5.1.1 <nobody@example.com>: no such mailbox here")
        code, reply = smtp.rcpt("old@example.com")
        assert code == 550, "an inactive mailbox takes no mail"
        # No valid recipient: DATA is refused and nothing is stored.
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.data(make_raw_mail())
        assert refused.value.smtp_code == 503
    assert not ReceivedMail.objects.exists()


def test_subaddress_reaches_its_mailbox(listener: SmtpListener) -> None:
    mailbox = make_mailbox("support@example.com")

    code, _ = send(listener.port, make_raw_mail(to="support+abc@example.com"), ["support+abc@example.com"])

    assert code == 250
    row = ReceivedMail.objects.get()
    assert row.mailbox == mailbox
    assert row.envelope_to == ["support+abc@example.com"]


def test_size_limit_is_advertised_and_enforced() -> None:
    make_mailbox("support@example.com")
    small = start_smtp_listener("127.0.0.1", 0, max_bytes=2000, options=ListenerOptions())
    try:
        with client(small.port) as smtp:
            assert smtp.has_extn("size")
            assert smtp.esmtp_features["size"] == "2000"
            # A sender that declares the size is refused before sending the bytes.
            assert smtp.mail(SENDER, ["SIZE=5000"]) == (552, b"5.3.4 Message too big")
        big = make_raw_mail(body="lorem ipsum dolor sit amet\n" * 200)
        assert send(small.port, big, ["support@example.com"]) == (552, "5.3.4 Message too big")
        fits = make_raw_mail(body="short\n")
        assert send(small.port, fits, ["support@example.com"])[0] == 250
    finally:
        small.stop()
    assert ReceivedMail.objects.count() == 1


def test_long_lines_dots_and_8bit_bytes_arrive_intact(listener: SmtpListener) -> None:
    make_mailbox("support@example.com")
    long_line = b"".join(b"%04d-" % i for i in range(1000))  # 5,000 characters, no break
    raw = (
        b"From: Alice <alice@customer.test>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: long line\r\n"
        b"Message-ID: <long-line@customer.test>\r\n"
        b"Content-Type: text/plain; charset=windows-1251\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + long_line + b"\r\n"
        b".a line that starts with a dot\r\n"
        b"\xcf\xf0\xe8\xe2\xe5\xf2\r\n"
    )
    assert len(long_line) == 5000

    code, _ = send(listener.port, raw, ["support@example.com"])

    assert code == 250
    stored = default_store().get(ReceivedMail.objects.get().raw_sha256)
    assert long_line in stored.split(b"\r\n")
    assert stored == raw


def test_one_mail_to_two_mailboxes_is_accepted_once_for_each(listener: SmtpListener) -> None:
    support = make_mailbox("support@example.com")
    sales = make_mailbox("sales@example.com")
    raw = make_raw_mail(to="support@example.com, sales@example.com")

    code, reply = send(listener.port, raw, ["support@example.com", "sales@example.com", "support+x@example.com"])

    assert code == 250
    rows = {r.mailbox: r for r in ReceivedMail.objects.all()}
    assert set(rows) == {support, sales}
    assert rows[support].envelope_to == ["support@example.com", "support+x@example.com"]
    assert rows[sales].envelope_to == ["sales@example.com"]
    assert reply == f"2.0.0 Ok: queued as {rows[support].pk} {rows[sales].pk}"
    assert Message.objects.filter(mailbox=support).count() == 1
    assert Message.objects.filter(mailbox=sales).count() == 1


def test_the_same_mail_twice_is_one_message(listener: SmtpListener) -> None:
    make_mailbox("support@example.com")
    raw = make_raw_mail(message_id="<twice@customer.test>")

    first = send(listener.port, raw, ["support@example.com"])
    second = send(listener.port, raw, ["support@example.com"])

    # The sender may not know the first got through (a lost 250): the retry is acknowledged again.
    assert first == second
    assert first[0] == 250
    assert ReceivedMail.objects.count() == 1
    assert Message.objects.filter(message_id="twice@customer.test").count() == 1


def test_storage_failure_answers_451_and_claims_nothing(
    listener: SmtpListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_mailbox("support@example.com")
    raw = make_raw_mail(message_id="<disk-broken@customer.test>")
    # A data directory that is a plain file: every blob write fails, even for root.
    broken = tmp_path / "not-a-directory"
    broken.write_text("")
    monkeypatch.setattr(settings, "CONFIG", dataclasses.replace(settings.CONFIG, data_dir=broken))

    assert send(listener.port, raw, ["support@example.com"]) == (451, "4.3.0 Temporary failure, try again later")
    assert not ReceivedMail.objects.exists()

    # The disk is back: the sender's retry gets through, once.
    monkeypatch.undo()
    assert send(listener.port, raw, ["support@example.com"])[0] == 250
    assert Message.objects.filter(message_id="disk-broken@customer.test").count() == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_when_configured() -> None:
    make_mailbox("support@example.com")
    options = ListenerOptions(auth_user="relay", auth_password="s3cret", auth_require_tls=False)
    guarded = start_smtp_listener("127.0.0.1", 0, options=options)
    try:
        with client(guarded.port) as smtp:
            assert smtp.mail(SENDER)[0] == 530
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login("relay", "wrong")
        with client(guarded.port) as smtp:
            smtp.login("relay", "s3cret")
            smtp.sendmail(SENDER, ["support@example.com"], make_raw_mail())
    finally:
        guarded.stop()
    assert ReceivedMail.objects.count() == 1


def test_starttls_when_configured(tmp_path: Path) -> None:
    make_mailbox("support@example.com")
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    secure = start_smtp_listener("127.0.0.1", 0, options=ListenerOptions(tls_context=context))
    try:
        with client(secure.port) as smtp:
            assert smtp.has_extn("starttls")
            smtp.starttls(context=ssl._create_unverified_context())
            smtp.ehlo("mta.customer.test")
            smtp.sendmail(SENDER, ["support@example.com"], make_raw_mail())
    finally:
        secure.stop()
    assert ReceivedMail.objects.count() == 1


def test_a_busy_port_is_a_clear_error(listener: SmtpListener) -> None:
    with pytest.raises(ConfigError, match=f"cannot listen for SMTP on 127.0.0.1 port {listener.port}: "):
        start_smtp_listener("127.0.0.1", listener.port, options=ListenerOptions())


def test_options_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TLS_CERT", "TLS_KEY", "AUTH_USER", "AUTH_PASSWORD", "AUTH_ALLOW_PLAIN"):
        monkeypatch.delenv(f"POSTDESK_SMTP_{name}", raising=False)
    assert listener_options_from_env() == ListenerOptions()

    monkeypatch.setenv("POSTDESK_SMTP_AUTH_USER", "relay")
    with pytest.raises(ConfigError, match="must be set together"):
        listener_options_from_env()
    monkeypatch.setenv("POSTDESK_SMTP_AUTH_PASSWORD", "pw")
    with pytest.raises(ConfigError, match="needs STARTTLS"):
        listener_options_from_env()
    monkeypatch.setenv("POSTDESK_SMTP_AUTH_ALLOW_PLAIN", "1")
    options = listener_options_from_env()
    assert (options.auth_user, options.auth_password, options.auth_require_tls) == ("relay", "pw", False)
    monkeypatch.delenv("POSTDESK_SMTP_AUTH_ALLOW_PLAIN")

    monkeypatch.setenv("POSTDESK_SMTP_TLS_CERT", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("POSTDESK_SMTP_TLS_KEY", str(tmp_path / "missing.key"))
    with pytest.raises(ConfigError, match="cannot load the SMTP TLS certificate"):
        listener_options_from_env()
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("POSTDESK_SMTP_TLS_CERT", str(cert))
    monkeypatch.setenv("POSTDESK_SMTP_TLS_KEY", str(key))
    options = listener_options_from_env()
    assert options.tls_context is not None
    assert options.auth_require_tls


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path

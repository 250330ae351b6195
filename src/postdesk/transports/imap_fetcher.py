"""Fetches mail from mailboxes' IMAP folders into the durable intake, flagging only what was stored.

Per UID: download with BODY.PEEK[] (the server sets no \\Seen on its own), `accept_raw` (bytes fsynced,
row committed), and only then flag \\Seen or move to the processed folder, then remember the UID.
UIDVALIDITY is tracked: when the server renumbers a folder we start again from UID 1, which costs a
download but never a duplicate, because `accept_raw` dedupes by bytes and Message-ID (DESIGN.md §4).

Errors, all caught and recorded on the mailbox (`last_error`), never raised to the caller:
  FetchError            a clear message free of passwords and tokens: cannot connect, login failed,
                        connection lost, folder missing, credential undecryptable, OAuth token refused.
A message whose `accept_raw` raises is skipped for this round (the rest still go in) and the folder
position stays before it, so the next round retries it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.translation import gettext as _
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from postdesk.desk.intake import accept_raw
from postdesk.desk.models import ImapAuth, Mailbox, Source
from postdesk.desk.secrets_box import CredentialError, decrypt
from postdesk.transports import mailbox_oauth
from postdesk.transports.oauth2 import OAuthError

log = logging.getLogger(__name__)

# RFC 2177: clients should re-issue IDLE at least every 29 minutes or servers may log them off.
MAX_IDLE_SECONDS = 29 * 60
DEFAULT_TIMEOUT = 30.0
DEFAULT_BATCH = 100
# How often a waiting fetcher looks at its stop flag: bounds how long stop() takes.
_STOP_CHECK_SECONDS = 0.5
_SEEN = b"\\Seen"
_DELETED = b"\\Deleted"
_BODY = b"BODY[]"
_NETWORK_ERRORS = (OSError, IMAPClientError)  # socket errors, timeouts, TLS errors and IMAP NO/BAD/abort


class FetchError(Exception):
    """A fetch could not complete; the message is meant for the operator and carries no secret."""


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What one round did. `error` is empty when the round completed."""

    fetched: int = 0
    duplicates: int = 0
    failed: int = 0
    uidvalidity: int | None = None
    last_uid: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(slots=True)
class _Progress:
    """Counts kept while a round runs, so a round cut short still reports what it did."""

    fetched: int = 0
    duplicates: int = 0
    failed: int = 0
    uidvalidity: int | None = None
    last_uid: int = 0
    failures: list[str] = field(default_factory=list)

    def report(self, error: str = "") -> FetchReport:
        return FetchReport(self.fetched, self.duplicates, self.failed, self.uidvalidity, self.last_uid, error)


def _address(mailbox: Mailbox) -> str:
    return f"{mailbox.imap_host}:{mailbox.imap_port}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return _("timed out")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    # imaplib hands server text over as the repr of bytes: b'[AUTHENTICATIONFAILED] ...'
    if len(text) > 3 and text[:2] in {"b'", 'b"'} and text[-1] == text[1]:
        text = text[2:-1]
    return text or type(exc).__name__


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


class _LoginRefused(FetchError):
    """The server answered but refused the credentials."""


def _password(mailbox: Mailbox) -> str:
    try:
        return decrypt(mailbox.imap_password_encrypted)
    except CredentialError as exc:
        raise FetchError(str(exc)) from None


def _access_token(mailbox: Mailbox, *, renew: bool) -> tuple[str, bool]:
    """An OAuth access token and whether it was just issued (a cached one may have been revoked)."""
    try:
        if not renew:
            cached = mailbox_oauth.cached_access_token(mailbox)
            if cached:
                return cached, False
        return mailbox_oauth.fresh_access_token(mailbox), True
    except (OAuthError, CredentialError) as exc:
        raise FetchError(
            _("cannot get an OAuth access token for %(user)s: %(reason)s") % {"user": mailbox.imap_user, "reason": exc}
        ) from None


def _connect(mailbox: Mailbox, timeout: float) -> tuple[IMAPClient, str]:
    """An authenticated client and the secret it logged in with (to keep out of messages).

    Raises FetchError saying which of the credentials, connecting or logging in failed. With XOAUTH2 a
    cached access token the server refuses is renewed once, as the provider may have revoked it early.
    """
    if mailbox.imap_auth != ImapAuth.XOAUTH2:
        password = _password(mailbox)
        return _open(mailbox, password, timeout), password
    token, issued = _access_token(mailbox, renew=False)
    try:
        return _open(mailbox, token, timeout), token
    except _LoginRefused:
        if issued:
            raise
    token, _issued = _access_token(mailbox, renew=True)
    return _open(mailbox, token, timeout), token


def _open(mailbox: Mailbox, secret: str, timeout: float) -> IMAPClient:
    where = _address(mailbox)
    try:
        client = IMAPClient(mailbox.imap_host, port=mailbox.imap_port, ssl=mailbox.imap_ssl, timeout=timeout)
    except _NETWORK_ERRORS as exc:
        raise FetchError(
            _redact(_("cannot connect to %(where)s: %(reason)s") % {"where": where, "reason": _reason(exc)}, secret)
        ) from None
    try:
        if mailbox.imap_auth == ImapAuth.XOAUTH2:
            client.oauth2_login(mailbox.imap_user, secret)
        else:
            client.login(mailbox.imap_user, secret)
    except LoginError as exc:
        _close(client)
        raise _LoginRefused(
            _redact(
                _("login failed for user %(user)s at %(where)s: %(reason)s")
                % {"user": mailbox.imap_user, "where": where, "reason": _reason(exc)},
                secret,
            )
        ) from None
    except _NETWORK_ERRORS as exc:
        _close(client)
        raise FetchError(
            _redact(
                _("connection to %(where)s lost while logging in: %(reason)s")
                % {"where": where, "reason": _reason(exc)},
                secret,
            )
        ) from None
    return client


def _close(client: IMAPClient) -> None:
    """Log out politely when the connection still works, else just drop the socket."""
    try:
        client.logout()
    except Exception:  # the connection is going away either way
        try:
            client.shutdown()
        except Exception:  # already closed
            log.debug("IMAP socket already closed")


def _select(client: IMAPClient, mailbox: Mailbox, *, readonly: bool = False) -> dict[bytes, Any]:
    try:
        info: dict[bytes, Any] = client.select_folder(mailbox.imap_folder, readonly=readonly)
    except IMAPClientAbortError:
        raise  # the connection broke: a network error, not a missing folder
    except IMAPClientError as exc:
        raise FetchError(
            _("cannot open folder %(folder)s at %(where)s: %(reason)s")
            % {"folder": mailbox.imap_folder, "where": _address(mailbox), "reason": _reason(exc)}
        ) from None
    return info


def _chunks(uids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]


def _new_uids(client: IMAPClient, after: int, uidnext: int | None) -> list[int]:
    if uidnext is not None and uidnext <= after + 1:
        return []
    # "n:*" always matches the highest UID in the folder, even when that is below n (RFC 3501 §6.4.8),
    # so what comes back must be filtered, or the last message would be fetched again every round.
    found: list[int] = client.search(["UID", f"{after + 1}:*"])
    return sorted(uid for uid in found if uid > after)


def _ensure_processed_folder(client: IMAPClient, mailbox: Mailbox) -> None:
    folder = mailbox.imap_processed_folder
    if folder and not client.folder_exists(folder):
        log.info("creating IMAP folder %s for mailbox %s", folder, mailbox.address)
        client.create_folder(folder)


def _mark_done(client: IMAPClient, mailbox: Mailbox, uids: list[int]) -> None:
    """Tell the server these are stored: move them to the processed folder, or flag them \\Seen."""
    folder = mailbox.imap_processed_folder
    if not folder or folder == mailbox.imap_folder:
        client.add_flags(uids, [_SEEN], silent=True)
        return
    if client.has_capability("MOVE"):
        client.move(uids, folder)
        return
    client.copy(uids, folder)
    client.add_flags(uids, [_DELETED], silent=True)
    # Without UIDPLUS a plain EXPUNGE would also remove mail someone else marked \Deleted; leave those
    # for the user's own client rather than destroy them.
    if client.has_capability("UIDPLUS"):
        client.expunge(uids)
    else:
        client.expunge()


def _save_position(mailbox: Mailbox, uidvalidity: int, last_uid: int) -> None:
    if mailbox.imap_uidvalidity == uidvalidity and mailbox.imap_last_uid == last_uid:
        return
    mailbox.imap_uidvalidity = uidvalidity
    mailbox.imap_last_uid = last_uid
    mailbox.save(update_fields=["imap_uidvalidity", "imap_last_uid"])


def _record_success(mailbox: Mailbox, progress: _Progress) -> None:
    mailbox.last_fetch_at = timezone.now()
    fields = ["last_fetch_at"]
    if progress.failures:
        mailbox.last_error = _("%(count)d message(s) could not be stored and will be retried: %(detail)s") % {
            "count": progress.failed,
            "detail": "; ".join(progress.failures[:5]),
        }
        mailbox.last_error_at = mailbox.last_fetch_at
        fields += ["last_error", "last_error_at"]
    elif mailbox.last_error:
        # A clean round means the mailbox is healthy again; last_error_at keeps when it last was not.
        mailbox.last_error = ""
        fields.append("last_error")
    mailbox.save(update_fields=fields)


def _record_error(mailbox: Mailbox, message: str) -> None:
    log.warning("IMAP fetch for mailbox %s failed: %s", mailbox.address, message)
    mailbox.last_error = message
    mailbox.last_error_at = timezone.now()
    mailbox.save(update_fields=["last_error", "last_error_at"])


def _run_round(
    client: IMAPClient,
    mailbox: Mailbox,
    progress: _Progress,
    *,
    batch: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """One pass over the folder on an authenticated client; network errors propagate to the caller."""
    info = _select(client, mailbox)
    uidvalidity = int(info[b"UIDVALIDITY"])
    progress.uidvalidity = uidvalidity
    start = mailbox.imap_last_uid
    if mailbox.imap_uidvalidity is not None and mailbox.imap_uidvalidity != uidvalidity:
        log.warning(
            "UIDVALIDITY of %s for mailbox %s changed from %s to %s: fetching it again (duplicates are skipped)",
            mailbox.imap_folder,
            mailbox.address,
            mailbox.imap_uidvalidity,
            uidvalidity,
        )
        start = 0
    progress.last_uid = start
    position = start  # the highest UID with every UID up to it stored; saved once the server is told
    uidnext = info.get(b"UIDNEXT")
    uids = _new_uids(client, start, int(uidnext) if uidnext is not None else None)
    if not uids:
        _save_position(mailbox, uidvalidity, start)
        return
    _ensure_processed_folder(client, mailbox)
    blocked = False  # once a message failed, the stored position must stay before it
    for chunk in _chunks(uids, batch):
        if should_stop():
            break
        response = client.fetch(chunk, [b"BODY.PEEK[]"])
        done: list[int] = []
        for uid in chunk:
            raw = response.get(uid, {}).get(_BODY)
            if raw is None:
                # Expunged by another client between SEARCH and FETCH: nothing left to fetch.
                if not blocked:
                    position = uid
                continue
            try:
                accepted = accept_raw(mailbox, bytes(raw), source=Source.IMAP, source_ref=f"{uidvalidity}:{uid}")
            except Exception as exc:
                log.exception("mailbox %s: could not store IMAP UID %s; will retry", mailbox.address, uid)
                progress.failed += 1
                progress.failures.append(f"UID {uid}: {_reason(exc)}")
                blocked = True
                continue
            done.append(uid)
            if accepted.duplicate:
                progress.duplicates += 1
            else:
                progress.fetched += 1
            if not blocked:
                position = uid
        if done:
            _mark_done(client, mailbox, done)
        _save_position(mailbox, uidvalidity, position)
        progress.last_uid = position


def _round_with_errors_recorded(
    client: IMAPClient,
    mailbox: Mailbox,
    secret: str,
    *,
    batch: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> FetchReport:
    progress = _Progress(uidvalidity=mailbox.imap_uidvalidity, last_uid=mailbox.imap_last_uid)
    try:
        _run_round(client, mailbox, progress, batch=batch, should_stop=should_stop)
    except FetchError as exc:
        message = _redact(str(exc), secret)
        _record_error(mailbox, message)
        return progress.report(message)
    except _NETWORK_ERRORS as exc:
        message = _redact(
            _("connection to %(where)s lost while fetching: %(reason)s")
            % {"where": _address(mailbox), "reason": _reason(exc)},
            secret,
        )
        _record_error(mailbox, message)
        return progress.report(message)
    _record_success(mailbox, progress)
    return progress.report()


def fetch_once(mailbox: Mailbox, *, batch: int = DEFAULT_BATCH, timeout: float = DEFAULT_TIMEOUT) -> FetchReport:
    """Connect, fetch every message past the stored position, flag or move it, log out.

    Never raises for server, network or credential problems: they are recorded on the mailbox
    (`last_error`, `last_error_at`) and returned in `FetchReport.error`.
    """
    if not mailbox.has_imap:
        message = _("mailbox %(address)s has no IMAP account configured") % {"address": mailbox.address}
        return FetchReport(uidvalidity=mailbox.imap_uidvalidity, last_uid=mailbox.imap_last_uid, error=message)
    try:
        client, secret = _connect(mailbox, timeout)
    except FetchError as exc:
        _record_error(mailbox, str(exc))
        return FetchReport(uidvalidity=mailbox.imap_uidvalidity, last_uid=mailbox.imap_last_uid, error=str(exc))
    try:
        return _round_with_errors_recorded(client, mailbox, secret, batch=batch)
    finally:
        _close(client)


def check_mailbox(mailbox: Mailbox, *, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Log in and open the folder read-only; a clear error message, or None when all is well."""
    if not mailbox.has_imap:
        return _("mailbox %(address)s has no IMAP account configured") % {"address": mailbox.address}
    try:
        client, secret = _connect(mailbox, timeout)
    except FetchError as exc:
        return str(exc)
    try:
        _select(client, mailbox, readonly=True)
    except FetchError as exc:
        return _redact(str(exc), secret)
    except _NETWORK_ERRORS as exc:
        return _redact(
            _("connection to %(where)s lost: %(reason)s") % {"where": _address(mailbox), "reason": _reason(exc)},
            secret,
        )
    finally:
        _close(client)
    return None


def _connection_key(mailbox: Mailbox) -> tuple[object, ...]:
    """What, when edited, requires a new connection."""
    return (
        mailbox.imap_host,
        mailbox.imap_port,
        mailbox.imap_ssl,
        mailbox.imap_user,
        mailbox.imap_auth,
        mailbox.imap_password_encrypted,
        mailbox.oauth_refresh_token_encrypted,
        mailbox.imap_folder,
    )


def _load_mailbox(mailbox_id: int) -> Mailbox | None:
    found = Mailbox.objects.filter(pk=mailbox_id, active=True).first()
    return found if found is not None and found.has_imap else None


class ImapFetcher:
    """A thread that keeps one mailbox fetched: a round, then IDLE (or a poll wait), again and again.

    After an error it reconnects with exponential back-off (doubling from `backoff_initial`, capped at
    `backoff_max`). `stop()` takes effect within about a second, or once an IMAP command already
    sent returns (bounded by `timeout`). `on_report` sees every round's report, in the fetcher's thread.
    """

    def __init__(
        self,
        mailbox_id: int,
        *,
        poll_interval: float = 60.0,
        idle_timeout: float = MAX_IDLE_SECONDS,
        batch: int = DEFAULT_BATCH,
        timeout: float = DEFAULT_TIMEOUT,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        on_report: Callable[[FetchReport], None] | None = None,
    ) -> None:
        self.mailbox_id = mailbox_id
        self.poll_interval = poll_interval
        self.idle_timeout = min(idle_timeout, MAX_IDLE_SECONDS)
        self.batch = batch
        self.timeout = timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.on_report = on_report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"imap-fetcher-{mailbox_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self.join(timeout)

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_initial
        try:
            while not self._stop.is_set():
                close_old_connections()
                try:
                    mailbox = _load_mailbox(self.mailbox_id)
                    if mailbox is None:
                        log.info("mailbox %s is inactive or has no IMAP account: its fetcher stops", self.mailbox_id)
                        return
                    served = self._serve(mailbox)
                except Exception:
                    # A database outage or a bug: say so loudly, then retry like any other failure.
                    log.exception("IMAP fetcher for mailbox %s failed", self.mailbox_id)
                    served = False
                if served:
                    backoff = self.backoff_initial
                    continue
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max)
        finally:
            connection.close()

    def _serve(self, mailbox: Mailbox) -> bool:
        """Rounds on one connection until stopped, reconfigured or an error; False after an error."""
        try:
            client, secret = _connect(mailbox, self.timeout)
        except FetchError as exc:
            _record_error(mailbox, str(exc))
            self._report(
                FetchReport(uidvalidity=mailbox.imap_uidvalidity, last_uid=mailbox.imap_last_uid, error=str(exc))
            )
            return False
        key = _connection_key(mailbox)
        try:
            while not self._stop.is_set():
                report = _round_with_errors_recorded(
                    client, mailbox, secret, batch=self.batch, should_stop=self._stop.is_set
                )
                self._report(report)
                close_old_connections()
                if not report.ok:
                    return False
                if self._stop.is_set():
                    return True
                if report.failed == 0 and report.fetched + report.duplicates > 0:
                    # Mail that arrived during a busy round may have been announced in a reply we
                    # already consumed (EXISTS riding on STORE or MOVE), so IDLE would not hear of
                    # it: look again at once, and idle only after a round that found nothing.
                    continue
                if client.has_capability("IDLE"):
                    # Failed messages are retried at the poll interval, not only when new mail comes.
                    wait = min(self.idle_timeout, self.poll_interval) if report.failed else self.idle_timeout
                    error = self._idle(client, mailbox, secret, wait)
                    if error:
                        _record_error(mailbox, error)
                        self._report(FetchReport(uidvalidity=report.uidvalidity, last_uid=report.last_uid, error=error))
                        return False
                else:
                    # Polling: do not hold a connection open between rounds that servers might drop.
                    self._stop.wait(self.poll_interval)
                    return True
                fresh = _load_mailbox(self.mailbox_id)
                if fresh is None or _connection_key(fresh) != key:
                    return True
                mailbox = fresh
            return True
        finally:
            _close(client)

    def _idle(self, client: IMAPClient, mailbox: Mailbox, secret: str, wait: float) -> str:
        """Wait in IDLE until new mail, `wait` seconds or stop(); an error message, or "" when fine."""
        deadline = time.monotonic() + wait
        try:
            client.idle()
            while not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                step = min(_STOP_CHECK_SECONDS, remaining)
                began = time.monotonic()
                responses = client.idle_check(timeout=step)
                if any(_is_goodbye(item) for item in responses):
                    return _("server %(where)s closed the connection") % {"where": _address(mailbox)}
                if any(_is_new_mail(item) for item in responses):
                    break
                if not responses and time.monotonic() - began < step / 2:
                    # The socket was readable yet held no whole response: usually end of file, which
                    # idle_check swallows. Leaving IDLE and re-entering proves the connection either way.
                    client.idle_done()
                    client.idle()
            client.idle_done()
        except _NETWORK_ERRORS as exc:
            return _redact(
                _("connection to %(where)s lost while waiting for mail: %(reason)s")
                % {"where": _address(mailbox), "reason": _reason(exc)},
                secret,
            )
        return ""

    def _report(self, report: FetchReport) -> None:
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception:  # an observer's bug must not stop the fetching
                log.exception("on_report callback failed")


def _is_new_mail(item: tuple[Any, ...]) -> bool:
    return len(item) >= 2 and item[1] in {b"EXISTS", b"RECENT"}


def _is_goodbye(item: tuple[Any, ...]) -> bool:
    return len(item) >= 1 and item[0] == b"BYE"


class FetcherGroup:
    """The running fetchers, one per mailbox, and a supervisor that follows mailboxes as they change.

    Every `rescan_interval` seconds (None: never) it starts fetchers for mailboxes added or enabled
    since, and replaces fetchers whose thread ended (a mailbox disabled and enabled again).
    """

    def __init__(self, *, poll_interval: float = 60.0, rescan_interval: float | None = 60.0, **options: Any) -> None:
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self.options = options
        self.fetchers: dict[int, ImapFetcher] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        self.refresh()
        if self.rescan_interval is not None:
            self._supervisor = threading.Thread(target=self._supervise, name="imap-fetcher-supervisor", daemon=True)
            self._supervisor.start()

    def refresh(self) -> None:
        """Start a fetcher for every active mailbox with IMAP that has none running."""
        wanted = {m.pk for m in Mailbox.objects.filter(active=True).exclude(imap_host="") if m.has_imap}
        with self._lock:
            if self._stop.is_set():
                return
            for mailbox_id in list(self.fetchers):
                if not self.fetchers[mailbox_id].is_alive():
                    del self.fetchers[mailbox_id]
            for mailbox_id in sorted(wanted - self.fetchers.keys()):
                fetcher = ImapFetcher(mailbox_id, poll_interval=self.poll_interval, **self.options)
                fetcher.start()
                self.fetchers[mailbox_id] = fetcher

    def _supervise(self) -> None:
        assert self.rescan_interval is not None
        try:
            while not self._stop.wait(self.rescan_interval):
                close_old_connections()
                try:
                    self.refresh()
                except Exception:  # the database may be briefly away; the next rescan tries again
                    log.exception("could not look for new IMAP mailboxes")
        finally:
            connection.close()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop.set()
            fetchers = list(self.fetchers.values())
            self.fetchers.clear()
        for fetcher in fetchers:  # all at once: stopping takes as long as the slowest, not the sum
            fetcher.request_stop()
        for fetcher in fetchers:
            fetcher.join(timeout)
        if self._supervisor is not None:
            self._supervisor.join(timeout)

    def __len__(self) -> int:
        return len(self.fetchers)


def start_fetchers(
    poll_interval: float = 60.0, *, rescan_interval: float | None = 60.0, **options: Any
) -> FetcherGroup:
    """Start one fetcher thread per active mailbox with IMAP configured; `.stop()` ends them all.

    `options` go to each `ImapFetcher` (idle_timeout, batch, timeout, backoff_initial, backoff_max, on_report).
    """
    group = FetcherGroup(poll_interval=poll_interval, rescan_interval=rescan_interval, **options)
    group.start()
    return group


def serve_fetch_forever(poll_interval: float = 60.0) -> None:
    """Run fetchers until SIGTERM or SIGINT (`postdesk fetch`); call it from the main thread."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        group = start_fetchers(poll_interval)
        log.info("fetching mail for %d mailbox(es); stop with Ctrl-C or SIGTERM", len(group))
        try:
            # A bounded wait keeps the main thread responsive to signals on every platform.
            while not stopping.wait(1.0):
                pass
        finally:
            group.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        connection.close()

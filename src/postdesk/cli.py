"""The `postdesk` command: setup, administration, import, inspection and the server processes.

Every command works on the data directory and database the environment names (POSTDESK_DATA_DIR,
DATABASE_URL, REDIS_URL), so an installation can be scripted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from postdesk.config import ConfigError
from postdesk.desk.errors import PostdeskError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A user-fault error: printed as one clear line, exit status 2."""


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    import django

    django.setup()


def _out(text: str = "", stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)


# --- setup and administration -------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0 if args.quiet else 1)
    return EXIT_OK


def _get_mailbox(address: str) -> Any:
    from postdesk.desk.models import Mailbox

    mailbox = Mailbox.objects.filter(address=address.strip().lower()).first()
    if mailbox is None:
        known = ", ".join(Mailbox.objects.values_list("address", flat=True)) or "none yet"
        raise CommandError(f"no mailbox {address!r} (known: {known}); add it with: postdesk mailbox add {address}")
    return mailbox


def cmd_mailbox_add(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from postdesk.desk.models import Mailbox, Team
    from postdesk.desk.secrets_box import encrypt

    address = args.address.strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise CommandError(f"{args.address!r} is not an email address") from None
    if "+" in address.split("@", 1)[0]:
        raise CommandError("a mailbox address cannot contain '+': subaddresses are reserved for reply tokens")
    team = None
    if args.team:
        team, _ = Team.objects.get_or_create(name=args.team)
    password = _secret_from_env(args.imap_password_env)
    fields: dict[str, Any] = {"name": args.name or address, "team": team}
    imap_host = args.imap_host
    if args.imap_oauth:
        imap_host = imap_host or _oauth_fields(args, fields)
    if imap_host:
        if not args.imap_user:
            raise CommandError("--imap-host needs --imap-user (and --imap-password-env or --imap-oauth)")
        fields.update(
            imap_host=imap_host,
            imap_port=args.imap_port or (143 if args.imap_no_ssl else 993),
            imap_ssl=not args.imap_no_ssl,
            imap_user=args.imap_user,
            imap_password_encrypted=encrypt(password),
            imap_folder=args.imap_folder,
            imap_processed_folder=args.imap_processed_folder or "",
        )
    if args.smtp_host:
        fields.update(
            smtp_host=args.smtp_host,
            smtp_port=args.smtp_port,
            smtp_starttls=not args.smtp_no_starttls,
            smtp_user=args.smtp_user,
            smtp_password_encrypted=encrypt(_secret_from_env(args.smtp_password_env)),
        )
    elif args.smtp_user or args.smtp_password_env:
        raise CommandError("--smtp-user and --smtp-password-env need --smtp-host")
    mailbox, created = Mailbox.objects.update_or_create(address=address, defaults=fields)
    _out(f"{'added' if created else 'updated'} mailbox {mailbox.address}")
    if args.imap_oauth and not mailbox.oauth_refresh_token_encrypted:
        _out(f"next: grant access in a browser with: postdesk mailbox authorize {mailbox.address}")
    return EXIT_OK


def _secret_from_env(variable: str) -> str:
    """A secret named by an environment variable, so that it stays out of shell history and `ps`."""
    if not variable:
        return ""
    value = os.environ.get(variable, "")
    if not value:
        raise CommandError(f"environment variable {variable} is empty or unset")
    return value


def _oauth_fields(args: argparse.Namespace, fields: dict[str, Any]) -> str:
    """Fill the XOAUTH2 fields from the options; returns the provider's IMAP host ("" for custom)."""
    from postdesk.desk.models import ImapAuth
    from postdesk.desk.secrets_box import encrypt
    from postdesk.transports.oauth2 import PROVIDERS

    preset = PROVIDERS.get(args.imap_oauth)
    if preset is None and not args.oauth_token_url:
        raise CommandError("--imap-oauth custom needs --oauth-token-url (and --oauth-authorization-url to authorize)")
    if not args.oauth_client_id:
        raise CommandError("--imap-oauth needs --oauth-client-id (from the app registered with the provider)")
    fields.update(
        imap_auth=ImapAuth.XOAUTH2,
        oauth_provider=preset.name if preset else "",
        oauth_client_id=args.oauth_client_id,
        oauth_client_secret_encrypted=encrypt(_secret_from_env(args.oauth_client_secret_env)),
        oauth_token_url=args.oauth_token_url,
        oauth_authorization_url=args.oauth_authorization_url,
        oauth_scope=args.oauth_scope,
    )
    refresh_token = _secret_from_env(args.oauth_refresh_token_env)
    if refresh_token:
        fields.update(
            oauth_refresh_token_encrypted=encrypt(refresh_token),
            oauth_access_token_encrypted="",
            oauth_access_token_expires_at=None,
        )
    return preset.imap_host if preset else ""


def cmd_mailbox_authorize(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.models import ImapAuth
    from postdesk.transports.imap_fetcher import check_mailbox
    from postdesk.transports.mailbox_oauth import authorize
    from postdesk.transports.oauth2 import OAuthError

    mailbox = _get_mailbox(args.address)
    if mailbox.imap_auth != ImapAuth.XOAUTH2:
        raise CommandError(f"mailbox {mailbox.address} logs in with a password; set it up with --imap-oauth first")

    def show(url: str) -> None:
        _out("Open this address in a browser, signed in as the mailbox's user, and allow access:")
        _out(f"\n  {url}\n")
        _out(f"Waiting up to {args.timeout:.0f} s for the provider to send the browser back ...")

    try:
        authorize(mailbox, show_url=show, port=args.port, timeout=args.timeout)
    except OAuthError as exc:
        raise CommandError(f"authorisation failed: {exc}") from None
    _out(f"authorised: {mailbox.address} now logs in to IMAP with OAuth 2.0")
    error = check_mailbox(mailbox)
    if error:
        _out(f"but the IMAP login does not work yet: {error}")
        return EXIT_FAILED
    _out("IMAP login checked: ok")
    return EXIT_OK


def cmd_mailbox_list(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.models import Mailbox

    rows = [
        {
            "address": m.address,
            "name": m.name,
            "team": m.team.name if m.team else None,
            "active": m.active,
            "imap": f"{m.imap_user}@{m.imap_host}:{m.imap_port}/{m.imap_folder}" if m.has_imap else None,
            "imap_auth": m.imap_auth if m.has_imap else None,
            "last_fetch_at": m.last_fetch_at.isoformat() if m.last_fetch_at else None,
            "last_error": m.last_error or None,
        }
        for m in Mailbox.objects.select_related("team").order_by("address")
    ]

    def line(row: dict[str, Any]) -> str:
        via = f"imap {row['imap']} ({row['imap_auth']})" if row["imap"] else "smtp/import only"
        return f"{row['address']:<40} {row['team'] or '-':<16} {via}"

    return _print_rows(
        rows, as_json=args.json, empty="no mailboxes yet; add one with: postdesk mailbox add ADDRESS", line=line
    )


def _print_rows(rows: list[dict[str, Any]], *, as_json: bool, empty: str, line: Callable[[dict[str, Any]], str]) -> int:
    """The listing commands' output: the rows as JSON, or a line each (a hint when there are none)."""
    if as_json:
        _out(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        _out(empty)
    for row in rows:
        _out(line(row))
    return EXIT_OK


def cmd_admin_add(args: argparse.Namespace) -> int:
    _setup_django()
    from django.contrib.auth import get_user_model

    from postdesk.desk.models import AgentProfile, Role

    email = args.email.strip().lower()
    password = args.password or os.environ.get("POSTDESK_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    users = get_user_model()
    user = users.objects.filter(username=email).first()
    if user is not None and not args.reset_password:
        _out(f"admin {email} already exists (use --reset-password to set a new password)")
        return EXIT_OK
    if user is None:
        user = users.objects.create_superuser(username=email, email=email, password=password)
    else:
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
    AgentProfile.objects.update_or_create(user=user, defaults={"role": Role.ADMIN})
    _out(f"admin login: {email}")
    if not args.password:
        _out(f"password:    {password}")
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    """Print a new API token for an existing user; only its hash is stored."""
    _setup_django()
    from postdesk.desk.people import new_token

    _out(new_token(args.email))
    return EXIT_OK


def cmd_team_add(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.people import add_team

    team, created = add_team(args.name, args.mailbox)
    mailboxes = ", ".join(team.mailboxes.order_by("address").values_list("address", flat=True)) or "none yet"
    _out(f"{'added' if created else 'updated'} team {team.name} (mailboxes: {mailboxes})")
    return EXIT_OK


def cmd_team_list(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.models import Team

    teams = Team.objects.prefetch_related("mailboxes", "agents__user").order_by("name")
    rows: list[dict[str, Any]] = [
        {
            "name": team.name,
            "mailboxes": sorted(mailbox.address for mailbox in team.mailboxes.all()),
            "agents": sorted(profile.user.username for profile in team.agents.all()),
        }
        for team in teams
    ]
    return _print_rows(
        rows,
        as_json=args.json,
        empty="no teams yet; add one with: postdesk team add NAME --mailbox ADDRESS",
        line=lambda row: (
            f"{row['name']:<24} mailboxes: {', '.join(row['mailboxes']) or '-'}; agents: {len(row['agents'])}"
        ),
    )


def cmd_agent_add(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.people import add_agent

    added = add_agent(
        args.email,
        teams=args.team,
        role=args.role,
        name=args.name,
        password=_secret_from_env(args.password_env),
    )
    teams = ", ".join(added.profile.teams.order_by("name").values_list("name", flat=True)) or "-"
    action = "added" if added.created else "updated"
    _out(f"{action} {added.profile.role} {added.profile.user.username} (teams: {teams})", sys.stderr)
    if added.password:
        _out(f"password: {added.password}", sys.stderr)
    # Only the token goes to standard output, so that a script can capture it: TOKEN=$(postdesk agent add ...)
    _out(added.token)
    return EXIT_OK


def cmd_agent_token(args: argparse.Namespace) -> int:
    return cmd_token(args)


def cmd_agent_list(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.models import AgentProfile

    profiles = AgentProfile.objects.select_related("user").prefetch_related("teams").order_by("user__username")
    rows: list[dict[str, Any]] = [
        {
            "email": profile.user.username,
            "name": profile.user.get_full_name(),
            "role": profile.role,
            "teams": sorted(team.name for team in profile.teams.all()),
            "active": profile.user.is_active,
        }
        for profile in profiles
    ]
    return _print_rows(
        rows,
        as_json=args.json,
        empty="no agents yet; add one with: postdesk agent add EMAIL --team NAME",
        line=lambda row: f"{row['email']:<32} {row['role']:<13} {', '.join(row['teams']) or '-'}",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Create the demo admin and mailbox once (used by `make run`); prints the login."""
    _setup_django()
    from django.contrib.auth import get_user_model

    from postdesk.desk.models import AgentProfile, Mailbox, Role, Team

    team, _ = Team.objects.get_or_create(name="Support")
    Mailbox.objects.get_or_create(address="support@example.com", defaults={"name": "Demo support", "team": team})
    email = "admin@example.com"
    password_file = _data_dir() / "demo-admin-password.txt"
    users = get_user_model()
    if not users.objects.filter(username=email).exists():
        password = secrets.token_urlsafe(12)
        user = users.objects.create_superuser(username=email, email=email, password=password)
        AgentProfile.objects.create(user=user, role=Role.ADMIN).teams.add(team)
        password_file.write_text(password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
    password = password_file.read_text(encoding="utf-8").strip() if password_file.exists() else "(unchanged)"
    _out(f"demo admin:   {email} / {password}")
    _out("demo mailbox: support@example.com")
    return EXIT_OK


def _data_dir() -> Path:
    from django.conf import settings

    path: Path = settings.CONFIG.data_dir
    return path


# --- import -------------------------------------------------------------------------------------


def iter_raw_mails(path: Path) -> Iterator[tuple[str, bytes | OSError]]:
    """(label, raw bytes) for every mail under `path`: an .eml file, an mbox file, a Maildir or a folder.

    A file that cannot be read is yielded with its error, so one bad file never stops an import.
    """
    import mailbox as stdlib_mailbox

    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            maildir = stdlib_mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(maildir.keys()):
                yield f"{path}:{key}", maildir.get_bytes(key)
            return
        for child in sorted(path.iterdir()):
            if child.name.startswith("."):
                continue
            if (
                child.is_dir()
                or child.suffix.lower() in {".eml", ".mbox", ".mbx", ".msg", ""}
                or _looks_like_mbox(child)
            ):
                yield from iter_raw_mails(child)
        return
    try:
        if _looks_like_mbox(path):
            box = stdlib_mailbox.mbox(path, factory=None, create=False)
            try:
                for index, key in enumerate(box.keys()):
                    yield f"{path}#{index + 1}", box.get_bytes(key)
            finally:
                box.close()
            return
        yield str(path), path.read_bytes()
    except OSError as exc:
        yield str(path), exc


def _looks_like_mbox(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def cmd_ingest(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.intake import accept_raw
    from postdesk.desk.models import ReceivedMail, ReceivedState, Source
    from postdesk.desk.processing import process_received_mail

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise CommandError("no such file or folder: " + ", ".join(missing))
    mailbox = _get_mailbox(args.mailbox)
    accepted = duplicated = failed = 0
    failures: list[str] = []
    accepted_ids: list[int] = []
    progress = _Progress(enabled=not args.no_progress)
    for path in args.paths:
        try:
            for label, raw in iter_raw_mails(Path(path)):
                if isinstance(raw, OSError):
                    failed += 1
                    failures.append(f"{label}: cannot read: {raw.strerror or raw}")
                    continue
                try:
                    result = accept_raw(
                        mailbox,
                        raw,
                        source=Source.IMPORT,
                        source_ref=label[-500:],
                        quiet=True,
                        # --queue-only hands each mail to the workers as soon as it is committed.
                        enqueue=None if args.queue_only else _process_later,
                    )
                except Exception as exc:  # one unreadable mail never stops the import
                    failed += 1
                    failures.append(f"{label}: {type(exc).__name__}: {exc}")
                else:
                    if result.duplicate:
                        duplicated += 1
                    else:
                        accepted += 1
                        accepted_ids.append(result.received_mail_id)
                progress.tick(accepted + duplicated + failed)
        except OSError as exc:
            failed += 1
            failures.append(f"{path}: cannot read: {exc.strerror or exc}")
    if not args.queue_only:
        for done, received_mail_id in enumerate(accepted_ids, start=1):
            process_received_mail(received_mail_id)
            progress.tick(done, "processed")
    progress.finish()
    processing_failed = ReceivedMail.objects.filter(pk__in=accepted_ids, state=ReceivedState.FAILED)
    for row in processing_failed:
        failed += 1
        failures.append(f"{row.source_ref}: processing failed: {row.error.splitlines()[0] if row.error else '?'}")
    for failure in failures:
        _out(f"failed: {failure}", sys.stderr)
    _out(f"accepted {accepted}, duplicated {duplicated}, failed {failed}")
    return EXIT_FAILED if failed else EXIT_OK


def _process_later(received_mail_id: int) -> None:
    """Processing happens after the whole import is accepted, in this process."""


class _Progress:
    """One self-overwriting line on a terminal for long imports; silent when not on a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = False

    def tick(self, count: int, verb: str = "read") -> None:
        if self.enabled and count % 50 == 0:
            sys.stderr.write(f"\r{verb} {count} mails…")
            sys.stderr.flush()
            self.shown = True

    def finish(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# --- inspection ---------------------------------------------------------------------------------


def cmd_parse(args: argparse.Namespace) -> int:
    from postdesk.mail.analysis import analyse, analysis_to_json

    path = Path(args.file)
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    result = analysis_to_json(analyse(raw))
    if args.json:
        _out(json.dumps(result, ensure_ascii=False, indent=2))
        return EXIT_OK
    sender = result.get("from")
    _out(f"Subject:    {result['subject']}")
    if isinstance(sender, dict):
        _out(f"From:       {sender['name']} <{sender['address']}>")
    _out(f"Message-ID: {result['message_id']}")
    _out(f"Date:       {result['date']}")
    automated = result["automated"]
    if isinstance(automated, dict) and automated.get("kind"):
        _out(f"Automated:  {automated['kind']} ({automated['reason']})")
    attachments = result["attachments"]
    if isinstance(attachments, list):
        for attachment in attachments:
            _out(f"Attachment: {attachment['filename']} ({attachment['content_type']}, {attachment['size']} bytes)")
    problems = result["problems"]
    if isinstance(problems, list):
        for problem in problems:
            _out(f"Problem:    {problem['code']}: {problem['detail']}")
    _out()
    _out(str(result["visible_text"]))
    return EXIT_OK


def collect_status() -> dict[str, Any]:
    from django.db.models import Count

    from postdesk.desk.models import Conversation, Mailbox, Message, ReceivedMail, ReceivedState

    by_state = {s.value: 0 for s in ReceivedState}
    for row in ReceivedMail.objects.values("state").annotate(n=Count("id")):
        by_state[row["state"]] = row["n"]
    oldest_waiting = (
        ReceivedMail.objects.filter(state=ReceivedState.WAITING)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    return {
        "received_mail": by_state,
        "oldest_waiting_at": oldest_waiting.isoformat() if oldest_waiting else None,
        "conversations": Conversation.objects.count(),
        "messages": Message.objects.count(),
        "mailboxes": [
            {
                "address": m.address,
                "imap": m.has_imap,
                "last_fetch_at": m.last_fetch_at.isoformat() if m.last_fetch_at else None,
                "last_error": m.last_error or None,
                "last_error_at": m.last_error_at.isoformat() if m.last_error_at else None,
            }
            for m in Mailbox.objects.order_by("address")
        ],
    }


def cmd_status(args: argparse.Namespace) -> int:
    _setup_django()
    status = collect_status()
    if args.json:
        _out(json.dumps(status, indent=2))
        return EXIT_OK
    received = status["received_mail"]
    _out(
        f"received mail: {received['waiting']} waiting, {received['processed']} processed, {received['failed']} failed"
    )
    if status["oldest_waiting_at"]:
        _out(f"oldest waiting since {status['oldest_waiting_at']}")
    _out(f"conversations: {status['conversations']}, messages: {status['messages']}")
    for mailbox in status["mailboxes"]:
        fetched = mailbox["last_fetch_at"] or ("never" if mailbox["imap"] else "n/a (no IMAP)")
        line = f"  {mailbox['address']}: last fetch {fetched}"
        if mailbox["last_error"]:
            line += f"; last error at {mailbox['last_error_at']}: {mailbox['last_error']}"
        _out(line)
    if received["failed"]:
        _out("run `postdesk replay-failed` to process failed mail again")
    return EXIT_OK


def cmd_replay_failed(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.models import ReceivedMail, ReceivedState
    from postdesk.desk.processing import process_received_mail

    ids = list(ReceivedMail.objects.filter(state=ReceivedState.FAILED).order_by("id").values_list("pk", flat=True))
    ReceivedMail.objects.filter(pk__in=ids, state=ReceivedState.FAILED).update(state=ReceivedState.WAITING)
    outcomes = [process_received_mail(pk) for pk in ids]
    still_failed = outcomes.count(ReceivedState.FAILED)
    _out(f"replayed {len(ids)}: {len(ids) - still_failed} processed, {still_failed} still failed")
    return EXIT_FAILED if still_failed else EXIT_OK


def cmd_process_waiting(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.models import ReceivedMail, ReceivedState
    from postdesk.desk.processing import process_received_mail

    ids = list(ReceivedMail.objects.filter(state=ReceivedState.WAITING).order_by("id").values_list("pk", flat=True))
    outcomes = [process_received_mail(pk) for pk in ids]
    failed = outcomes.count(ReceivedState.FAILED)
    _out(f"processed {len(ids) - failed} waiting mail(s), {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    _setup_django()
    from django.db import connection

    from postdesk.transports.smtp_listener import listener_options_from_env

    problems: list[str] = []
    try:
        listener_options_from_env()
    except ConfigError as exc:
        problems.append(f"SMTP listener: {exc}")
    problems.extend(_check_languages())
    try:
        connection.ensure_connection()
    except Exception as exc:
        problems.append(f"database: {exc}")
    else:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            problems.append("database: migrations pending; run `postdesk migrate`")
        else:
            problems.extend(_check_mailboxes())
    for problem in problems:
        _out(f"problem: {problem}")
    if not problems:
        _out("ok: configuration, database and mailboxes look fine")
    return EXIT_FAILED if problems else EXIT_OK


def _check_languages() -> list[str]:
    """POSTDESK_LANGUAGES must name languages the detector knows, or every mail would fail its triage step."""
    from django.conf import settings

    from postdesk.triage.language import supported_languages

    known = set(supported_languages())
    unknown = [code for code in settings.POSTDESK_LANGUAGES if code not in known]
    if unknown:
        return [f"POSTDESK_LANGUAGES: unknown language codes {', '.join(unknown)}; use ISO 639-1 codes such as en, ru"]
    return []


def _check_mailboxes() -> list[str]:
    from postdesk.desk.models import Mailbox
    from postdesk.transports.imap_fetcher import check_mailbox

    problems = []
    for mailbox in Mailbox.objects.filter(active=True):
        if not mailbox.has_imap:
            continue
        # Undecryptable credentials, refused logins and OAuth token errors all come back as text.
        error = check_mailbox(mailbox)
        if error:
            problems.append(f"{mailbox.address}: {error}")
    return problems


# --- processes ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.server import run_all_in_one

    return run_all_in_one()


def cmd_web(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.server import run_web

    return run_web()


def cmd_worker(args: argparse.Namespace) -> int:
    # A worker's few threads keep their PostgreSQL connections between jobs (see settings._database).
    os.environ.setdefault("POSTDESK_DB_CONN_MAX_AGE", "600")
    _setup_django()
    from postdesk.server import run_worker

    return run_worker(workers=args.workers, scheduler=not args.no_scheduler)


def cmd_smtpd(args: argparse.Namespace) -> int:
    _setup_django()
    from django.conf import settings

    from postdesk.transports.smtp_listener import serve_smtp_forever

    serve_smtp_forever(settings.CONFIG.bind, settings.CONFIG.smtp_port)
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.transports.imap_fetcher import serve_fetch_forever

    serve_fetch_forever()
    return EXIT_OK


# --- the outbox ---------------------------------------------------------------------------------


def cmd_outbox_list(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.models import OutboundMail, OutboundState

    pending = (OutboundState.QUEUED, OutboundState.SENDING, OutboundState.FAILED)
    rows = [
        {
            "id": row.pk,
            "state": row.state,
            "conversation": row.message.conversation.number,
            "mailbox": row.mailbox.address,
            "recipients": row.recipients,
            "subject": row.message.subject,
            "attempts": row.attempts,
            "send_after": row.send_after.isoformat(),
            "last_error": row.last_error,
            "created_at": row.created_at.isoformat(),
        }
        for row in OutboundMail.objects.filter(state__in=pending)
        .select_related("message__conversation", "mailbox")
        .order_by("created_at", "id")
    ]

    def line(row: dict[str, Any]) -> str:
        error = f"  last error: {row['last_error']}" if row["last_error"] else ""
        return (
            f"{row['id']:>6} {row['state']:<8} #{row['conversation']} to {', '.join(row['recipients'])}"
            f" (attempts {row['attempts']}, next {row['send_after']}){error}"
        )

    return _print_rows(rows, as_json=args.json, empty="the outbox is empty: every mail is sent or cancelled", line=line)


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    _setup_django()
    from postdesk.desk.outbox import retry

    row = retry(args.id)
    _out(f"outgoing mail {row.pk} queued for sending again (now {row.state})")
    return EXIT_OK


def _add_outbox_commands(sub: Any) -> None:
    about = "list mail waiting to be sent or failed; retry failed mail"
    outbox = sub.add_parser("outbox", help=about, description=about)
    outbox.set_defaults(handler=cmd_outbox_list)
    outbox.add_argument("--json", action="store_true")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=False, metavar="ACTION")
    retry = outbox_sub.add_parser("retry", help="send a failed mail again (after fixing the mailbox's SMTP settings)")
    retry.set_defaults(handler=cmd_outbox_retry)
    retry.add_argument("id", type=int, metavar="ID", help="the id `postdesk outbox` shows")


# --- the classifier -----------------------------------------------------------------------------
# `train --csv` and `classify` work on files only, for data brought from elsewhere: no database.

# Mail bodies exceed the csv module's default field limit of 128 KiB.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
_CLASSIFY_BATCH = 1000
_CLASSIFY_COLUMNS = ("label", "confidence")


def _open_csv(path_text: str, columns: Sequence[str]) -> tuple[Any, Any]:
    """An open file and a DictReader over it, after checking that the named columns exist."""
    import csv

    csv.field_size_limit(_CSV_FIELD_LIMIT)
    path = Path(path_text)
    try:
        # utf-8-sig: spreadsheets write a byte-order mark that would otherwise stick to the first column name.
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CommandError(f"cannot read {path_text}: {exc.strerror or exc}") from None
    reader = csv.DictReader(handle)
    try:
        header = reader.fieldnames
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise CommandError(f"{path_text} is not readable as UTF-8 CSV: {exc}") from None
    if not header:
        handle.close()
        raise CommandError(f"{path_text} is empty: expected a header line and rows")
    missing = [column for column in columns if column not in header]
    if missing:
        handle.close()
        raise CommandError(
            f"{path_text} has no column {', '.join(map(repr, missing))} (its columns: {', '.join(header)})"
        )
    return handle, reader


def _csv_rows(reader: Any, path_text: str) -> Iterator[dict[str, str]]:
    """The reader's rows, with decoding and CSV syntax errors turned into one clear line."""
    import csv

    try:
        yield from reader
    except (csv.Error, UnicodeDecodeError) as exc:
        raise CommandError(f"{path_text}, line {reader.line_num}: not readable as UTF-8 CSV: {exc}") from None


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier from a CSV file (or, without --csv, from this installation's conversations)."""
    if not args.csv:
        return _train_from_conversations(args)
    from datetime import UTC, datetime

    from postdesk.triage.classify import ModelError, cross_validate, save, train

    if not args.model:
        raise CommandError("--csv needs --model PATH: where to save the trained model")
    if args.activate and args.target not in ("category", "priority"):
        raise CommandError("--activate needs --target category or --target priority: what the model decides")
    handle, reader = _open_csv(args.csv, [args.text_column, args.label_column])
    texts: list[str] = []
    labels: list[str] = []
    unlabelled = 0
    with handle:
        for row in _csv_rows(reader, args.csv):
            label = (row.get(args.label_column) or "").strip()
            if not label:
                unlabelled += 1
                continue
            texts.append(row.get(args.text_column) or "")
            labels.append(label)
    if not texts:
        raise CommandError(f"{args.csv} has no labelled rows in column {args.label_column!r}")
    skipped = f" ({unlabelled} rows without a label skipped)" if unlabelled else ""
    _out(f"examples: {len(texts)}, labels: {len(set(labels))}{skipped}")
    scores = None
    try:
        if args.evaluate:
            scores = cross_validate(texts, labels, folds=args.folds)
            _out(f"{args.folds}-fold cross-validated accuracy: {scores.accuracy:.1%}, macro-F1: {scores.macro_f1:.1%}")
        model = train(texts, labels, trained_at=datetime.now(UTC))
        save(model, args.model)
    except ModelError as exc:
        raise CommandError(str(exc)) from None
    _out(f"model saved to {args.model}")
    if args.activate:
        _setup_django()
        from postdesk.desk.training import install_model

        installed = install_model(
            args.model,
            args.target,
            accuracy=scores.accuracy if scores else None,
            macro_f1=scores.macro_f1 if scores else None,
        )
        _out(f"model {installed.pk} is now this installation's {args.target} classifier")
    return EXIT_OK


def _train_from_conversations(args: argparse.Namespace) -> int:
    _setup_django()
    try:
        from postdesk.desk.training import train_from_conversations  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        raise CommandError(
            "training from this installation's conversations is not available yet; use --csv FILE"
        ) from None
    result: int = train_from_conversations(args)
    return result


def cmd_classify(args: argparse.Namespace) -> int:
    """Write each CSV row with its predicted label and confidence to standard output."""
    import csv
    import itertools

    from postdesk.triage.classify import ModelError, load

    handle, reader = _open_csv(args.csv, [args.text_column])
    with handle:
        rows = _csv_rows(reader, args.csv)
        first = next(rows, None)
        if first is None:
            raise CommandError(f"{args.csv} has a header but no rows")
        try:
            model = load(args.model)
        except ModelError as exc:
            raise CommandError(str(exc)) from None
        columns = list(reader.fieldnames)
        # A labelled file (to check a model against) may already have these columns: keep both.
        clash = {"label", "confidence"} & set(columns)
        label_column, confidence_column = ("predicted_label", "predicted_confidence") if clash else _CLASSIFY_COLUMNS
        fieldnames = [*columns, label_column, confidence_column]
        writer = csv.DictWriter(sys.stdout, fieldnames=fieldnames, lineterminator="\n", extrasaction="ignore")
        all_rows = itertools.chain([first], rows)
        try:
            writer.writeheader()
            while batch := list(itertools.islice(all_rows, _CLASSIFY_BATCH)):
                predictions = model.predict([row.get(args.text_column) or "" for row in batch])
                for row, prediction in zip(batch, predictions, strict=True):
                    row[label_column] = prediction.label
                    row[confidence_column] = f"{prediction.confidence:.4f}"
                    writer.writerow(row)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader stopped early (`| head`): not an error; keep Python's exit flush from failing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _add_classifier_commands(sub: Any) -> None:
    about = "train a text classifier from a CSV file (or from this installation's conversations)"
    train = sub.add_parser("train", help=about, description=about)
    train.set_defaults(handler=cmd_train)
    train.add_argument("--csv", default="", metavar="FILE", help="UTF-8 CSV with a header line")
    train.add_argument("--text-column", default="text", metavar="C", help="column holding the text (default: text)")
    train.add_argument("--label-column", default="label", metavar="L", help="column holding the label (default: label)")
    train.add_argument("--model", default="", metavar="PATH", help="where to save the model")
    train.add_argument("--evaluate", action="store_true", help="first print the cross-validated accuracy and macro-F1")
    train.add_argument("--folds", type=int, default=5, help="folds for --evaluate (default: 5)")
    train.add_argument(
        "--target",
        choices=("category", "priority", "both"),
        default="both",
        help="what the model decides: without --csv, which models to train (default: both); with --activate, "
        "which classifier the CSV model becomes",
    )
    train.add_argument(
        "--activate",
        action="store_true",
        help="with --csv: also install the saved model as this installation's classifier for --target",
    )
    about = "predict a label for each row of a CSV file; writes the rows plus label,confidence to standard output"
    classify = sub.add_parser("classify", help=about, description=about)
    classify.set_defaults(handler=cmd_classify)
    classify.add_argument("--model", required=True, metavar="PATH", help="a model saved by `postdesk train`")
    classify.add_argument("--csv", required=True, metavar="FILE", help="UTF-8 CSV with a header line")
    classify.add_argument("--text-column", default="text", metavar="C", help="column holding the text (default: text)")


# --- wiring -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="postdesk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    add("migrate", cmd_migrate, "create or upgrade the database").add_argument("--quiet", action="store_true")

    mailbox = sub.add_parser("mailbox", help="add and list mailboxes")
    mailbox_sub = mailbox.add_subparsers(dest="mailbox_command", required=True, metavar="ACTION")
    mb_add = mailbox_sub.add_parser("add", help="add or update a mailbox")
    mb_add.set_defaults(handler=cmd_mailbox_add)
    mb_add.add_argument("address")
    mb_add.add_argument("--name", default="")
    mb_add.add_argument("--team", default="", help="the team that owns it (created if new)")
    mb_add.add_argument("--imap-host", default="")
    mb_add.add_argument("--imap-port", type=int, default=0)
    mb_add.add_argument("--imap-user", default="")
    mb_add.add_argument(
        "--imap-password-env",
        default="",
        metavar="VAR",
        help="name of an environment variable holding the IMAP password",
    )
    mb_add.add_argument("--imap-folder", default="INBOX")
    mb_add.add_argument("--imap-processed-folder", default="", help="move fetched mail here (default: mark seen)")
    mb_add.add_argument("--imap-no-ssl", action="store_true", help="plain IMAP (port 143), for local servers only")
    mb_add.add_argument(
        "--imap-oauth",
        choices=["google", "microsoft", "custom"],
        default="",
        help="log in with OAuth 2.0 (XOAUTH2) instead of a password; google and microsoft fill in hosts and URLs",
    )
    mb_add.add_argument("--oauth-client-id", default="", metavar="ID")
    mb_add.add_argument("--oauth-client-secret-env", default="", metavar="VAR", help="variable holding the secret")
    mb_add.add_argument("--oauth-token-url", default="", metavar="URL", help="overrides the provider's")
    mb_add.add_argument("--oauth-authorization-url", default="", metavar="URL", help="overrides the provider's")
    mb_add.add_argument("--oauth-scope", default="", help="overrides the provider's")
    mb_add.add_argument(
        "--oauth-refresh-token-env",
        default="",
        metavar="VAR",
        help="variable holding a refresh token obtained elsewhere (else run `mailbox authorize`)",
    )
    mb_add.add_argument("--smtp-host", default="", help="the relay replies are sent through")
    mb_add.add_argument(
        "--smtp-port", type=int, default=587, help="587 (STARTTLS) by default; 465 is TLS from the start"
    )
    mb_add.add_argument("--smtp-user", default="", help="log in to the relay as this user")
    mb_add.add_argument(
        "--smtp-password-env", default="", metavar="VAR", help="name of an environment variable holding the password"
    )
    mb_add.add_argument(
        "--smtp-no-starttls", action="store_true", help="plain SMTP without STARTTLS, for a relay on this host only"
    )
    mb_auth = mailbox_sub.add_parser(
        "authorize", help="grant an XOAUTH2 mailbox access in a browser (once; stores a refresh token)"
    )
    mb_auth.set_defaults(handler=cmd_mailbox_authorize)
    mb_auth.add_argument("address")
    mb_auth.add_argument(
        "--port", type=int, default=0, help="loopback port for the redirect (fixed, for an SSH tunnel: ssh -L)"
    )
    mb_auth.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the browser")
    mb_list = mailbox_sub.add_parser("list", help="list mailboxes")
    mb_list.set_defaults(handler=cmd_mailbox_list)
    mb_list.add_argument("--json", action="store_true")

    admin = sub.add_parser("admin", help="manage administrators")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    ad_add = admin_sub.add_parser("add", help="add an administrator (prints a generated password)")
    ad_add.set_defaults(handler=cmd_admin_add)
    ad_add.add_argument("email")
    ad_add.add_argument("--password", default="")
    ad_add.add_argument("--reset-password", action="store_true")

    add("token", cmd_token, "print a new API token for a user (use it as: Authorization: Token ...)").add_argument(
        "email"
    )

    team = sub.add_parser("team", help="add and list teams")
    team_sub = team.add_subparsers(dest="team_command", required=True, metavar="ACTION")
    tm_add = team_sub.add_parser("add", help="add a team, or give an existing one mailboxes")
    tm_add.set_defaults(handler=cmd_team_add)
    tm_add.add_argument("name")
    tm_add.add_argument(
        "--mailbox", action="append", default=[], metavar="ADDRESS", help="a mailbox the team answers (repeatable)"
    )
    tm_list = team_sub.add_parser("list", help="list teams with their mailboxes and agents")
    tm_list.set_defaults(handler=cmd_team_list)
    tm_list.add_argument("--json", action="store_true")

    agent = sub.add_parser("agent", help="add agents, list them, issue API tokens")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    ag_add = agent_sub.add_parser(
        "add", help="add or update an agent; prints a new API token (and a generated password to stderr)"
    )
    ag_add.set_defaults(handler=cmd_agent_add)
    ag_add.add_argument("email")
    ag_add.add_argument("--team", action="append", default=[], metavar="NAME", help="a team of theirs (repeatable)")
    ag_add.add_argument(
        "--role",
        default="agent",
        choices=["admin", "supervisor", "agent", "collaborator"],
        help="collaborators may only add notes (default: agent)",
    )
    ag_add.add_argument("--name", default="", help="full name, shown to colleagues")
    ag_add.add_argument("--password-env", default="", metavar="VAR", help="variable holding a password to set")
    ag_token = agent_sub.add_parser("token", help="print a fresh API token for an agent")
    ag_token.set_defaults(handler=cmd_agent_token)
    ag_token.add_argument("email")
    ag_list = agent_sub.add_parser("list", help="list agents with their role and teams")
    ag_list.set_defaults(handler=cmd_agent_list)
    ag_list.add_argument("--json", action="store_true")
    add("demo", cmd_demo, "create the demo admin and the demo mailbox support@example.com")

    ingest = add("ingest", cmd_ingest, "import .eml files, mbox files and Maildir folders into a mailbox")
    ingest.add_argument("--mailbox", required=True, metavar="ADDRESS")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--queue-only", action="store_true", help="only accept; leave processing to the workers")
    ingest.add_argument("--no-progress", action="store_true")

    parse = add("parse", cmd_parse, "print the parse of one raw mail (no database needed)")
    parse.add_argument("file", metavar="FILE", help="a raw mail file, or - for standard input")
    parse.add_argument("--json", action="store_true")

    add("status", cmd_status, "received mail by state, conversations, mailbox fetch health").add_argument(
        "--json", action="store_true"
    )
    add("replay-failed", cmd_replay_failed, "process failed mail again")
    add("process-waiting", cmd_process_waiting, "process every waiting mail now, in this process")
    add("check", cmd_check, "validate configuration, database and mailbox credentials")
    add("run", cmd_run, "run everything in one process: web, jobs, SMTP listener, IMAP fetchers")
    add("web", cmd_web, "run the web server only")
    worker = add("worker", cmd_worker, "run a job worker only")
    worker.add_argument("--workers", type=int, default=2)
    worker.add_argument("-n", "--no-scheduler", action="store_true", help="do not run periodic jobs here")
    add("smtpd", cmd_smtpd, "run the SMTP listener only")
    add("fetch", cmd_fetch, "run the IMAP fetchers only")
    _add_outbox_commands(sub)
    _add_classifier_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (CommandError, ConfigError) as exc:
        _out(f"postdesk {args.command}: {exc}", sys.stderr)
        return EXIT_USAGE
    except PostdeskError as exc:
        _out(f"postdesk {args.command}: {exc.user_message}", sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

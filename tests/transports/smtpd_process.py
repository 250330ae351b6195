"""A stand-alone Postdesk SMTP process for the crash test: `python smtpd_process.py setup|serve|process|report`.

It reads the same environment as `postdesk` itself (POSTDESK_DATA_DIR, DATABASE_URL, POSTDESK_BIND,
POSTDESK_SMTP_PORT), so the crash test can run, kill and restart it like an operator would, without
depending on the CLI:

- `setup`    migrate the database and create the mailbox support@example.com;
- `serve`    run the SMTP listener until SIGTERM/SIGINT (SIGKILL is the point of the test);
- `process`  process every waiting ReceivedMail inline, as `postdesk process-waiting` does;
- `report`   print, as JSON, what is stored: received mails, messages, and whether each blob is intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

MAILBOX = "support@example.com"


def setup() -> None:
    from django.core.management import call_command

    from postdesk.desk.models import Mailbox

    call_command("migrate", verbosity=0, interactive=False)
    Mailbox.objects.get_or_create(address=MAILBOX, defaults={"name": "Support"})


def serve() -> None:
    from postdesk.transports.smtp_listener import serve_smtp_forever

    serve_smtp_forever(os.environ.get("POSTDESK_BIND", "127.0.0.1"), int(os.environ["POSTDESK_SMTP_PORT"]))


def process() -> None:
    from postdesk.desk.models import ReceivedMail, ReceivedState
    from postdesk.desk.processing import process_received_mail

    waiting = ReceivedMail.objects.filter(state=ReceivedState.WAITING).order_by("received_at", "id")
    outcomes: dict[str, int] = {}
    for received_mail_id in list(waiting.values_list("pk", flat=True)):
        outcome = str(process_received_mail(received_mail_id))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(json.dumps(outcomes))


def report() -> None:
    from postdesk.desk.blobs import default_store
    from postdesk.desk.models import Message, ReceivedMail

    store = default_store()
    received = []
    for row in ReceivedMail.objects.order_by("id"):
        path = store.path_for(row.raw_sha256)
        intact = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == row.raw_sha256
        received.append(
            {
                "id": row.pk,
                "message_id": row.message_id,
                "state": row.state,
                "error": row.error[:500],
                "blob_intact": intact,
            }
        )
    messages = [
        {"message_id": m, "received_mail_id": r}
        for m, r in Message.objects.order_by("id").values_list("message_id", "received_mail_id")
    ]
    print(json.dumps({"received": received, "messages": messages}))


COMMANDS = {"setup": setup, "serve": serve, "process": process, "report": report}


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "serve"
    if command not in COMMANDS:
        print(f"usage: {argv[0]} {'|'.join(COMMANDS)}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    import django

    django.setup()
    COMMANDS[command]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Background jobs (huey) and the one table of periodic jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

log = logging.getLogger(__name__)

# A crash between committing a ReceivedMail and queueing its job only delays it by this much.
SWEEP_AFTER = timedelta(minutes=1)

# Mail that just arrived goes before backlogs (imports, sweeps), so customers' new mail never waits
# behind a big import.
LIVE_PRIORITY = 10
BACKLOG_PRIORITY = 0


@db_task(priority=LIVE_PRIORITY)
def process_received_mail(received_mail_id: int) -> str:
    from postdesk.desk.processing import process_received_mail as process

    return process(received_mail_id)


def queue_received_mail(received_mail_id: int, *, backlog: bool = False) -> None:
    process_received_mail(received_mail_id, priority=BACKLOG_PRIORITY if backlog else LIVE_PRIORITY)


def queue_waiting(older_than: timedelta | None = SWEEP_AFTER, *, at_start: bool = False) -> int:
    """Queue every waiting mail (older than `older_than`); returns how many.

    The periodic sweep waits for the queue to drain: while jobs are pending, waiting mail is most
    likely just queued behind them, and queueing it again would only fill the queue with duplicates
    that delay new mail. At start-up (`at_start`) everything waiting is queued at once, since a crash
    may have lost jobs that the queue still seems to hold; the few duplicates find their mail done.
    """
    from postdesk.desk.models import ReceivedMail, ReceivedState

    if not at_start and HUEY.pending_count() > 0:
        return 0
    waiting = ReceivedMail.objects.filter(state=ReceivedState.WAITING)
    if older_than is not None:
        waiting = waiting.filter(received_at__lt=timezone.now() - older_than)
    ids = list(waiting.order_by("received_at", "id").values_list("pk", flat=True)[:10000])
    for received_mail_id in ids:
        queue_received_mail(received_mail_id, backlog=True)
    if ids:
        log.info("sweep queued %d waiting mail(s)", len(ids))
    return len(ids)


@db_periodic_task(crontab(minute="*"))
def sweep_waiting_mail() -> int:
    return queue_waiting()


# --- the outbox (DESIGN.md §6) ----------------------------------------------------------------------


@db_task(priority=LIVE_PRIORITY)
def send_outbound_mail(outbound_id: int) -> str:
    """Send one outbox row if it is due (claims make a duplicate job harmless); see transports/smtp_sender.py."""
    from postdesk.transports.smtp_sender import deliver

    return deliver(outbound_id)


@db_periodic_task(crontab(minute="*"))
def sweep_outbox() -> int:
    """Queue due outbox rows whose job was lost, and settle rows a crash left `sending`."""
    from postdesk.desk.outbox import sweep

    report = sweep()
    return report.queued + report.resolved


@db_periodic_task(crontab(minute="*"))
def wake_snoozed_conversations() -> int:
    """Snoozed conversations whose time has come are open again (within a minute of it)."""
    from postdesk.desk.actions import wake_snoozed

    return wake_snoozed()


@db_periodic_task(crontab(minute="*"))
def sweep_sla_clocks() -> int:
    """Warnings and breaches whose time has come (Conversation.sla_check_at)."""
    from postdesk.desk import sla_clock

    return sla_clock.sweep()


@db_periodic_task(crontab(minute="*/5"))
def run_time_based_rules() -> int:
    """Rules with the time_check trigger ("pending for 3 days → remind")."""
    from postdesk.desk import rule_runner

    return rule_runner.run_time_checks()


@db_task(priority=LIVE_PRIORITY)
def hand_out_team_queue(team_id: int) -> int:
    """Give a team's waiting conversations to agents with room."""
    from postdesk.desk import routing

    return routing.hand_out(team_id)


@db_task()
def deliver_webhook(call_id: int) -> str:
    from postdesk.desk import rule_runner

    return rule_runner.deliver_webhook(call_id)


@db_periodic_task(crontab(minute="*"))
def sweep_webhooks() -> int:
    from postdesk.desk import rule_runner

    return rule_runner.sweep_webhooks()


@db_periodic_task(crontab(minute="17", hour="3"))
def retrain_classifiers() -> str:
    """Nightly: retrain the category and priority models on the agents' labels (postdesk train does it too)."""
    from postdesk.desk import training

    return training.retrain_scheduled()


@db_task(retries=5, retry_delay=60)
def send_notification_email(notification_id: int) -> str:
    from postdesk.desk import notify

    return notify.send_email(notification_id)


@db_periodic_task(crontab(minute="*"))
def hand_out_waiting_conversations() -> int:
    """Conversations waiting in team queues go to agents whose shift began or who gained room."""
    from postdesk.desk import routing

    return routing.hand_out_all()

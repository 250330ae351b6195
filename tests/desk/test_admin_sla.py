"""The SLA admin pages (desk/admin_sla.py): weekly hours per weekday, iCal holiday import, policies, templates."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from factories import make_agent, make_team
from postdesk.desk.models import BusinessCalendar, Holiday, ReplyTemplate, Role, SlaPolicy
from two_teams import fast_passwords

__all__ = ["fast_passwords"]

pytestmark = pytest.mark.django_db

ICAL = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//holidays//EN\r
BEGIN:VEVENT\r
UID:new-year@test\r
DTSTART;VALUE=DATE:20260101\r
DTEND;VALUE=DATE:20260102\r
RRULE:FREQ=YEARLY\r
SUMMARY:New Year\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:unity@test\r
DTSTART;VALUE=DATE:20261003\r
SUMMARY:German Unity Day\r
END:VEVENT\r
END:VCALENDAR\r
"""

CALENDAR_FORM = {
    "name": "Berlin office",
    "time_zone": "Europe/Berlin",
    "mon": "09:00-12:00, 13:00-17:00",
    "tue": "09:00-17:00",
    "wed": "09:00-17:00",
    "thu": "09:00-17:00",
    "fri": "09:00-15:00",
    "sat": "",
    "sun": "",
    "ical_from_year": "",
    "ical_to_year": "",
    "holidays-TOTAL_FORMS": "0",
    "holidays-INITIAL_FORMS": "0",
    "holidays-MIN_NUM_FORMS": "0",
    "holidays-MAX_NUM_FORMS": "1000",
}

POLICY_FORM = {
    "name": "Standard",
    "order": "0",
    "enabled": "on",
    "priorities_text": "urgent, high",
    "categories_text": "billing, Shipping",
    "tiers_text": "vip",
    "calendar": "",
    "first_response_minutes": "60",
    "next_response_minutes": "",
    "resolution_minutes": "480",
    "warn_before_minutes": "30",
    "notify_owner": "on",
    "notify_supervisor": "on",
    "reassign_to": "",
}


@pytest.fixture
def staff(db: None) -> Client:
    user = make_agent("root@shop.test", role=Role.ADMIN)
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def errors_of(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.context["adminform"].form.errors) + str(response.context["adminform"].form.non_field_errors())


def test_weekly_hours_are_typed_per_day_and_holidays_imported_from_ical(staff: Client) -> None:
    upload = SimpleUploadedFile("holidays.ics", ICAL, content_type="text/calendar")
    response = staff.post(
        "/admin/desk/businesscalendar/add/",
        {**CALENDAR_FORM, "ical_file": upload, "ical_from_year": "2026", "ical_to_year": "2027"},
    )
    assert response.status_code == 302, errors_of(response)
    calendar = BusinessCalendar.objects.get(name="Berlin office")
    assert calendar.weekly_hours["mon"] == ["09:00-12:00", "13:00-17:00"]
    assert calendar.weekly_hours["sat"] == []
    assert sorted(calendar.holidays.values_list("date", "name")) == [
        (date(2026, 1, 1), "New Year"),
        (date(2026, 10, 3), "German Unity Day"),
        (date(2027, 1, 1), "New Year"),
    ]
    page = staff.get(f"/admin/desk/businesscalendar/{calendar.pk}/change/").content.decode()
    assert 'value="09:00-12:00, 13:00-17:00"' in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tue": "9-17"}, "tuesday: &#x27;9-17&#x27; is not a time range like 09:00-17:00"),
        ({"wed": "17:00-09:00"}, "the end is not after the start"),
        ({"thu": "09:00-13:00, 12:00-17:00"}, "overlaps"),
        ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({k: "" for k in ("mon", "tue", "wed", "thu", "fri")}, "the calendar is never open"),
    ],
)
def test_bad_hours_are_refused_with_the_reason(staff: Client, change: dict[str, str], message: str) -> None:
    response = staff.post("/admin/desk/businesscalendar/add/", {**CALENDAR_FORM, **change})
    assert message in errors_of(response)
    assert not BusinessCalendar.objects.exists()


def test_a_broken_ical_file_is_refused_on_its_field(staff: Client) -> None:
    upload = SimpleUploadedFile("holidays.ics", b"this is not a calendar", content_type="text/calendar")
    response = staff.post(
        "/admin/desk/businesscalendar/add/",
        {**CALENDAR_FORM, "ical_file": upload, "ical_from_year": "2026", "ical_to_year": "2026"},
    )
    errors = response.context["adminform"].form.errors
    assert "not an iCalendar file" in str(errors["ical_file"])
    assert not Holiday.objects.exists()


def test_policy_conditions_are_lists_checked_against_priorities_and_tiers(staff: Client) -> None:
    response = staff.post("/admin/desk/slapolicy/add/", POLICY_FORM)
    assert response.status_code == 302, errors_of(response)
    policy = SlaPolicy.objects.get()
    assert policy.priorities == ["urgent", "high"]
    assert policy.categories == ["billing", "Shipping"]
    assert policy.tiers == ["vip"]

    bad = staff.post("/admin/desk/slapolicy/add/", {**POLICY_FORM, "name": "Bad", "priorities_text": "urgent, asap"})
    assert "Unknown: asap. Use urgent, high, normal, low." in errors_of(bad)
    zero = staff.post("/admin/desk/slapolicy/add/", {**POLICY_FORM, "name": "Zero", "first_response_minutes": "0"})
    assert "A target of 0 minutes can never be met" in errors_of(zero)
    none = staff.post(
        "/admin/desk/slapolicy/add/",
        {**POLICY_FORM, "name": "None", "first_response_minutes": "", "resolution_minutes": ""},
    )
    assert "Give at least one target" in errors_of(none)
    assert SlaPolicy.objects.count() == 1


def test_templates_refuse_unknown_placeholders(staff: Client) -> None:
    form = {"key": "ack", "language": "RU", "mailbox": "", "name": "Ack", "subject": "", "body": "Hi {customer}"}
    response = staff.post("/admin/desk/replytemplate/add/", form)
    assert "Unknown placeholder {customer}; use {customer_name}" in errors_of(response)
    ok = staff.post("/admin/desk/replytemplate/add/", {**form, "body": "Hi {customer_name}"})
    assert ok.status_code == 302
    assert ReplyTemplate.objects.get().language == "ru"


def test_agents_who_are_not_staff_get_no_admin(db: None) -> None:
    agent = make_agent("ann@shop.test", teams=(make_team("Support"),), role=Role.SUPERVISOR)
    client = Client()
    client.force_login(agent)
    for page in ("businesscalendar", "slapolicy", "replytemplate"):
        response = client.get(f"/admin/desk/{page}/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

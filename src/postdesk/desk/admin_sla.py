"""Admin pages for SLAs (issue 5): business hours with holidays and iCal import, SLA policies, reply templates.

Registered when desk/admin.py imports this module. Like every admin page, only staff with the model's
permissions get here. Weekly hours are typed per weekday ("09:00-12:00, 13:00-17:00") and checked by
`sla.business_hours`; its CalendarError messages are shown on the field they concern.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from postdesk.desk import calendars
from postdesk.desk.acknowledge import PLACEHOLDERS
from postdesk.desk.models import BusinessCalendar, Holiday, Priority, ReplyTemplate, SlaPolicy, Tier
from postdesk.sla.business_hours import DAY_KEYS, format_weekly_hours, parse_weekly_hours, zone_named
from postdesk.sla.business_hours import BusinessCalendar as PureCalendar
from postdesk.sla.errors import CalendarError
from postdesk.sla.holidays import Holiday as PureHoliday
from postdesk.sla.holidays import holidays_from_ical

if TYPE_CHECKING:
    CalendarFormBase = forms.ModelForm[BusinessCalendar]
    CalendarAdminBase = admin.ModelAdmin[BusinessCalendar]
    HolidayInlineBase = admin.TabularInline[Holiday, BusinessCalendar]
    PolicyFormBase = forms.ModelForm[SlaPolicy]
    PolicyAdminBase = admin.ModelAdmin[SlaPolicy]
    TemplateFormBase = forms.ModelForm[ReplyTemplate]
    TemplateAdminBase = admin.ModelAdmin[ReplyTemplate]
else:
    CalendarFormBase = PolicyFormBase = TemplateFormBase = forms.ModelForm
    CalendarAdminBase = PolicyAdminBase = TemplateAdminBase = admin.ModelAdmin
    HolidayInlineBase = admin.TabularInline

DAY_LABELS = {
    "mon": _("Monday"),
    "tue": _("Tuesday"),
    "wed": _("Wednesday"),
    "thu": _("Thursday"),
    "fri": _("Friday"),
    "sat": _("Saturday"),
    "sun": _("Sunday"),
}
MAX_ICAL_BYTES = 2 * 1024 * 1024
_SPLIT = re.compile(r"[,;\n]+")


def _pieces(text: str) -> list[str]:
    return [piece.strip() for piece in _SPLIT.split(text or "") if piece.strip()]


# --- business calendars -----------------------------------------------------------------------------------------


class BusinessCalendarForm(CalendarFormBase):
    """Weekly hours as one text field per weekday; holidays imported from an uploaded iCal file."""

    mon = forms.CharField(label=DAY_LABELS["mon"], required=False)
    tue = forms.CharField(label=DAY_LABELS["tue"], required=False)
    wed = forms.CharField(label=DAY_LABELS["wed"], required=False)
    thu = forms.CharField(label=DAY_LABELS["thu"], required=False)
    fri = forms.CharField(label=DAY_LABELS["fri"], required=False)
    sat = forms.CharField(label=DAY_LABELS["sat"], required=False)
    sun = forms.CharField(
        label=DAY_LABELS["sun"],
        required=False,
        help_text=_('Opening hours, e.g. "09:00-12:00, 13:00-17:00"; "00:00-24:00" is the whole day; empty = closed.'),
    )
    ical_file = forms.FileField(
        label=_("Import holidays from an iCal file (.ics)"),
        required=False,
        help_text=_("Every event in the file closes the calendar on its dates, within the years below."),
    )
    ical_from_year = forms.IntegerField(label=_("from year"), required=False, min_value=1900, max_value=9998)
    ical_to_year = forms.IntegerField(label=_("to year"), required=False, min_value=1900, max_value=9998)

    class Meta:
        model = BusinessCalendar
        fields = ["name", "time_zone"]
        help_texts = {"time_zone": _("An IANA name such as Europe/Berlin or America/New_York.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.weekly_hours if self.instance.pk else {}
        try:
            shown = format_weekly_hours(parse_weekly_hours(stored or {}))
        except CalendarError:
            shown = {key: list(value) if isinstance(value, list) else [str(value)] for key, value in stored.items()}
        for key in DAY_KEYS:
            self.fields[key].initial = ", ".join(shown.get(key, []))
        self.imported: list[PureHoliday] = []

    def clean_time_zone(self) -> str:
        name = str(self.cleaned_data.get("time_zone", "")).strip()
        try:
            zone_named(name)
        except CalendarError as error:
            raise forms.ValidationError(str(error)) from None
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        hours: dict[str, list[str]] = {}
        for key in DAY_KEYS:
            pieces = _pieces(cleaned.get(key, ""))
            try:
                parse_weekly_hours({key: pieces})
            except CalendarError as error:
                self.add_error(key, str(error))
            hours[key] = pieces
        if self.errors:
            return cleaned
        time_zone = cleaned.get("time_zone", "UTC")
        try:
            calendar = PureCalendar.from_hours(time_zone, hours)
        except CalendarError as error:
            raise forms.ValidationError(str(error)) from None
        cleaned["weekly_hours"] = format_weekly_hours(calendar.weekly_hours)
        upload = cleaned.get("ical_file")
        if upload is not None:
            self.imported = self._read_ical(upload, time_zone, cleaned)
        return cleaned

    def _read_ical(self, upload: Any, time_zone: str, cleaned: dict[str, Any]) -> list[PureHoliday]:
        first, last = cleaned.get("ical_from_year"), cleaned.get("ical_to_year")
        if first is None or last is None:
            self.add_error("ical_from_year", _("Give the years to import holidays for."))
            return []
        if last < first:
            self.add_error("ical_to_year", _("The last year is before the first."))
            return []
        if last - first > 20:
            self.add_error("ical_to_year", _("Import at most 20 years at a time."))
            return []
        if upload.size > MAX_ICAL_BYTES:
            self.add_error("ical_file", _("The file is larger than 2 MB; is it really a holiday calendar?"))
            return []
        try:
            return holidays_from_ical(
                upload.read(), start=date(first, 1, 1), end=date(last, 12, 31), time_zone=time_zone
            )
        except CalendarError as error:
            self.add_error("ical_file", str(error))
            return []

    def save(self, commit: bool = True) -> BusinessCalendar:
        calendar = super().save(commit=False)
        calendar.weekly_hours = self.cleaned_data["weekly_hours"]
        if commit:
            calendar.save()
        return calendar


class HolidayInline(HolidayInlineBase):
    model = Holiday
    extra = 1
    fields = ["date", "name"]


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(CalendarAdminBase):
    form = BusinessCalendarForm
    list_display = ["name", "time_zone", "hours_summary", "holiday_count"]
    search_fields = ["name"]
    inlines = [HolidayInline]
    fieldsets = [
        (None, {"fields": ["name", "time_zone"]}),
        (_("Weekly hours"), {"fields": list(DAY_KEYS)}),
        (_("Holidays from iCal"), {"fields": ["ical_file", "ical_from_year", "ical_to_year"]}),
    ]

    @admin.display(description=_("weekly hours"))
    def hours_summary(self, obj: BusinessCalendar) -> str:
        hours = obj.weekly_hours or {}
        return "; ".join(f"{key} {', '.join(hours[key])}" for key in DAY_KEYS if hours.get(key))

    @admin.display(description=_("holidays"))
    def holiday_count(self, obj: BusinessCalendar) -> int:
        return obj.holidays.count()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        imported: list[PureHoliday] = getattr(form, "imported", [])
        if imported:
            calendar = form.instance
            known = set(calendar.holidays.values_list("date", flat=True))
            new = [Holiday(calendar=calendar, date=h.date, name=h.name[:200]) for h in imported if h.date not in known]
            Holiday.objects.bulk_create(new, ignore_conflicts=True)
            messages.info(
                request,
                ngettext(
                    "Imported %(count)d holiday (%(skipped)d already there).",
                    "Imported %(count)d holidays (%(skipped)d already there).",
                    len(new),
                )
                % {"count": len(new), "skipped": len(imported) - len(new)},
            )
        calendars.clear_cache()


# --- SLA policies -----------------------------------------------------------------------------------------------


def _choices_text(values: Any) -> str:
    return ", ".join(str(value) for value in values or [])


class SlaPolicyForm(PolicyFormBase):
    """Conditions typed as comma-separated lists, checked against the known priorities and tiers."""

    priorities_text = forms.CharField(
        label=_("priorities"),
        required=False,
        help_text=_("Comma-separated, of: %(choices)s. Empty = any.") % {"choices": ", ".join(Priority.values)},
    )
    categories_text = forms.CharField(
        label=_("categories"), required=False, help_text=_("Comma-separated category names. Empty = any.")
    )
    tiers_text = forms.CharField(
        label=_("contact tiers"),
        required=False,
        help_text=_("Comma-separated, of: %(choices)s. Empty = any.") % {"choices": ", ".join(Tier.values)},
    )

    class Meta:
        model = SlaPolicy
        exclude = ["priorities", "categories", "tiers", "created_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["priorities_text"].initial = _choices_text(self.instance.priorities)
            self.fields["categories_text"].initial = _choices_text(self.instance.categories)
            self.fields["tiers_text"].initial = _choices_text(self.instance.tiers)

    def _checked(self, name: str, allowed: list[str]) -> list[str]:
        values = list(dict.fromkeys(piece.lower() for piece in _pieces(self.cleaned_data.get(name, ""))))
        unknown = [value for value in values if value not in allowed]
        if unknown:
            raise forms.ValidationError(
                _("Unknown: %(unknown)s. Use %(allowed)s.")
                % {"unknown": ", ".join(unknown), "allowed": ", ".join(allowed)}
            )
        return values

    def clean_priorities_text(self) -> list[str]:
        return self._checked("priorities_text", list(Priority.values))

    def clean_tiers_text(self) -> list[str]:
        return self._checked("tiers_text", list(Tier.values))

    def clean_categories_text(self) -> list[str]:
        return list(dict.fromkeys(_pieces(self.cleaned_data.get("categories_text", ""))))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        targets = ["first_response_minutes", "next_response_minutes", "resolution_minutes"]
        for name in targets:
            if cleaned.get(name) == 0:
                self.add_error(name, _("A target of 0 minutes can never be met; leave it empty for no target."))
        if not any(cleaned.get(name) for name in targets) and not self.errors:
            raise forms.ValidationError(_("Give at least one target: first response, next response or resolution."))
        return cleaned

    def save(self, commit: bool = True) -> SlaPolicy:
        policy = super().save(commit=False)
        policy.priorities = self.cleaned_data["priorities_text"]
        policy.categories = self.cleaned_data["categories_text"]
        policy.tiers = self.cleaned_data["tiers_text"]
        if commit:
            policy.save()
            self.save_m2m()
        return policy


@admin.register(SlaPolicy)
class SlaPolicyAdmin(PolicyAdminBase):
    form = SlaPolicyForm
    list_display = ["name", "order", "enabled", "conditions", "targets", "calendar"]
    list_editable = ["order", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    filter_horizontal = ["mailboxes"]
    fieldsets = [
        (None, {"fields": ["name", "order", "enabled"]}),
        (
            _("Applies to (empty = any)"),
            {"fields": ["priorities_text", "mailboxes", "categories_text", "tiers_text"]},
        ),
        (
            _("Targets, in business minutes of the calendar"),
            {"fields": ["calendar", "first_response_minutes", "next_response_minutes", "resolution_minutes"]},
        ),
        (
            _("Warning and escalation"),
            {"fields": ["warn_before_minutes", "notify_owner", "notify_supervisor", "raise_priority", "reassign_to"]},
        ),
    ]

    @admin.display(description=_("conditions"))
    def conditions(self, obj: SlaPolicy) -> str:
        parts = [
            _choices_text(obj.priorities),
            _choices_text(obj.categories),
            _choices_text(obj.tiers),
        ]
        return " / ".join(part for part in parts if part) or str(_("any"))

    @admin.display(description=_("targets (min)"))
    def targets(self, obj: SlaPolicy) -> str:
        values = [obj.first_response_minutes, obj.next_response_minutes, obj.resolution_minutes]
        return " / ".join(str(value) if value else "-" for value in values)


# --- reply templates --------------------------------------------------------------------------------------------

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ReplyTemplateForm(TemplateFormBase):
    class Meta:
        model = ReplyTemplate
        fields = ["key", "language", "mailbox", "name", "subject", "body"]

    def clean_language(self) -> str:
        language = str(self.cleaned_data.get("language", "")).strip().lower().replace("_", "-")
        if language and not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", language):
            raise forms.ValidationError(_("Use a language code such as en, ru or pt-br, or leave it empty."))
        return language

    def _placeholders_checked(self, name: str) -> str:
        text = str(self.cleaned_data.get(name, ""))
        unknown = sorted({found for found in _FIELD.findall(text) if found not in PLACEHOLDERS})
        if unknown:
            raise forms.ValidationError(
                _("Unknown placeholder %(unknown)s; use %(known)s.")
                % {
                    "unknown": ", ".join(f"{{{name}}}" for name in unknown),
                    "known": ", ".join(f"{{{name}}}" for name in PLACEHOLDERS),
                }
            )
        return text

    def clean_subject(self) -> str:
        return self._placeholders_checked("subject")

    def clean_body(self) -> str:
        return self._placeholders_checked("body")


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(TemplateAdminBase):
    form = ReplyTemplateForm
    list_display = ["key", "language", "name", "mailbox"]
    list_filter = ["language", "mailbox"]
    search_fields = ["key", "name", "subject", "body"]

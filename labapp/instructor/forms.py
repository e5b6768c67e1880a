"""The workshop form: creating and editing a workshop, each mistake named at its field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from labapp.catalog.registry import all_labs
from labapp.learning.models import Workshop

# What <input type="datetime-local"> sends and shows.
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class WorkshopForm(forms.Form):
    title = forms.CharField(max_length=200)
    labs = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Tick at least one lab.",
            "invalid_choice": "There is no lab '%(value)s'.",
        },
    )
    starts_at = forms.DateTimeField(
        label="Starts (UTC)",
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
    )
    ends_at = forms.DateTimeField(
        label="Ends (UTC)",
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
    )
    capacity = forms.IntegerField(min_value=1, max_value=10_000, initial=100, required=False)
    lifetime = forms.IntegerField(
        label="Sandbox lifetime (minutes)",
        min_value=10,
        max_value=7 * 24 * 60,
        initial=240,
        required=False,
        help_text="For sandboxes started from now on; “Extend” gives running ones more time.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labs = self.fields["labs"]
        assert isinstance(labs, forms.MultipleChoiceField)
        labs.choices = [(lab.id, lab.title) for lab in all_labs().values()]

    @classmethod
    def for_workshop(cls, workshop: Workshop) -> WorkshopForm:
        return cls(
            initial={
                "title": workshop.title,
                "labs": list(workshop.lab_ids),
                "starts_at": workshop.starts_at,
                "ends_at": workshop.ends_at,
                "capacity": workshop.capacity,
                "lifetime": workshop.sandbox_lifetime_minutes,
            }
        )

    @classmethod
    def blank(cls, now: dt.datetime) -> WorkshopForm:
        start = now.replace(second=0, microsecond=0)
        return cls(initial={"starts_at": start, "ends_at": start + dt.timedelta(hours=3)})

    def workshop_fields(self) -> dict[str, Any]:
        """The cleaned form as the keyword arguments of workshop_create / workshop_update."""
        data = self.cleaned_data
        return {
            "title": data["title"],
            "lab_ids": data["labs"],
            "starts_at": data["starts_at"],
            "ends_at": data["ends_at"],
            "capacity": data["capacity"],
            "sandbox_lifetime_minutes": data["lifetime"],
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The workshop must end after it starts.")
        if cleaned.get("capacity") is None:
            cleaned["capacity"] = self.fields["capacity"].initial
        if cleaned.get("lifetime") is None:
            cleaned["lifetime"] = self.fields["lifetime"].initial
        return cleaned

from django.contrib import admin

from labapp.learning.models import Enrolment, LabProgress, StepProgress, Workshop


@admin.register(Workshop)
class WorkshopAdmin(admin.ModelAdmin):
    list_display = ("title", "join_code", "starts_at", "ends_at", "capacity")
    search_fields = ("title", "join_code")
    filter_horizontal = ("instructors",)


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ("display_name", "workshop", "joined_at")
    list_filter = ("workshop",)


class StepProgressInline(admin.TabularInline):
    model = StepProgress
    extra = 0
    readonly_fields = ("step_id", "state", "attempts", "started_at", "passed_at")


@admin.register(LabProgress)
class LabProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "lab_id", "workshop", "started_at", "completed_at")
    list_filter = ("lab_id", "workshop")
    inlines = (StepProgressInline,)

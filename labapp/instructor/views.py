from __future__ import annotations

import io
import json
import uuid

import segno
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from labapp.catalog.registry import LabNotFound, get_lab
from labapp.http import AuthenticatedHttpRequest, HtmxHttpRequest
from labapp.instructor import charts, exports, services
from labapp.instructor.forms import WorkshopForm
from labapp.instructor.roles import instructor_required
from labapp.instructor.selectors import (
    dashboard,
    learner_history,
    workshop_for_instructor,
    workshop_pool,
)
from labapp.learning.models import Enrolment, LabProgress, Workshop


@instructor_required
def workshops(request: AuthenticatedHttpRequest) -> HttpResponse:
    now = timezone.now()
    form = WorkshopForm(request.POST) if request.method == "POST" else WorkshopForm.blank(now)
    if request.method == "POST" and form.is_valid():
        try:
            workshop = services.workshop_create(instructor=request.user, **form.workshop_fields())
        except (ValueError, LabNotFound) as exc:
            form.add_error(None, f"The workshop was not created: {exc}")
        else:
            return redirect("teach-dashboard", code=workshop.join_code)
    mine = Workshop.objects.filter(instructors=request.user).order_by("-starts_at")
    return render(
        request,
        "instructor/workshops.html",
        {"workshops": mine, "form": form, "now": now},
        status=400 if form.errors else 200,
    )


@instructor_required
def workshop_edit(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    workshop = workshop_for_instructor(user=request.user, code=code)
    form = WorkshopForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        try:
            services.workshop_update(workshop=workshop, **form.workshop_fields())
        except (ValueError, LabNotFound) as exc:
            form.add_error(None, f"The workshop was not changed: {exc}")
        else:
            messages.success(request, "Saved: the workshop's settings are changed.")
            return redirect("teach-dashboard", code=code)
    return render(
        request,
        "instructor/workshop_edit.html",
        {
            "workshop": workshop,
            "form": form or WorkshopForm.for_workshop(workshop),
            "now": timezone.now(),
        },
        status=400 if form is not None and form.errors else 200,
    )


@instructor_required
@require_POST
def workshop_close(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    workshop = workshop_for_instructor(user=request.user, code=code)
    services.workshop_close(workshop=workshop)
    messages.success(
        request,
        "Closed: nobody can join any more. Learners keep their sandboxes until they expire; "
        "to reopen, edit the end time.",
    )
    return redirect("teach-dashboard", code=code)


@instructor_required
def workshop_delete(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    workshop = workshop_for_instructor(user=request.user, code=code)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        title = workshop.title
        services.workshop_delete(workshop=workshop)
        messages.success(request, f"Deleted the workshop “{title}”.")
        return redirect("teach")
    return render(
        request,
        "instructor/workshop_delete.html",
        {"workshop": workshop, "learners": workshop.enrolments.count()},
        status=400 if request.method == "POST" else 200,
    )


def _join_url(request: AuthenticatedHttpRequest, workshop: Workshop) -> str:
    return request.build_absolute_uri(reverse("join-link", args=[workshop.join_code]))


@instructor_required
@require_GET
def join_qr(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    """The join link as a QR code (SVG), to show on a projector."""
    workshop = workshop_for_instructor(user=request.user, code=code)
    svg = io.BytesIO()
    segno.make(_join_url(request, workshop), error="m").save(
        svg, kind="svg", border=4, dark="#000", light="#fff", title="Join link", omitsize=True
    )
    response = HttpResponse(svg.getvalue(), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@instructor_required
@require_GET
def dashboard_page(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    workshop = workshop_for_instructor(user=request.user, code=code)
    if request.htmx and request.GET.get("part") == "pool":
        lab_id = request.GET.get("lab") or workshop.lab_ids[0]
        if lab_id not in workshop.lab_ids:
            raise Http404("this workshop has no such lab")
        pool = workshop_pool(workshop=workshop, lab_id=lab_id)
        return render(
            request,
            "instructor/dashboard.html#pool",
            {"pool": pool, "code": workshop.join_code, "lab_id": lab_id},
        )
    board = dashboard(workshop=workshop, lab_id=request.GET.get("lab"))
    context = {
        "board": board,
        "pool": board.pool,
        "code": workshop.join_code,
        "lab_id": board.lab.id,
        "labs": [get_lab(i) for i in workshop.lab_ids],
        "funnel": charts.funnel(board.steps, len(board.rows)),
        "medians": charts.median_times(board.steps),
        "join_url": _join_url(request, workshop),
        "now": timezone.now(),
    }
    template = "instructor/dashboard.html#live" if request.htmx else "instructor/dashboard.html"
    return render(request, template, context)


def _enrolment(request: AuthenticatedHttpRequest, code: str, enrolment_id: int) -> Enrolment:
    workshop = workshop_for_instructor(user=request.user, code=code)
    return get_object_or_404(
        Enrolment.objects.select_related("user", "workshop"), id=enrolment_id, workshop=workshop
    )


@instructor_required
@require_GET
def learner_detail(request: AuthenticatedHttpRequest, code: str, enrolment_id: int) -> HttpResponse:
    enrolment = _enrolment(request, code, enrolment_id)
    records, history = learner_history(enrolment=enrolment)
    return render(
        request,
        "instructor/learner.html",
        {"enrolment": enrolment, "records": records, "history": history},
    )


@instructor_required
@require_POST
def learner_reset(request: AuthenticatedHttpRequest, code: str, enrolment_id: int) -> HttpResponse:
    enrolment = _enrolment(request, code, enrolment_id)
    lab_id = request.POST.get("lab", "")
    if lab_id not in enrolment.workshop.lab_ids:
        raise Http404("no such lab in this workshop")
    try:
        services.learner_reset(
            enrolment=enrolment, lab_id=lab_id, step_id=request.POST.get("step") or None
        )
    except (LabProgress.DoesNotExist, ValueError):
        raise Http404("this learner has not started that lab or step") from None
    return redirect("teach-learner", code=code, enrolment_id=enrolment.id)


@instructor_required
@require_POST
def broadcast(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    workshop = workshop_for_instructor(user=request.user, code=code)
    message = request.POST.get("message", "").strip()[:500]
    if request.POST.get("clear") == "yes":
        message = ""
    services.workshop_broadcast(workshop=workshop, message=message)
    if message:
        learners = workshop.enrolments.count()
        messages.success(
            request,
            f"Sent to {learners} learner{'' if learners == 1 else 's'}: “{message}”. "
            "Their lab pages show it until you clear it.",
        )
    else:
        messages.success(request, "Cleared: learners' pages no longer show a broadcast.")
    return redirect("teach-dashboard", code=code)


@instructor_required
@require_POST
def extend(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    workshop = workshop_for_instructor(user=request.user, code=code)
    minutes = int(request.POST.get("minutes") or 30)
    services.workshop_extend(workshop=workshop, minutes=max(1, min(minutes, 24 * 60)))
    return redirect("teach-dashboard", code=code)


@instructor_required
@require_GET
def export(request: AuthenticatedHttpRequest, code: str, fmt: str) -> HttpResponse:
    workshop = workshop_for_instructor(user=request.user, code=code)
    if fmt not in ("csv", "json"):
        raise Http404("exports are .csv or .json")
    rows = exports.workshop_rows(
        workshop=workshop, base_url=request.build_absolute_uri("/").rstrip("/")
    )
    if fmt == "csv":
        response = HttpResponse(exports.as_csv(rows), content_type="text/csv")
    else:
        response = HttpResponse(
            json.dumps(
                {"workshop": workshop.title, "join_code": workshop.join_code, "rows": rows},
                indent=2,
            ),
            content_type="application/json",
        )
    response["Content-Disposition"] = f'attachment; filename="{code}.{fmt}"'
    return response


@require_GET
def certificate(request: HtmxHttpRequest, certificate_id: uuid.UUID) -> HttpResponse:
    """Public: anyone with the link can verify what the server checked."""
    record = get_object_or_404(
        LabProgress.objects.select_related("user", "workshop").prefetch_related("steps"),
        certificate_id=certificate_id,
        completed_at__isnull=False,
    )
    enrolment = (
        Enrolment.objects.filter(user=record.user, workshop=record.workshop).first()
        if record.workshop
        else None
    )
    name = enrolment.display_name if enrolment else (record.user.first_name or record.user.username)
    return render(
        request,
        "instructor/certificate.html",
        {"record": record, "lab": get_lab(record.lab_id), "name": name},
    )

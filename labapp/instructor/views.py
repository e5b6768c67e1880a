from __future__ import annotations

import datetime as dt
import json
import uuid

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from labapp.catalog.registry import LabNotFound, all_labs, get_lab
from labapp.http import AuthenticatedHttpRequest, HtmxHttpRequest
from labapp.instructor import charts, exports, services
from labapp.instructor.roles import instructor_required
from labapp.instructor.selectors import dashboard, workshop_for_instructor, workshop_pool
from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.runs.models import CommandRun


@instructor_required
def workshops(request: AuthenticatedHttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        try:
            starts = dt.datetime.fromisoformat(request.POST["starts_at"]).replace(tzinfo=dt.UTC)
            ends = dt.datetime.fromisoformat(request.POST["ends_at"]).replace(tzinfo=dt.UTC)
            workshop = services.workshop_create(
                instructor=request.user,
                title=request.POST["title"].strip() or "Workshop",
                lab_ids=request.POST.getlist("labs"),
                starts_at=starts,
                ends_at=ends,
                capacity=int(request.POST.get("capacity") or 100),
                sandbox_lifetime_minutes=int(request.POST.get("lifetime") or 240),
            )
            return redirect("teach-dashboard", code=workshop.join_code)
        except (KeyError, ValueError, LabNotFound) as exc:
            error = f"The workshop was not created: {exc}"
    mine = Workshop.objects.filter(instructors=request.user).order_by("-starts_at")
    now = timezone.now()
    return render(
        request,
        "instructor/workshops.html",
        {
            "workshops": mine,
            "labs": all_labs().values(),
            "error": error,
            "default_start": now.strftime("%Y-%m-%dT%H:%M"),
            "default_end": (now + dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        },
        status=400 if error else 200,
    )


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
    runs = (
        CommandRun.objects.filter(
            sandbox__owner=enrolment.user, sandbox__lab_id__in=enrolment.workshop.lab_ids
        )
        .select_related("sandbox")
        .order_by("queued_at")
    )
    records = LabProgress.objects.filter(user=enrolment.user).prefetch_related("steps")
    return render(
        request,
        "instructor/learner.html",
        {"enrolment": enrolment, "runs": runs, "records": records},
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
    services.workshop_broadcast(workshop=workshop, message=request.POST.get("message", "")[:500])
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

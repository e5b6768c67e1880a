from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from labapp.catalog.registry import LabNotFound, get_lab
from labapp.catalog.spec import LabSpec
from labapp.http import AuthenticatedHttpRequest, HtmxHttpRequest
from labapp.learning import services
from labapp.learning.attempts import attempt_start
from labapp.learning.limits import limited_response, rate_limited
from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.selectors import (
    catalogue,
    lab_place,
    lab_progress_for,
    lab_view,
    recent_runs,
    sandbox_view,
)
from labapp.learning.tracking import progress_recheck
from labapp.live import broadcasts
from labapp.live.sse import relay, sse_response
from labapp.live.streams import progress_key, workshop_events_key
from labapp.runs.selectors import run_for_user
from labapp.runs.services import RunNotAllowed
from labapp.sandboxes.models import Sandbox


def _lab_or_404(lab_id: str) -> LabSpec:
    try:
        return get_lab(lab_id)
    except LabNotFound:
        raise Http404(f"no lab {lab_id!r}") from None


@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    # Modules first, each in its order (Privileged, Baseline, Restricted), then the rest.
    return render(request, "learning/home.html", {"sections": catalogue(user=request.user)})


@rate_limited("join")
def join(request: HtmxHttpRequest, code: str = "") -> HttpResponse:
    if request.method != "POST":
        return render(request, "learning/join.html", {"code": code})
    user = request.user if request.user.is_authenticated else None
    try:
        enrolment = services.workshop_join(
            user=user,
            join_code=request.POST.get("code", ""),
            display_name=request.POST.get("name", ""),
        )
    except services.JoinRefused as exc:
        return render(
            request,
            "learning/join.html",
            {
                "code": request.POST.get("code", ""),
                "name": request.POST.get("name", ""),
                "error": str(exc),
            },
            status=400,
        )
    if user is None:
        login(request, enrolment.user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("workshop", code=enrolment.workshop.join_code)


@login_required
@require_GET
def workshop_page(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    enrolment = get_object_or_404(
        Enrolment.objects.select_related("workshop"), workshop__join_code=code, user=request.user
    )
    workshop = enrolment.workshop
    sections = catalogue(user=request.user, lab_ids=workshop.lab_ids)
    return render(
        request,
        "learning/workshop.html",
        {"workshop": workshop, "sections": sections, "enrolment": enrolment},
    )


@require_POST
@rate_limited("begin")
def lab_begin(request: HtmxHttpRequest, lab_id: str) -> HttpResponse:
    _lab_or_404(lab_id)
    user = request.user
    if not user.is_authenticated:
        name = request.POST.get("name", "").strip()
        if not name:
            messages.error(request, "Please give a display name to start.")
            return redirect("lab", lab_id=lab_id)
        user = services.guest_create(display_name=name)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    services.lab_start(user=user, lab_id=lab_id, workshop=_workshop_with_lab(user, lab_id))
    return redirect("lab", lab_id=lab_id)


def _workshop_with_lab(user: User, lab_id: str) -> Workshop | None:
    # Filtered in Python: SQLite has no JSON containment lookup.
    for workshop in Workshop.objects.filter(enrolments__user=user).order_by("-starts_at"):
        if lab_id in workshop.lab_ids:
            return workshop
    return None


@require_GET
def lab_page(request: HtmxHttpRequest, lab_id: str) -> HttpResponse:
    lab = _lab_or_404(lab_id)
    if (
        not request.user.is_authenticated
        or not LabProgress.objects.filter(user=request.user, lab_id=lab_id).exists()
    ):
        return render(
            request, "learning/lab_start.html", {"lab": lab, "place": lab_place(lab_id=lab.id)}
        )
    view = lab_view(user=request.user, lab_id=lab_id)
    if view.sandbox:
        services.sandbox_keep_alive(sandbox=view.sandbox)  # a visit is activity
    runs = recent_runs(sandbox=view.sandbox)
    chosen = request.GET.get("run")
    if chosen and chosen.isdigit():
        runs = [run_for_user(run_id=int(chosen), user=request.user)]
    return render(
        request,
        "learning/lab.html",
        {"view": view, "runs": runs, "workshop": view.progress.workshop},
    )


@login_required
@require_GET
def lab_refresh(request: AuthenticatedHttpRequest, lab_id: str) -> HttpResponse:
    """Progress bar and step states, as out-of-band swaps after a run ends."""
    _lab_or_404(lab_id)
    # The steps' text comes from the rendering cache; no command history is needed.
    view = lab_view(user=request.user, lab_id=lab_id, with_history=False)
    return render(request, "learning/lab.html#refresh", {"view": view})


@login_required
@require_GET
def sandbox_status(request: AuthenticatedHttpRequest, lab_id: str) -> HttpResponse:
    _lab_or_404(lab_id)
    view = sandbox_view(user=request.user, lab_id=lab_id)  # polled: no steps, no Markdown
    response = render(request, "learning/lab.html#sandbox", {"view": view})
    sandbox = view.sandbox
    if request.htmx and sandbox and sandbox.state != Sandbox.State.PROVISIONING:
        # Settled: stop polling, and let the page refresh the commands' names.
        stop = HttpResponseStopPolling(response.content)
        stop["HX-Refresh"] = "true" if request.GET.get("was") == "provisioning" else "false"
        return stop
    return response


def _progress_with_step(
    request: AuthenticatedHttpRequest, lab_id: str, step_id: str
) -> LabProgress:
    """The learner's record for this lab, if it has this step; 404 otherwise."""
    progress = lab_progress_for(user=request.user, lab_id=lab_id)
    if not progress.steps.filter(step_id=step_id).exists():
        raise Http404("no such step")
    return progress


def _step_action(
    request: AuthenticatedHttpRequest,
    lab_id: str,
    step_id: str,
    action: Callable[..., Any],
) -> HttpResponse:
    progress = _progress_with_step(request, lab_id, step_id)
    action(progress=progress, step_id=step_id)
    if request.htmx:
        view = lab_view(user=request.user, lab_id=lab_id, with_history=False)
        step = next(s for s in view.steps if s.spec.id == step_id)
        return render(request, "learning/lab.html#step", {"view": view, "step": step})
    return redirect(reverse("lab", args=[lab_id]) + f"#step-{step_id}")


@login_required
@require_POST
@rate_limited("reveal")
def reveal_hint(request: AuthenticatedHttpRequest, lab_id: str, step_id: str) -> HttpResponse:
    return _step_action(request, lab_id, step_id, services.progress_reveal_hint)


@login_required
@require_POST
@rate_limited("reveal")
def reveal_solution(request: AuthenticatedHttpRequest, lab_id: str, step_id: str) -> HttpResponse:
    return _step_action(request, lab_id, step_id, services.progress_reveal_solution)


@login_required
@require_POST
@rate_limited("check")
def recheck(request: AuthenticatedHttpRequest, lab_id: str, step_id: str) -> HttpResponse:
    try:
        return _step_action(request, lab_id, step_id, progress_recheck)
    except Sandbox.DoesNotExist:
        raise Http404("no sandbox to check") from None


@login_required
@require_POST
def reset_step(request: AuthenticatedHttpRequest, lab_id: str, step_id: str) -> HttpResponse:
    if request.POST.get("confirm") != "yes":
        return render(
            request,
            "learning/confirm.html",
            {"what": f"reset step {step_id!r}", "action": request.path},
            status=400,
        )
    # Counted once confirmed: without JavaScript, asking first is a POST too.
    if refused := limited_response(request, action="reset"):
        return refused
    progress = _progress_with_step(request, lab_id, step_id)
    services.progress_reset_step(progress=progress, step_id=step_id)
    return _reload(request, lab_id)


@login_required
@require_POST
def reset_sandbox(request: AuthenticatedHttpRequest, lab_id: str) -> HttpResponse:
    if request.POST.get("confirm") != "yes":
        return render(
            request,
            "learning/confirm.html",
            {"what": "reset your whole sandbox", "action": request.path},
            status=400,
        )
    if refused := limited_response(request, action="reset"):
        return refused
    progress = lab_progress_for(user=request.user, lab_id=lab_id)
    services.progress_reset_sandbox(progress=progress)
    return _reload(request, lab_id)


def _reload(request: AuthenticatedHttpRequest, lab_id: str) -> HttpResponse:
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return redirect("lab", lab_id=lab_id)


@login_required
@require_GET
def my_labs(request: AuthenticatedHttpRequest) -> HttpResponse:
    records = LabProgress.objects.filter(user=request.user).prefetch_related("steps")
    rows = [(record, get_lab(record.lab_id)) for record in records]
    return render(request, "learning/my_labs.html", {"rows": rows})


@require_GET
async def workshop_events(request: HtmxHttpRequest, code: str) -> StreamingHttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        raise Http404("not enrolled")
    enrolment = await Enrolment.objects.filter(workshop__join_code=code, user_id=user.pk).afirst()
    if enrolment is None:
        raise Http404("not enrolled")
    return sse_response(
        broadcasts.workshop_events(
            enrolment.workshop_id, last_event_id=request.headers.get("Last-Event-ID")
        )
    )


@require_GET
async def lab_events(request: HtmxHttpRequest, lab_id: str) -> StreamingHttpResponse:
    """The lab page's one live channel: its record moved (the tracker ticked a check),
    and the workshop's broadcasts."""
    user = await request.auser()
    if not user.is_authenticated:
        raise Http404("no such lab record")
    progress = await LabProgress.objects.filter(user_id=user.pk, lab_id=lab_id).afirst()
    if progress is None:
        raise Http404("no such lab record")
    keys = [progress_key(progress.id)]
    if progress.workshop_id:
        keys.append(workshop_events_key(progress.workshop_id))
    return sse_response(
        relay(keys, render=_render_lab_event, last_event_id=request.headers.get("Last-Event-ID"))
    )


def _render_lab_event(kind: str, payload: dict) -> str:
    if kind == "broadcast":
        return broadcasts.render_broadcast(kind, payload)
    return json.dumps(payload)  # "progress": the page fetches its fresh steps


@login_required
@require_POST
@rate_limited("run", htmx_target=None)  # the message lands where the output would
def run_create(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    sandbox = get_object_or_404(Sandbox, slug=slug, owner=request.user)
    try:
        run = attempt_start(
            sandbox=sandbox,
            command=request.POST.get("command", ""),
            step_id=request.POST.get("step", ""),
            counts=request.POST.get("preview") != "1",
        )
    except RunNotAllowed as exc:
        return render(request, "runs/run_panel.html#refused", {"reason": str(exc)}, status=409)
    except KeyError:
        raise Http404("no such step") from None
    services.sandbox_keep_alive(sandbox=sandbox)  # a run is activity
    if not request.htmx:
        # Without JavaScript: back to the lab page, which shows this run.
        return redirect(reverse("lab", args=[sandbox.lab_id]) + f"?run={run.id}#run-{run.id}")
    status = 422 if run.state == run.State.REFUSED else 202
    return render(request, "runs/run_panel.html#panel", {"run": run}, status=status)

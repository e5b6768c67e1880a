from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from labapp.http import AuthenticatedHttpRequest
from labapp.live.sse import sse_response, valid_stream_id
from labapp.runs import services
from labapp.runs.cancel import CancelUnavailable
from labapp.runs.selectors import run_for_user
from labapp.runs.sse import RunEvents


@login_required
@require_GET
def run_detail(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """The stored run: the record, and the polling fallback where SSE is blocked."""
    run = run_for_user(run_id=run_id, user=request.user)
    polling = request.GET.get("poll") == "1"
    response = render(
        request,
        "runs/run_panel.html#panel",
        {"run": run, "stored": not polling, "polling": polling},
    )
    if request.htmx and run.is_final:
        # Polling clients stop here: the run will not change again.
        return HttpResponseStopPolling(response.content)
    return response


@require_GET
async def run_stream(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    user = await request.auser()
    await sync_to_async(run_for_user)(run_id=run_id, user=user)
    after = valid_stream_id(request.headers.get("Last-Event-ID") or request.GET.get("after"))
    events = RunEvents(run_id, after=after, as_json=request.GET.get("format") == "json")
    return sse_response(events)


@login_required
@require_POST
def run_cancel(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """The run panel's Cancel. With htmx the panel hears the end on its stream;
    without JavaScript, back to the lab page, which shows the run."""
    run = run_for_user(run_id=run_id, user=request.user)
    try:
        run = services.run_cancel(run=run)
    except CancelUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")
    if request.htmx:
        return HttpResponse(status=204)
    lab_page = reverse("lab", args=[run.sandbox.lab_id])
    return redirect(f"{lab_page}?run={run.id}#run-{run.id}")

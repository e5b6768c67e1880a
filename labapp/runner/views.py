from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from labapp.runner.selectors import run_for_user
from labapp.runner.services import RunNotAllowed, run_start
from labapp.runner.sse import RunEvents, valid_stream_id
from labapp.sandboxes.models import Sandbox


@login_required
@require_POST
def run_create(request: HttpRequest, slug: str) -> HttpResponse:
    sandbox = get_object_or_404(Sandbox, slug=slug, owner=request.user)
    try:
        run = run_start(sandbox=sandbox, command=request.POST.get("command", ""),
                        step_id=request.POST.get("step", ""))
    except RunNotAllowed as exc:
        return render(request, "runner/run_panel.html#refused",
                      {"reason": str(exc)}, status=409)
    except KeyError:
        raise Http404("no such step") from None
    if not request.htmx:
        # Without JavaScript: back to the lab page, which shows this run.
        return redirect(reverse("lab", args=[sandbox.lab_id]) + f"?run={run.id}#run-{run.id}")
    status = 422 if run.state == run.State.REFUSED else 202
    return render(request, "runner/run_panel.html#panel", {"run": run}, status=status)


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """The stored run: the record, and the polling fallback where SSE is blocked."""
    run = run_for_user(run_id=run_id, user=request.user)
    polling = request.GET.get("poll") == "1"
    response = render(request, "runner/run_panel.html#panel",
                      {"run": run, "stored": not polling, "polling": polling})
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
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response

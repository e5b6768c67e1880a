from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from labapp.ops.probes import fresh_probes, shared_probes


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Nothing else is asked, so a broken
    dependency never gets a healthy web process restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 "ok" (or "degraded": serving, but the tracker is not ticking
    checks) or 503 "unavailable", for anyone (a load balancer); staff also see each
    dependency's state, which names no address. Others share an answer up to
    READYZ_SHARED_SECONDS old, so that asking often does not load the cluster."""
    staff = getattr(request.user, "is_staff", False)  # AnonymousUser's is False too
    required, optional = fresh_probes() if staff else shared_probes(settings.READYZ_SHARED_SECONDS)
    ready = all(probe.ok for probe in required)
    status = "unavailable" if not ready else "ok" if all(p.ok for p in optional) else "degraded"
    body: dict[str, object] = {"status": status}
    if staff:
        body["checks"] = {p.name: {"ok": p.ok, "detail": p.detail} for p in required + optional}
    return JsonResponse(body, status=200 if ready else 503)

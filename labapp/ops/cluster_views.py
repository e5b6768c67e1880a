from django.http import HttpResponse
from django.shortcuts import render

from labapp.clusters.client import ClusterUnreachable, cluster_summary
from labapp.clusters.config import admin_kubeconfig
from labapp.http import HtmxHttpRequest
from labapp.ops.access import staff_required


@staff_required
def overview(request: HtmxHttpRequest) -> HttpResponse:
    kubeconfig = admin_kubeconfig()
    try:
        summary, problem = cluster_summary(kubeconfig), None
    except ClusterUnreachable as exc:
        summary, problem = None, str(exc)
    template = "ops/cluster_overview.html#cluster" if request.htmx else "ops/cluster_overview.html"
    return render(
        request,
        template,
        {"summary": summary, "problem": problem, "kubeconfig": kubeconfig},
        status=200 if summary else 503,
    )

from django.contrib import admin
from django.urls import path

from labapp.clusters import views as cluster_views
from labapp.runner import views as run_views

urlpatterns = [
    path("", cluster_views.overview, name="cluster-overview"),
    path("sandboxes/<slug:slug>/runs/", run_views.run_create, name="run-create"),
    path("runs/<int:run_id>/", run_views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/stream/", run_views.run_stream, name="run-stream"),
    path("admin/", admin.site.urls),
]

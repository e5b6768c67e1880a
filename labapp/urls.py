from django.contrib import admin
from django.urls import path

from labapp.clusters import views as cluster_views

urlpatterns = [
    path("", cluster_views.overview, name="cluster-overview"),
    path("admin/", admin.site.urls),
]

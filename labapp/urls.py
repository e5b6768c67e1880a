from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from labapp.instructor import live_views as teach_live
from labapp.instructor import views as teach
from labapp.learning import views as learning
from labapp.ops import cluster_views
from labapp.ops import health_views as health
from labapp.runs import views as run_views

urlpatterns = [
    path("", learning.home, name="home"),
    path("join/", learning.join, name="join"),
    path("join/<str:code>/", learning.join, name="join-link"),
    path("w/<str:code>/", learning.workshop_page, name="workshop"),
    path("w/<str:code>/events/", learning.workshop_events, name="workshop-events"),
    path("me/labs/", learning.my_labs, name="my-labs"),
    path("labs/<slug:lab_id>/", learning.lab_page, name="lab"),
    path("labs/<slug:lab_id>/begin/", learning.lab_begin, name="lab-begin"),
    path("labs/<slug:lab_id>/refresh/", learning.lab_refresh, name="lab-refresh"),
    path("labs/<slug:lab_id>/events/", learning.lab_events, name="lab-events"),
    path("labs/<slug:lab_id>/sandbox/", learning.sandbox_status, name="lab-sandbox"),
    path("labs/<slug:lab_id>/sandbox/reset/", learning.reset_sandbox, name="lab-reset"),
    path("labs/<slug:lab_id>/steps/<slug:step_id>/hint/", learning.reveal_hint, name="step-hint"),
    path(
        "labs/<slug:lab_id>/steps/<slug:step_id>/solution/",
        learning.reveal_solution,
        name="step-solution",
    ),
    path("labs/<slug:lab_id>/steps/<slug:step_id>/check/", learning.recheck, name="step-check"),
    path("labs/<slug:lab_id>/steps/<slug:step_id>/reset/", learning.reset_step, name="step-reset"),
    path("sandboxes/<slug:slug>/runs/", learning.run_create, name="run-create"),
    path("runs/<int:run_id>/", run_views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/stream/", run_views.run_stream, name="run-stream"),
    path("runs/<int:run_id>/cancel/", run_views.run_cancel, name="run-cancel"),
    path("teach/", teach.workshops, name="teach"),
    path("teach/<str:code>/", teach.dashboard_page, name="teach-dashboard"),
    path(
        "teach/<str:code>/learners/<int:enrolment_id>/", teach.learner_detail, name="teach-learner"
    ),
    path(
        "teach/<str:code>/learners/<int:enrolment_id>/reset/",
        teach.learner_reset,
        name="teach-learner-reset",
    ),
    path("teach/<str:code>/events/", teach_live.dashboard_events, name="teach-events"),
    path("teach/<str:code>/broadcast/", teach.broadcast, name="teach-broadcast"),
    path("teach/<str:code>/edit/", teach.workshop_edit, name="teach-edit"),
    path("teach/<str:code>/close/", teach.workshop_close, name="teach-close"),
    path("teach/<str:code>/delete/", teach.workshop_delete, name="teach-delete"),
    path("teach/<str:code>/join.svg", teach.join_qr, name="teach-join-qr"),
    path("teach/<str:code>/extend/", teach.extend, name="teach-extend"),
    path("teach/<str:code>/export.<str:fmt>", teach.export, name="teach-export"),
    path("certificates/<uuid:certificate_id>/", teach.certificate, name="certificate"),
    path("cluster/", cluster_views.overview, name="cluster-overview"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

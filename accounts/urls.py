"""The team's pages. A person's id in a path is its canonical decimal, as a job's is, so any other
spelling of a number is a 404 before a view runs."""

from django.urls import path, register_converter

from accounts import views
from muxweb.text import IdConverter

register_converter(IdConverter, "person_id")

urlpatterns = [
    path("team/", views.team_page, name="accounts-team"),
    path("team/add", views.team_add, name="accounts-team-add"),
    path("team/budget", views.team_budget, name="accounts-team-budget"),
    path("team/<person_id:pk>/role", views.team_role, name="accounts-team-role"),
    path("team/<person_id:pk>/deactivate", views.team_deactivate, name="accounts-team-deactivate"),
    path("team/<person_id:pk>/reactivate", views.team_reactivate, name="accounts-team-reactivate"),
    path("team/<person_id:pk>/link", views.team_link, name="accounts-team-link"),
    path(
        "team/<person_id:pk>/budget", views.team_person_budget, name="accounts-team-person-budget"
    ),
    path(
        "team/<person_id:pk>/concurrency",
        views.team_person_concurrency,
        name="accounts-team-person-concurrency",
    ),
    path("account/", views.account, name="accounts-account"),
    path(
        "account/set-password/<uidb64>/<token>/",
        views.SetPasswordView.as_view(),
        name="accounts-set-password",
    ),
    path("activity/", views.activity, name="accounts-activity"),
    path("activity/export.csv", views.activity_csv, name="accounts-activity-csv"),
]

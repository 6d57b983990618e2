"""The team's pages."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("account/", views.account, name="accounts-account"),
    path("activity/", views.activity, name="accounts-activity"),
    path("activity/export.csv", views.activity_csv, name="accounts-activity-csv"),
]

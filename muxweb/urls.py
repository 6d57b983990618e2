"""Top-level URLs: the dashboard, accounts, admin and the health check."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from accounts.preferences import switch_language
from muxweb.security import AdminLoginForm, LoginForm
from videos.views import healthz
from videos.webhooks import receive_video_event

# Both login pages bound the username before it reaches the failed-login records.
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", include("videos.urls")),
    path("", include("accounts.urls")),
    path("", include("review.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The language switch works on the login page too.
    path("i18n/setlang/", login_not_required(switch_language), name="set_language"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("webhooks/videos", receive_video_event, name="webhooks-videos"),
]

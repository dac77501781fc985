from django.urls import path

from . import apis, views

api_urlpatterns = [
    path("auth/signup/", apis.SignupApi.as_view(), name="auth-signup"),
    path("auth/token/", apis.TokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="auth-logout"),
]

# HTML pages, served at the site root (project/urls.py).
urlpatterns = [
    path("", views.home, name="home"),
    path("submit/", views.code_submit, name="code-submit"),
    path("logout/", views.logout_view, name="logout"),
]

from django.urls import path

from . import apis, views

api_urlpatterns = [
    path("my_profile/", apis.MyProfileApi.as_view(), name="my-profile"),
    path("all_profiles/", apis.ProfileListApi.as_view(), name="all-profiles"),
    path("all_profiles/<int:pk>/", apis.ProfileDetailApi.as_view(), name="all-profiles-detail"),
]

# HTML pages, served at the site root (project/urls.py).
urlpatterns = [
    path("my_profile/", views.my_profile, name="profile"),
]

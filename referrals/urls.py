from django.urls import path

from . import apis, views

api_urlpatterns = [
    path("my_profile/", apis.MyProfileApi.as_view(), name="my-profile"),
    path("my_profile/stats/", apis.MyStatsApi.as_view(), name="my-profile-stats"),
    path("all_profiles/", apis.ProfileListApi.as_view(), name="all-profiles"),
    path("all_profiles/leaderboard/", apis.LeaderboardApi.as_view(), name="all-profiles-leaderboard"),
    path("all_profiles/<int:pk>/", apis.ProfileDetailApi.as_view(), name="all-profiles-detail"),
    path("referrals/", apis.ReferralListApi.as_view(), name="referrals"),
    path("referrals/<int:pk>/approve/", apis.ReferralApproveApi.as_view(), name="referrals-approve"),
    path("referrals/<int:pk>/reject/", apis.ReferralRejectApi.as_view(), name="referrals-reject"),
]

# HTML pages, served at the site root (project/urls.py).
urlpatterns = [
    path("my_profile/", views.my_profile, name="profile"),
]

from datetime import UTC

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import JWTUserIdAuthentication
from accounts.selectors import user_is_active
from project.serializers import StrictCharField
from project.web import ErrorSerializer, api_input, validation_error_schema

from . import selectors, services
from .models import Referral


class ReferralCodeField(StrictCharField):
    """A referral code as typed: a JSON string only (DRF's CharField would turn 5 into "5")."""

    default_error_messages = {"invalid": gettext_lazy('Enter the referral code as a string, e.g. "abc234".')}


class RefSerializer(serializers.Serializer):
    phone = serializers.CharField()


class ProfileSerializer(serializers.Serializer):
    """The v1 profile shape (documentation only: selectors build the dicts directly)."""

    phone = serializers.CharField(help_text="E.164")
    my_refs = RefSerializer(many=True, help_text="Everyone who entered this user's code, oldest first.")
    my_inviter = serializers.CharField(allow_null=True, help_text="The inviter's phone, or null.")
    my_ref_code = serializers.CharField()
    created_at = serializers.DateTimeField(default_timezone=UTC)


class AdminProfileSerializer(ProfileSerializer):
    id = serializers.IntegerField()
    is_active = serializers.BooleanField()
    is_staff = serializers.BooleanField()


def _public(profile: dict) -> dict:
    return {k: profile[k] for k in ("phone", "my_refs", "my_inviter", "my_ref_code", "created_at")}


class MyProfileApi(APIView):
    """The caller's own profile, as a one-element list (the v1 contract)."""

    authentication_classes = [JWTUserIdAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="MyProfileInput")
    class InputSerializer(serializers.Serializer):
        my_inviter = ReferralCodeField(max_length=64, help_text="The inviter's referral code.")

    @staticmethod
    def _user_id(request) -> int:
        # JWTUserIdAuthentication gives a TokenUser whose id is the token's claim, a string.
        return int(request.user.id)

    def _answer(self, request):
        profile = selectors.profile_get(user_id=self._user_id(request))
        if profile is None:  # deleted or disabled since the token was issued
            raise NotAuthenticated(_("User not found or inactive."))
        return Response([_public(profile)])

    @extend_schema(operation_id="my_profile_get", responses={200: ProfileSerializer(many=True), 401: ErrorSerializer})
    def get(self, request):
        return self._answer(request)

    @extend_schema(
        operation_id="my_profile_set_inviter",
        request=InputSerializer,
        responses={
            200: ProfileSerializer(many=True),
            400: validation_error_schema("InviterError", "my_inviter"),
            401: ErrorSerializer,
        },
    )
    def patch(self, request):
        data = api_input(self.InputSerializer, request)
        user_id = self._user_id(request)
        # Existence only: the whole profile (every referral) is read once, for the answer.
        if not user_is_active(user_id=user_id):
            raise NotAuthenticated(_("User not found or inactive."))
        services.inviter_set(user_id=user_id, code=data["my_inviter"])
        return self._answer(request)


class StaffModelPermission(BasePermission):
    """Staff, with Django's model permission for what the method does, as the admin site asks:
    accounts.view_user to read, change_user to edit, delete_user to delete. Who may be changed
    (a staff or superuser account) is the services' rule (accounts.services.staff_rule_check)."""

    required = {
        "GET": "accounts.view_user",
        "HEAD": "accounts.view_user",
        "OPTIONS": "accounts.view_user",
        "PATCH": "accounts.change_user",
        "DELETE": "accounts.delete_user",
    }

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        perm = self.required.get(request.method)
        if perm is None or user.has_perm(perm):
            return True  # a method the view lacks gets its 405
        self.message = _("You need the %(permission)s permission.") % {"permission": perm}
        return False


class ProfilePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()  # ?page=last is not a number

    def get_page_number(self, request, paginator):
        # Django's paginator takes whatever int() takes ("+2", "1_1", " 2", Arabic-Indic
        # digits) and DRF an empty value as 1: the contract is a plain positive integer.
        page = request.query_params.get(self.page_query_param)
        if page is None:
            return 1
        if not (page.isascii() and page.isdigit() and int(page) >= 1):
            raise NotFound(self.invalid_page_message)
        return page


class ProfileListApi(APIView):
    """Every user's profile, for staff. ?search matches a phone fragment or a referral code."""

    permission_classes = [StaffModelPermission]

    @extend_schema(
        operation_id="all_profiles_list",
        parameters=[
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1},
                description="Page number, from 1 (plain digits; anything else is a 404).",
            ),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1},
                description="Profiles per page (default 20; more than 100 gives 100).",
            ),
            OpenApiParameter("search", str, description="Phone fragment or referral code."),
        ],
        responses={
            200: inline_serializer(
                "PaginatedProfiles",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": AdminProfileSerializer(many=True),
                },
            ),
            400: validation_error_schema("ProfileListError", "page_size"),
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request):
        # DRF's paginator silently ignores a bad page_size; the documented contract says integer >= 1.
        page_size = request.query_params.get("page_size")
        if page_size is not None and not (page_size.isascii() and page_size.isdigit() and int(page_size) >= 1):
            raise serializers.ValidationError({"page_size": [_("Enter a whole number from 1.")]})
        search = request.query_params.get("search")
        rows = selectors.ProfileRows(selectors.profile_list_queryset(search=search))
        paginator = ProfilePagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(selectors.profiles_for_rows(list(page)))


class ProfileDetailApi(APIView):
    """One user's profile, for staff: read, edit (phone, is_active, my_inviter), delete."""

    permission_classes = [StaffModelPermission]

    @extend_schema_serializer(component_name="ProfileUpdateInput")
    class InputSerializer(serializers.Serializer):
        phone = StrictCharField(max_length=64, required=False)
        is_active = serializers.BooleanField(required=False)
        my_inviter = ReferralCodeField(
            max_length=64, required=False, allow_null=True, help_text="A referral code, or null to clear."
        )

    def _answer(self, pk):
        # One read: a user deleted since (a DELETE racing this request) is a 404, never an empty 200.
        profile = selectors.profile_get(user_id=pk, active_only=False)
        if profile is None:
            raise NotFound(_("No such user."))
        return Response(profile)

    @extend_schema(
        operation_id="all_profiles_get",
        responses={200: AdminProfileSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, pk):
        return self._answer(pk)

    @extend_schema(
        operation_id="all_profiles_update",
        request=InputSerializer,
        responses={
            200: AdminProfileSerializer,
            400: validation_error_schema("ProfileUpdateError", "phone", "is_active", "my_inviter"),
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def patch(self, request, pk):
        data = api_input(self.InputSerializer, request)
        services.profile_update(actor=request.user, user_id=pk, **data)
        return self._answer(pk)

    @extend_schema(
        operation_id="all_profiles_delete",
        responses={
            204: OpenApiResponse(description="Deleted"),
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def delete(self, request, pk):
        services.user_delete(actor=request.user, user_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the referral programme: stats, the leaderboard, the review queue ---


class StaffWithPermission(BasePermission):
    """Active staff holding the view's `required_permission` (a Django model permission;
    superusers hold them all)."""

    message = gettext_lazy("You do not have the permission this needs.")

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.has_perm(view.required_permission))


def page_size_checked(request) -> None:
    """DRF's paginator silently ignores a bad page_size; the documented contract says integer >= 1."""
    page_size = request.query_params.get("page_size")
    if page_size is not None and not (page_size.isascii() and page_size.isdigit() and int(page_size) >= 1):
        raise serializers.ValidationError({"page_size": [_("Enter a whole number from 1.")]})


class StatsSerializer(serializers.Serializer):
    direct = serializers.IntegerField(help_text="Referrals this user made.")
    descendants = serializers.IntegerField(help_text="Everyone below this user in the referral tree.")
    depth = serializers.IntegerField(help_text="The longest chain below this user (0: nobody).")


class MyStatsApi(APIView):
    """The caller's referral numbers (every link counts, whatever its review status)."""

    authentication_classes = [JWTUserIdAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="my_profile_stats", responses={200: StatsSerializer, 401: ErrorSerializer})
    def get(self, request):
        user_id = int(request.user.id)  # the token's claim (see MyProfileApi)
        if not user_is_active(user_id=user_id):
            raise NotAuthenticated(_("User not found or inactive."))
        return Response(selectors.user_stats(user_id=user_id))


class LeaderboardEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phone = serializers.CharField()
    direct = serializers.IntegerField(help_text="Approved referrals this user made.")


class LeaderboardApi(APIView):
    """Users ranked by approved direct referrals, for staff who may view users."""

    permission_classes = [StaffWithPermission]
    required_permission = "accounts.view_user"

    @extend_schema(
        operation_id="all_profiles_leaderboard",
        parameters=[
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": 100}, description="How many (default 10)."
            )
        ],
        responses={
            200: LeaderboardEntrySerializer(many=True),
            400: validation_error_schema("LeaderboardError", "limit"),
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
    )
    def get(self, request):
        limit = request.query_params.get("limit", "10")
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 100):
            raise serializers.ValidationError({"limit": [_("Enter a whole number from 1 to 100.")]})
        return Response(selectors.leaderboard(limit=int(limit)))


class ReferralSerializer(serializers.Serializer):
    """A referral as the review queue shows it; its id is the invitee's user id."""

    id = serializers.IntegerField()
    inviter = serializers.CharField(help_text="The inviter's phone.")
    invitee = serializers.CharField(help_text="The invitee's phone.")
    created_at = serializers.DateTimeField(default_timezone=UTC)
    status = serializers.ChoiceField(choices=Referral.Status.choices)
    signals = serializers.ListField(
        child=serializers.ChoiceField(choices=Referral.Signal.choices), help_text="What fired when it was made."
    )
    decided_by = serializers.CharField(allow_null=True, help_text="The deciding staff member's phone; null: automatic.")
    decided_at = serializers.DateTimeField(allow_null=True, default_timezone=UTC, help_text="Null while flagged.")


class ReferralListApi(APIView):
    """The review queue: referrals, oldest first, ?status=flagged for those waiting."""

    permission_classes = [StaffWithPermission]
    required_permission = "referrals.change_referral"

    @extend_schema(
        operation_id="referrals_list",
        parameters=[
            OpenApiParameter(
                "status", str, enum=Referral.Status.values, description="Only referrals with this status."
            ),
            OpenApiParameter("page", int, description="Page number, from 1."),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1},
                description="Referrals per page (default 20; more than 100 gives 100).",
            ),
        ],
        responses={
            200: inline_serializer(
                "PaginatedReferrals",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": ReferralSerializer(many=True),
                },
            ),
            400: validation_error_schema("ReferralListError", "status", "page_size"),
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request):
        page_size_checked(request)
        status_ = request.query_params.get("status")
        if status_ is not None and status_ not in Referral.Status.values:
            choices = ", ".join(Referral.Status.values)
            raise serializers.ValidationError({"status": [_("Use one of: %(choices)s.") % {"choices": choices}]})
        paginator = ProfilePagination()
        page = paginator.paginate_queryset(selectors.referral_list_queryset(status=status_), request, view=self)
        rows = ReferralSerializer(selectors.referrals_as_dicts(page), many=True).data
        return paginator.get_paginated_response(rows)


class ReferralDecisionApi(APIView):
    """Approve or reject one flagged referral (`decision` is set per URL); 409 unless flagged."""

    permission_classes = [StaffWithPermission]
    required_permission = "referrals.change_referral"
    decision = None

    def post(self, request, pk):
        services.referral_decide(referral_id=pk, status=self.decision, staff=request.user)
        return Response(ReferralSerializer(selectors.referral_get(referral_id=pk)).data)


_DECISION_RESPONSES = {
    200: ReferralSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
}


class ReferralApproveApi(ReferralDecisionApi):
    """Approve a flagged referral (it then earns its reward: referral.approved); 409 unless flagged."""

    decision = Referral.Status.APPROVED

    @extend_schema(operation_id="referrals_approve", request=None, responses=_DECISION_RESPONSES)
    def post(self, request, pk):
        return super().post(request, pk)


class ReferralRejectApi(ReferralDecisionApi):
    """Reject a flagged referral (the inviter link stays: referral.rejected); 409 unless flagged."""

    decision = Referral.Status.REJECTED

    @extend_schema(operation_id="referrals_reject", request=None, responses=_DECISION_RESPONSES)
    def post(self, request, pk):
        return super().post(request, pk)

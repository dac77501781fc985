from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from project.exceptions import ApplicationError
from project.serializers import StrictCharField
from project.web import ErrorSerializer, api_input, request_ip, validation_error_schema

from .services import code_request, code_verify, refresh_rotate

RateLimitSerializer = inline_serializer(
    "RateLimited", {"detail": serializers.CharField(), "retry_after": serializers.IntegerField()}
)


class SignupApi(APIView):
    """Send a 4-digit login code to a phone."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="SignupInput")
    class InputSerializer(serializers.Serializer):
        phone = StrictCharField(max_length=64, help_text='Any spelling, e.g. "+7 (999) 123-45-67".')

    @extend_schema_serializer(component_name="SignupOutput")
    class OutputSerializer(serializers.Serializer):
        phone = serializers.CharField(help_text="E.164")
        detail = serializers.CharField()
        confirmation_code = serializers.CharField(required=False, help_text="Only in fake-delivery mode.")

    @extend_schema(
        operation_id="auth_signup",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: validation_error_schema("SignupError", "phone"),
            429: RateLimitSerializer,
            503: OpenApiResponse(RateLimitSerializer, description="The SMS budget is spent until Retry-After."),
        },
    )
    def post(self, request):
        data = api_input(self.InputSerializer, request)
        result = code_request(phone=data["phone"], ip=request_ip(request))
        answer = {"phone": result.phone, "detail": _("A confirmation code has been sent.")}
        if settings.OTP_FAKE_DELIVERY:
            answer["confirmation_code"] = result.code
        return Response(answer)


class TokenApi(APIView):
    """Exchange phone + code for a JWT pair; the first login creates the user."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="TokenInput")
    class InputSerializer(serializers.Serializer):
        phone = StrictCharField(max_length=64)
        confirmation_code = StrictCharField(max_length=16)

    @extend_schema_serializer(component_name="TokenOutput")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Access JWT: send as `Authorization: Bearer <token>`.")
        refresh = StrictCharField()

    @extend_schema(
        operation_id="auth_token",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: validation_error_schema("TokenError", "phone", "confirmation_code"),
            429: RateLimitSerializer,
        },
    )
    def post(self, request):
        data = api_input(self.InputSerializer, request)
        issued = []  # simplejwt's outstanding-token row commits with the code's use
        code_verify(
            phone=data["phone"],
            code=data["confirmation_code"],
            ip=request_ip(request),
            on_login=lambda user: issued.append(RefreshToken.for_user(user)),
        )
        (refresh,) = issued
        return Response({"token": str(refresh.access_token), "refresh": str(refresh)})


class TokenRefreshApi(APIView):
    """A new access token and a new refresh token; the old refresh token is used up (once:
    the same token sent again, or in parallel, is a 401)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="TokenRefreshInput")
    class InputSerializer(serializers.Serializer):
        refresh = StrictCharField()

    @extend_schema(
        operation_id="auth_token_refresh",
        request=InputSerializer,
        responses={
            200: TokenApi.OutputSerializer,
            400: validation_error_schema("RefreshError", "refresh"),
            401: OpenApiResponse(ErrorSerializer, description="The refresh token has already been used."),
        },
    )
    def post(self, request):
        data = api_input(self.InputSerializer, request)
        refresh = refresh_rotate(refresh=data["refresh"])
        return Response({"token": str(refresh.access_token), "refresh": str(refresh)})


class LogoutApi(APIView):
    """Blacklist the refresh token so it can never be used again."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="LogoutInput")
    class InputSerializer(serializers.Serializer):
        refresh = StrictCharField()

    @extend_schema(
        operation_id="auth_logout",
        request=InputSerializer,
        responses={
            205: OpenApiResponse(description="Logged out"),
            400: validation_error_schema("LogoutError", "refresh"),
            401: ErrorSerializer,
        },
    )
    def post(self, request):
        data = api_input(self.InputSerializer, request)
        try:
            token = RefreshToken(data["refresh"])
            if str(token.get("user_id")) != str(request.user.pk):
                raise TokenError("not yours")
            token.blacklist()
        except TokenError as exc:
            raise ApplicationError(_("Token is invalid or expired."), field="refresh") from exc
        return Response(status=status.HTTP_205_RESET_CONTENT)

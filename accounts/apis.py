from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer

from project.exceptions import ApplicationError
from project.serializers import FlatSerializer, StrictCharField

from .services import code_request, code_verify, request_ip
from .tokens import RefreshToken

ErrorSerializer = inline_serializer("Error", {"detail": serializers.CharField()})
RateLimitSerializer = inline_serializer(
    "RateLimited", {"detail": serializers.CharField(), "retry_after": serializers.IntegerField()}
)


def _validation_error(name, *fields):
    """The 400 shape: messages per field, present only for the fields that failed; a body that
    is not a JSON object gives non_field_errors, one that is not JSON at all a detail."""
    messages = {f: serializers.ListField(child=serializers.CharField(), required=False) for f in fields}
    messages["non_field_errors"] = serializers.ListField(child=serializers.CharField(), required=False)
    messages["detail"] = serializers.CharField(required=False)
    return inline_serializer(name, messages)


class SignupApi(APIView):
    """Send a 4-digit login code to a phone."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="SignupInput")
    class InputSerializer(FlatSerializer):
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
            400: _validation_error("SignupError", "phone"),
            429: RateLimitSerializer,
        },
    )
    def post(self, request):
        data = _input(self.InputSerializer, request)
        result = code_request(phone=data["phone"], ip=request_ip(request))
        answer = {"phone": result.phone, "detail": "A confirmation code has been sent."}
        if settings.OTP_FAKE_DELIVERY:
            answer["confirmation_code"] = result.code
        return Response(answer)


class TokenApi(APIView):
    """Exchange phone + code for a JWT pair; the first login creates the user."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="TokenInput")
    class InputSerializer(FlatSerializer):
        phone = StrictCharField(max_length=64)
        confirmation_code = StrictCharField(max_length=16)

    @extend_schema_serializer(component_name="TokenOutput")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Access JWT: send as `Authorization: Bearer <token>`.")
        refresh = StrictCharField()

    @extend_schema(
        operation_id="auth_token",
        request=InputSerializer,
        responses={200: OutputSerializer, 400: _validation_error("TokenError", "phone", "confirmation_code")},
    )
    def post(self, request):
        data = _input(self.InputSerializer, request)
        issued = []  # the refresh token's outstanding row commits with the code's use

        def login_rows(user):
            refresh, row = RefreshToken.for_user_unsaved(user)
            issued[:] = [refresh]  # the one whose row went in, if it was built more than once
            return [row]

        code_verify(phone=data["phone"], code=data["confirmation_code"], login_rows=login_rows)
        (refresh,) = issued
        return Response({"token": str(refresh.access_token), "refresh": str(refresh)})


class TokenRefreshApi(APIView):
    """A new access token and a new refresh token; the old refresh token is blacklisted."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="TokenRefreshInput")
    class InputSerializer(FlatSerializer):
        refresh = StrictCharField()

    @extend_schema(
        operation_id="auth_token_refresh",
        request=InputSerializer,
        responses={200: TokenApi.OutputSerializer, 400: _validation_error("RefreshError", "refresh")},
    )
    def post(self, request):
        data = _input(self.InputSerializer, request)
        serializer = TokenRefreshSerializer(data={"refresh": data["refresh"]})
        try:
            serializer.is_valid(raise_exception=True)
        except (TokenError, serializers.ValidationError) as exc:
            raise ApplicationError("Token is invalid or expired.", field="refresh") from exc
        except Exception as exc:  # simplejwt raises AuthenticationFailed for a deleted user
            raise ApplicationError("Token is invalid or expired.", field="refresh") from exc
        return Response({"token": serializer.validated_data["access"], "refresh": serializer.validated_data["refresh"]})


class LogoutApi(APIView):
    """Blacklist the refresh token so it can never be used again."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="LogoutInput")
    class InputSerializer(FlatSerializer):
        refresh = StrictCharField()

    @extend_schema(
        operation_id="auth_logout",
        request=InputSerializer,
        responses={
            205: OpenApiResponse(description="Logged out"),
            400: _validation_error("LogoutError", "refresh"),
            401: ErrorSerializer,
        },
    )
    def post(self, request):
        data = _input(self.InputSerializer, request)
        try:
            token = RefreshToken(data["refresh"])
            if str(token.get("user_id")) != str(request.user.pk):
                raise TokenError("not yours")
            token.blacklist()
        except TokenError as exc:
            raise ApplicationError("Token is invalid or expired.", field="refresh") from exc
        return Response(status=status.HTTP_205_RESET_CONTENT)


def _input(serializer_class, request):
    """Validate the body; anything that is not a JSON object is a 400 with a message."""
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data

from django import forms
from django.contrib import admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from project.exceptions import ApplicationError

from .guard import guard_allow_value
from .models import CodeRefusal, GuardAllow, GuardBlock, GuardCounter, PasswordTries, PhoneCode
from .phones import phone_display

# The user page (with its inviter and referrals) is referrals.admin's: it edits through the
# referral services, and accounts never imports referrals (the arrows run referrals -> accounts).


@admin.register(PhoneCode)
class PhoneCodeAdmin(admin.ModelAdmin):
    """Read-only: codes are hashes, useful only to see attempts and limits."""

    list_display = ("phone_shown", "created_at", "expires_at", "attempts", "consumed_at", "ip")
    search_fields = ("phone", "ip")
    readonly_fields = [f.name for f in PhoneCode._meta.fields]
    exclude = ("code_hash",)

    @admin.display(description="phone", ordering="phone")
    def phone_shown(self, obj):
        return phone_display(obj.phone)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PasswordTries)
class PasswordTriesAdmin(ReadOnlyAdmin):
    """The admin login's counts (accounts.services.password_try_count), to see who is locked out."""

    list_display = ("scope", "key", "tries", "window_start")
    list_filter = ("scope",)
    search_fields = ("key",)


# --- The fraud guard (accounts.guard) ---


@admin.register(CodeRefusal)
class CodeRefusalAdmin(ReadOnlyAdmin):
    """Every refused code request; the filters show how many of each (facets)."""

    list_display = ("created_at", "reason", "phone", "ip_key", "country", "prefix")
    list_filter = ("reason", "country", "created_at")
    search_fields = ("phone", "ip_key", "prefix")
    date_hierarchy = "created_at"
    show_facets = admin.ShowFacets.ALWAYS


class GuardAllowForm(forms.ModelForm):
    class Meta:
        model = GuardAllow
        fields = ("kind", "value", "note")

    def clean(self):
        data = super().clean()
        if data.get("kind") and "value" in data:
            try:
                data["value"] = guard_allow_value(kind=data["kind"], value=data["value"])
            except ApplicationError as exc:
                self.add_error("value", exc.message)
        return data


@admin.register(GuardAllow)
class GuardAllowAdmin(admin.ModelAdmin):
    """Staff with the model's permissions add phones, prefixes, countries and addresses that skip
    the prefix velocity, the SMS budget and the conversion watch."""

    form = GuardAllowForm
    list_display = ("kind", "value", "note", "created_at")
    list_filter = ("kind",)
    search_fields = ("value", "note")
    show_facets = admin.ShowFacets.ALWAYS


@admin.register(GuardBlock)
class GuardBlockAdmin(ReadOnlyAdmin):
    """The conversion watch's blocks; deleting one lifts it (staff with the delete permission)."""

    list_display = ("scope", "key", "issued", "used", "created_at", "until")
    list_filter = ("scope",)
    search_fields = ("key",)

    def has_delete_permission(self, request, obj=None):
        return admin.ModelAdmin.has_delete_permission(self, request, obj)


@admin.register(GuardCounter)
class GuardCounterAdmin(ReadOnlyAdmin):
    """Codes per prefix and hour, and by SMS per hour and day (the budget)."""

    list_display = ("scope", "key", "start", "count")
    list_filter = ("scope",)
    search_fields = ("key",)
    ordering = ("-start", "-count")


# simplejwt's own admins show the refresh token itself, and anyone who may view them could use it
# until it expires (14 days): ours show its id, jti, user and dates, and search by jti and phone.
for token_model in (OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(token_model):
        admin.site.unregister(token_model)


@admin.register(OutstandingToken)
class OutstandingTokenAdmin(ReadOnlyAdmin):
    list_display = ("id", "jti", "user", "created_at", "expires_at")
    fields = list_display
    readonly_fields = list_display
    search_fields = ("jti", "user__phone")
    list_select_related = ("user",)
    ordering = ("-id",)


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(ReadOnlyAdmin):
    list_display = ("id", "token_jti", "token_user", "blacklisted_at")
    fields = ("id", "token_jti", "token_user", "token_created_at", "token_expires_at", "blacklisted_at")
    readonly_fields = fields
    search_fields = ("token__jti", "token__user__phone")
    list_select_related = ("token__user",)
    ordering = ("-id",)

    @admin.display(description="jti", ordering="token__jti")
    def token_jti(self, obj):
        return obj.token.jti

    @admin.display(description="user", ordering="token__user")
    def token_user(self, obj):
        return obj.token.user

    @admin.display(description="created at")
    def token_created_at(self, obj):
        return obj.token.created_at

    @admin.display(description="expires at")
    def token_expires_at(self, obj):
        return obj.token.expires_at

from django.contrib import admin

from .models import PhoneCode

# The user page (with its inviter and referrals) is referrals.admin's: it edits through the
# referral services, and accounts never imports referrals (the arrows run referrals -> accounts).


@admin.register(PhoneCode)
class PhoneCodeAdmin(admin.ModelAdmin):
    """Read-only: codes are hashes, useful only to see attempts and limits."""

    list_display = ("phone", "created_at", "expires_at", "attempts", "consumed_at", "ip")
    search_fields = ("phone", "ip")
    readonly_fields = [f.name for f in PhoneCode._meta.fields]
    exclude = ("code_hash",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count

from project.exceptions import ApplicationError
from referrals.models import Referral
from referrals.services import inviter_check, inviter_clear, inviter_set, ref_code_clean, referrals_lock

from .models import PhoneCode, User
from .phones import phone_normalize


class PhoneFormMixin:
    def clean_phone(self):
        try:
            phone = phone_normalize(self.cleaned_data.get("phone"))
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        if User.objects.filter(phone=phone).exclude(pk=getattr(self.instance, "pk", None)).exists():
            raise forms.ValidationError("Another user has this phone number.")
        return phone


class UserCreateForm(PhoneFormMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("phone",)


class UserEditForm(PhoneFormMixin, UserChangeForm):
    # The inviter is edited by referral code and saved through inviter_set (same rules as the API).
    inviter_code = forms.CharField(
        label="Inviter's referral code",
        required=False,
        help_text="Empty removes the inviter. The rules of the API apply: not the own code, "
        "an existing code, no cycle.",
    )

    class Meta:
        model = User
        fields = ("phone", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        link = Referral.objects.filter(invitee_id=self.instance.pk).select_related("inviter").first()
        self.fields["inviter_code"].initial = link.inviter.ref_code if link else ""

    def clean_inviter_code(self):
        code = self.cleaned_data.get("inviter_code", "").strip()
        if not code:
            return ""
        try:
            if self.instance.pk:
                inviter_check(user_id=self.instance.pk, code=code, replace=True)
            return ref_code_clean(code)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc


class ReferralInline(admin.TabularInline):
    """The people this user invited (read-only: links are made through inviter_set)."""

    model = Referral
    fk_name = "inviter"
    fields = ("invitee", "created_at")
    readonly_fields = ("invitee", "created_at")
    extra = 0
    can_delete = False
    verbose_name_plural = "referrals (people who entered this user's code)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserEditForm
    add_form = UserCreateForm
    list_display = ("phone", "ref_code", "inviter_phone", "referrals_count", "created_at", "is_staff", "is_active")
    list_filter = ("is_staff", "is_superuser", "is_active", "created_at")
    search_fields = ("phone", "ref_code")
    ordering = ("-id",)
    readonly_fields = ("ref_code", "created_at", "last_login")
    list_select_related = ("referral__inviter",)
    inlines = [ReferralInline]
    fieldsets = (
        (None, {"fields": ("phone", "password", "ref_code", "inviter_code")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("created_at", "last_login")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("phone", "password1", "password2")}),)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # a new user has invited no one

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_refs=Count("referrals_made", distinct=True))

    @admin.display(description="inviter", ordering="referral__inviter__phone")
    def inviter_phone(self, obj):
        link = getattr(obj, "referral", None) if hasattr(obj, "referral") else None
        return link.inviter.phone if link else "-"

    @admin.display(description="referrals", ordering="_refs")
    def referrals_count(self, obj):
        return obj._refs

    def save_model(self, request, obj, form, change):
        inviter_changed = change and "inviter_code" in form.changed_data
        if inviter_changed:
            referrals_lock()  # before the user's row is written: see referrals_lock
        if change:
            super().save_model(request, obj, form, change)
        else:
            User.objects.insert_with_fresh_code(obj)
        if not inviter_changed:
            return
        code = form.cleaned_data.get("inviter_code")
        if code:
            inviter_set(user_id=obj.pk, code=code, replace=True)
        else:
            inviter_clear(user_id=obj.pk)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            # A rule refused the inviter after the form was valid (a race, or a cycle).
            self.message_user(request, exc.message, level=messages.ERROR)
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.path)


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

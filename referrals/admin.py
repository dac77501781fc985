"""The Django admin's user page: the user with their inviter and referrals. A thin door: edits
and deletes go through referrals.services.profile_update and user_delete, the services the admin
API calls too, and who may change whom is their rule (accounts.services.staff_rule_check). And the
review queue of referrals, whose bulk actions call referrals.services.referrals_decide."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponseRedirect

from accounts.models import User
from accounts.phones import phone_display
from accounts.services import phone_check_available, staff_rule_allows
from project.exceptions import ApplicationError

from .models import Referral
from .services import inviter_check, profile_update, ref_code_clean, referrals_decide, user_delete

# The user's own fields the change form edits through profile_update.
EDITED_BY_SERVICE = ("phone", "is_active", "is_staff", "is_superuser")
# What only a superuser may set (staff_rule_check refuses the flags; the groups and permissions
# are saved by the form, so the form shows them read-only to everyone else).
SUPERUSER_ONLY_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


class PhoneFormMixin:
    def clean_phone(self):
        try:
            return phone_check_available(phone=self.cleaned_data.get("phone"), user_id=self.instance.pk)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc


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
    list_display = (
        "phone_shown",
        "ref_code",
        "inviter_phone",
        "referrals_count",
        "approved_referrals",
        "created_at",
        "is_staff",
        "is_active",
    )
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

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or staff_rule_allows(actor=request.user, user=obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or staff_rule_allows(actor=request.user, user=obj))

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            fields += SUPERUSER_ONLY_FIELDS
        return fields

    def delete_model(self, request, obj):
        try:
            user_delete(actor=request.user, user_id=obj.pk)
        except ApplicationError as exc:
            raise PermissionDenied(exc.message) from exc

    def delete_queryset(self, request, queryset):
        # "Delete selected": every user through the service, all or none.
        with transaction.atomic():
            for user in queryset:
                self.delete_model(request, user)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # a new user has invited no one

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                referrals_total=Count("referrals_made", distinct=True),
                # The leaderboard's figure (referrals.selectors.leaderboard); sort by it to rank.
                approved_referrals_total=Count(
                    "referrals_made", filter=Q(referrals_made__status=Referral.Status.APPROVED), distinct=True
                ),
            )
        )

    # Phones as people write them (+7 999 123-45-67); search still takes any spelling's digits.
    @admin.display(description="phone", ordering="phone")
    def phone_shown(self, obj):
        return phone_display(obj.phone)

    @admin.display(description="inviter", ordering="referral__inviter__phone")
    def inviter_phone(self, obj):
        link = getattr(obj, "referral", None) if hasattr(obj, "referral") else None
        return phone_display(link.inviter.phone) if link else "-"

    @admin.display(description="referrals", ordering="referrals_total")
    def referrals_count(self, obj):
        return obj.referrals_total

    @admin.display(description="approved referrals", ordering="approved_referrals_total")
    def approved_referrals(self, obj):
        return obj.approved_referrals_total

    def save_model(self, request, obj, form, change):
        if not change:
            User.objects.insert_with_fresh_code(obj)
            return
        # The staff edit of the admin API, through the same service (the lock, the user's own
        # fields, the inviter's rules); groups and permissions follow in save_related.
        changes = {name: form.cleaned_data[name] for name in EDITED_BY_SERVICE if name in form.changed_data}
        if "inviter_code" in form.changed_data:
            changes["my_inviter"] = form.cleaned_data["inviter_code"] or None
        profile_update(actor=request.user, user_id=obj.pk, **changes)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            # A rule refused the inviter after the form was valid (a race, or a cycle).
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.path)


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    """The review queue: filter by status, approve or reject the flagged ones in bulk. Links
    are read-only here (they are made through inviter_set, on the user's page)."""

    list_display = ("invitee", "inviter", "status", "signals_shown", "created_at", "decided_by", "decided_at")
    list_filter = ("status", "created_at")
    list_select_related = ("invitee", "inviter", "decided_by")
    search_fields = ("invitee__phone", "inviter__phone")
    ordering = ("created_at", "invitee_id")
    readonly_fields = [f.name for f in Referral._meta.fields]
    actions = ["approve_selected", "reject_selected"]

    @admin.display(description="signals")
    def signals_shown(self, obj):
        return ", ".join(obj.signals) or "-"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # removing a link is a change of the user's inviter

    def _decide(self, request, queryset, status):
        ids = list(queryset.values_list("pk", flat=True))
        decided = referrals_decide(referral_ids=ids, status=status, staff=request.user)
        skipped = len(ids) - len(decided)
        self.message_user(
            request, f"{len(decided)} referral(s) {status}; {skipped} skipped (not flagged).", messages.SUCCESS
        )

    @admin.action(description="Approve the selected flagged referrals", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, Referral.Status.APPROVED)

    @admin.action(description="Reject the selected flagged referrals", permissions=["change"])
    def reject_selected(self, request, queryset):
        self._decide(request, queryset, Referral.Status.REJECTED)

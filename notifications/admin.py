from django.contrib import admin, messages

from .models import Message
from .services import messages_requeue


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "recipient", "status", "attempts", "last_error_short", "created_at", "sent_at")
    list_filter = ("status", "channel")
    search_fields = ("recipient",)
    readonly_fields = [f.name for f in Message._meta.fields]
    actions = ["requeue_failed"]

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return obj.last_error[:80]

    @admin.action(description="Re-queue the selected failed messages")
    def requeue_failed(self, request, queryset):
        count = messages_requeue(message_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} failed message(s) re-queued.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False

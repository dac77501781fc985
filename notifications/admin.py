from django.contrib import admin

from .models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "recipient", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status", "channel")
    search_fields = ("recipient",)
    readonly_fields = [f.name for f in Message._meta.fields]

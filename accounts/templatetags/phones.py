"""{{ phone|phone_display }}: a builtin of the templates (settings.TEMPLATES), used by the pages."""

from django import template

from accounts import phones

register = template.Library()


@register.filter
def phone_display(value):
    return phones.phone_display(value)

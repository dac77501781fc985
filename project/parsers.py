"""The API's JSON parser: DRF's, with a body nested too deeply for Python's json a 400."""

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser. json.loads recurses once per level of nesting, so `[[[[...]]]]` a
    few thousand levels deep raises RecursionError (a 500 on every JSON endpoint); it is a
    ParseError, a 400 with a message, like any other body that is not usable JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(_("JSON parse error - the body is nested too deeply.")) from exc

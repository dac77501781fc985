"""The API's JSON renderer: DRF's output, encoded by orjson."""

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

# Types orjson would write in its own way go to DRF's encoder instead (datetimes: "Z" for UTC).
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_default = JSONEncoder().default
# DRF escapes these two so that the JSON is also valid JavaScript.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSONRenderer, the same bytes for the same data, with the encoding done by orjson.

    json.dumps costs most of what each referral adds to my_profile (bench/: encoding a profile
    with 100 referrals took longer than reading it). Values orjson does not write as DRF
    does (datetimes, dates and times, Decimal, lazy strings, querysets, ...) go to DRF's own
    encoder's default(). Pretty-printing (`Accept: application/json; indent=4`), the
    ensure_ascii and non-compact settings, and anything orjson refuses (integers past 64
    bits) take DRF's own path. One difference: a NaN or infinite float is written as null,
    where DRF's strict mode raises; the API has no float fields.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        wants_indent = (accepted_media_type and "indent" in accepted_media_type) or (renderer_context or {}).get(
            "indent"
        )
        if wants_indent or self.ensure_ascii or not self.compact:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            content = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _LINE_SEPARATORS:
            if raw in content:
                content = content.replace(raw, escaped)
        return content

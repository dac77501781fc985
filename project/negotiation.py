"""DRF content negotiation for this API, which renders only JSON (REST_FRAMEWORK settings)."""

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's own negotiation, with its answer to the common request given without the work.

    A view with one renderer, asked by a request that names no format (no suffix, no ?format=)
    and accepts anything (no Accept header, or */*) or exactly that renderer's media type, gets
    that renderer and its media type: what DefaultContentNegotiation answers after parsing the
    header and ranking the candidates (about 3% of a signup's CPU, bench/). Every other request
    goes through DRF's negotiation, 406 included.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) == 1 and not format_suffix:
            (renderer,) = renderers
            accept = request.META.get("HTTP_ACCEPT", "*/*")
            if accept in ("*/*", renderer.media_type) and self.settings.URL_FORMAT_OVERRIDE not in request.query_params:
                return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)

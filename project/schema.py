"""drf-spectacular post-processing: the answers Django itself gives on every API path."""

ERROR = {"$ref": "#/components/schemas/Error"}


def django_refusals(result, generator, request, public):
    """Document Django's own refusals (project.exceptions.bad_request) on every operation: a 400
    for more query fields than DATA_UPLOAD_MAX_NUMBER_FIELDS, and, where a body is taken, a 413
    for one over DATA_UPLOAD_MAX_MEMORY_SIZE. Both are JSON {"detail": ...}. An operation that
    documents its own 400 keeps it (those shapes carry "detail" too)."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "400",
                {
                    "description": "Too many query fields",
                    "content": {"application/json": {"schema": ERROR}},
                },
            )
            if "requestBody" in operation:
                responses.setdefault(
                    "413",
                    {
                        "description": "The body is over the size limit",
                        "content": {"application/json": {"schema": ERROR}},
                    },
                )
            operation["responses"] = dict(sorted(responses.items()))
    return result

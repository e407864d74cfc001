"""``opsdash check --json``: one document per schema ``opsdash.check/v1``, built by
:mod:`opsdash.document` (shared with ``opsdash serve``'s API, which may not import a face)."""

from opsdash.document import SCHEMA, check_document, dumps, error_document, incident_object
from opsdash.result_json import check_object

__all__ = [
    "SCHEMA",
    "check_document",
    "check_object",
    "dumps",
    "error_document",
    "incident_object",
]

"""ApiException -> labkit.core.errors.ApiError: the API server's Status is kept verbatim."""
import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import api_exception

from labkit.core.errors import ApiError
from labkit.kube.client import api_error, label_selector_string, no_kind_match, transport_error

STS_MSG = ("StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than "
           "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
           "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


def exc(status: int, body, headers=None, reason="whatever") -> ApiException:
    e = ApiException(status=status, reason=reason, body=body if isinstance(body, str) or body is None else json.dumps(body))
    e.headers = headers
    return e


def status_body(code: int, reason: str, message: str, details=None) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details or {}, "code": code}


def test_invalid_status_is_kept_verbatim_with_causes():
    details = {"name": "db", "group": "apps", "kind": "StatefulSet",
               "causes": [{"reason": "FieldValueForbidden", "message": "Forbidden: updates ...", "field": "spec"}]}
    err = api_error(exc(422, status_body(422, "Invalid", STS_MSG, details)))
    assert isinstance(err, ApiError)
    assert (err.reason, err.code, err.message) == ("Invalid", 422, STS_MSG)
    assert err.details == details
    assert err.retry_after is None and not err.retryable


def test_ssa_conflict_keeps_reason_and_multiline_message():
    msg = 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    err = api_error(exc(409, status_body(409, "Conflict", msg, {"causes": [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-edit" using apps/v1',
         "field": ".spec.replicas"}]})))
    assert (err.reason, err.code, err.message) == ("Conflict", 409, msg)
    assert err.details["causes"][0]["field"] == ".spec.replicas"


def test_429_retry_after_header_is_preserved():
    body = status_body(429, "TooManyRequests", "the server has received too many requests and has asked us to try again later",
                       {"retryAfterSeconds": 1})
    err = api_error(exc(429, body, headers={"Retry-After": "7", "Content-Type": "application/json"}))
    assert err.reason == "TooManyRequests" and err.code == 429
    assert err.retry_after == 7.0  # the header wins over details.retryAfterSeconds
    assert err.retryable


def test_429_retry_after_from_details_when_no_header():
    body = status_body(429, "TooManyRequests", "slow down", {"retryAfterSeconds": 3})
    assert api_error(exc(429, body)).retry_after == 3.0


def test_header_lookup_is_case_insensitive_for_urllib3_headers():
    headers = urllib3.HTTPHeaderDict({"retry-after": "2"})
    assert api_error(exc(429, status_body(429, "TooManyRequests", "x"), headers=headers)).retry_after == 2.0


def test_non_status_body_keeps_code_and_text():
    err = api_error(exc(404, "404 page not found\n"))
    assert (err.reason, err.code, err.message) == ("NotFound", 404, "404 page not found")


def test_empty_body_uses_http_reason_phrase():
    err = api_error(exc(503, None, reason="Service Unavailable"))
    assert (err.reason, err.code, err.message) == ("ServiceUnavailable", 503, "503 Service Unavailable")
    assert err.retryable


def test_status_without_reason_takes_the_codes_reason():
    err = api_error(exc(409, status_body(409, "", 'Operation cannot be fulfilled on configmaps "a": the object has been modified')))
    assert err.reason == "Conflict" and err.code == 409


def test_dynamic_client_exceptions_translate_the_same_way():
    inner = exc(422, status_body(422, "Invalid", STS_MSG))
    wrapped = api_exception(inner)  # what kubernetes.dynamic raises (UnprocessibleEntityError)
    assert type(wrapped).__name__ == "UnprocessibleEntityError"
    err = api_error(wrapped)
    assert (err.reason, err.code, err.message) == ("Invalid", 422, STS_MSG)


def test_no_kind_match_is_client_gos_wording():
    err = no_kind_match("example.com/v1", "Widget")
    assert (err.reason, err.code) == ("NotFound", 404)
    assert err.message == 'no matches for kind "Widget" in version "example.com/v1"'
    assert err.details == {"group": "example.com", "kind": "Widget"}
    assert no_kind_match("v1", "Nope").details["group"] == ""


def test_transport_error_is_retryable_and_names_the_server():
    err = transport_error(ConnectionRefusedError(111, "Connection refused"), "https://127.0.0.1:1")
    assert (err.reason, err.code) == ("ServiceUnavailable", 503) and err.retryable
    assert "https://127.0.0.1:1" in err.message


@pytest.mark.parametrize("sel,expected", [(None, None), ({}, None), ({"app": "web"}, "app=web"),
                                          ({"tier": "fe", "app": "web"}, "app=web,tier=fe")])
def test_label_selector_string(sel, expected):
    assert label_selector_string(sel) == expected

"""Webhook signing and the Flux-style receiver: accepted, rejected, never leaking the token."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from labkit.core.events import EventLog
from labkit.gitops import ManifestRepo, WebhookReceiver, github_delivery, receiver_path, sign
from labkit.gitops.webhook import MAX_BODY_BYTES

from gitops_support import CLUSTERS

TOKEN = "s3cr3t-webhook-token-4b9f"


def push_payload(after: str = "a" * 40) -> dict:
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": after,
        "repository": {"name": "fleet", "full_name": "labkit/fleet"},
    }


def assert_token_not_logged(log: EventLog, receiver: WebhookReceiver) -> None:
    for record in log:
        assert TOKEN not in repr(record)
    assert TOKEN not in repr(receiver)
    assert TOKEN not in repr(log.to_frame().to_dict())


def test_sign_matches_githubs_documented_test_vector():
    # docs.github.com, "Validating webhook deliveries" -> "Testing the webhook payload validation"
    assert sign(b"Hello, World!", "It's a Secret to Everybody") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_receiver_path_is_sha256_of_token_name_namespace():
    path = receiver_path("token", "github-receiver", "flux-system")
    assert path == "/hook/" + hashlib.sha256(b"tokengithub-receiverflux-system").hexdigest()
    assert path != receiver_path("token", "github-receiver", "apps")
    assert WebhookReceiver("token").path == path


def test_accepts_a_correctly_signed_push():
    log = EventLog()
    rx = WebhookReceiver(TOKEN, log)
    got = []
    rx.subscribe(got.append)
    headers, body = github_delivery(push_payload("b" * 40), TOKEN)
    assert rx.receive(headers, body, time=12.5) is True
    assert len(got) == 1
    d = got[0]
    assert (d.event, d.repository, d.ref, d.after) == ("push", "labkit/fleet", "refs/heads/main", "b" * 40)
    ev = log.first(event="WebhookReceived")
    assert ev.component == "webhook" and ev.revision == "b" * 40 and ev.time == 12.5
    assert ev.object == "Receiver/flux-system/github-receiver"
    assert_token_not_logged(log, rx)


def test_headers_are_case_insensitive_and_sha1_fallback_works():
    rx = WebhookReceiver(TOKEN)
    body = json.dumps(push_payload()).encode()
    headers = {"x-github-event": "push", "x-hub-signature": sign(body, TOKEN, algorithm="sha1")}
    assert rx.receive(headers, body) is True


@pytest.mark.parametrize(
    "case, expected_reason, status",
    [
        ("missing", "the GitHub signature header is invalid, err: missing signature", 400),
        ("wrong-token", "the GitHub signature header is invalid, err: payload signature check failed", 400),
        ("tampered", "the GitHub signature header is invalid, err: payload signature check failed", 400),
        ("garbage", "the GitHub signature header is invalid, err: error decoding signature", 400),
        ("no-prefix", "the GitHub signature header is invalid, err: error parsing signature", 400),
        ("oversized", f"request body exceeds the maximum size of {MAX_BODY_BYTES} bytes", 413),
        ("event", "the GitHub event 'issues' is not authorised", 400),
    ],
)
def test_rejections_are_logged_with_the_reason(case, expected_reason, status):
    log = EventLog()
    rx = WebhookReceiver(TOKEN, log)
    called = []
    rx.subscribe(called.append)
    headers, body = github_delivery(push_payload(), TOKEN)
    if case == "missing":
        headers = {k: v for k, v in headers.items() if not k.startswith("X-Hub-Signature")}
    elif case == "wrong-token":
        headers, body = github_delivery(push_payload(), "not-the-token")
    elif case == "tampered":
        body = body.replace(b"a" * 40, b"c" * 40)
    elif case == "garbage":
        headers["X-Hub-Signature-256"] = "sha256=zz" + TOKEN
    elif case == "no-prefix":
        headers["X-Hub-Signature-256"] = sign(body, TOKEN).split("=", 1)[1]
    elif case == "oversized":
        body = b" " * (MAX_BODY_BYTES + 1)
        headers["X-Hub-Signature-256"] = sign(body, TOKEN)
    elif case == "event":
        headers["X-GitHub-Event"] = "issues"
    assert rx.receive(headers, body, time=3.0) is False
    assert called == []
    ev = log.first(event="WebhookRejected")
    assert ev.detail["reason"] == expected_reason
    assert ev.detail["status"] == status
    assert log.filter(event="WebhookReceived") == []
    assert_token_not_logged(log, rx)


def test_repository_push_reaches_the_receiver(tmp_path: Path):
    log = EventLog()
    repo = ManifestRepo(tmp_path / "r", log=log)
    rx = WebhookReceiver(TOKEN, log)
    repo.on_push(lambda ev: rx.receive(*github_delivery(ev.payload, TOKEN), time=ev.when + 2))
    deliveries = []
    rx.subscribe(deliveries.append)
    sha = repo.seed(CLUSTERS, when=10, exclude=["README.md"])
    assert [d.after for d in deliveries] == [sha]
    assert log.first(event="WebhookReceived").time == 12.0
    repo.close()

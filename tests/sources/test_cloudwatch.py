"""CloudWatch alarms through an Amazon SNS HTTPS subscription: the alarm's states, the
SNS message signature, its certificate URL, the replay window, the topic list and the
subscription confirmation, the last ones through the running server.

Messages are signed with the project's test key (tests/fixtures/sns.py): AWS's keys are
AWS's. Its certificate is cached for a SigningCertURL of the real SNS shape, so the real
verification path runs and nothing is fetched."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from cryptography import x509
from structlog.testing import capture_logs

from ingest import sns
from ingest.delivery import Delivery, MappingError
from ingest.signals import Link, Signal
from ingest.sources import cloudwatch
from tests.fixtures import load_fixture
from tests.fixtures.sns import CERTIFICATE_DIR, TEST_CERT_URL, TEST_TOPIC, sign, sns_time
from tests.helpers import TOKENS, settings_for_tests

SUBJECT = "123456789012/us-west-2/checkout-api-5xx"


def parse(name: str) -> list[Signal]:
    return cloudwatch.parse(load_fixture("cloudwatch", name).delivery())


def message(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(load_fixture("cloudwatch", name).body)
    return body


def signing_cert() -> x509.Certificate:
    path = CERTIFICATE_DIR / sns.certificate_file_name(TEST_CERT_URL)
    return x509.load_pem_x509_certificate(path.read_bytes())


# --- the adapter ------------------------------------------------------------------------

def test_an_alarm_is_a_failing_alert_from_its_state_change_time() -> None:
    """TIMELINE.md: occurred_at is the tool's time of the change (StateChangeTime);
    notified_at its send time (the SNS Timestamp); the subject is account/region/alarm."""
    [signal] = parse("alarm")
    assert (signal.source, signal.kind, signal.state) == ("cloudwatch", "alert", "failing")
    assert signal.subject == SUBJECT
    assert signal.service is None
    assert signal.severity is None  # CloudWatch sends none: the source's default applies
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 4, 52, 614000, tzinfo=UTC)
    assert signal.notified_at == datetime(2025, 3, 14, 10, 4, 52, 677000, tzinfo=UTC)
    assert signal.action == "triggered"
    assert signal.summary.startswith("CloudWatch alarm checkout-api-5xx is ALARM: Threshold")
    assert signal.labels == (("LoadBalancer", "app/checkout-alb/50dc6c495c0c9188"),)
    facts = signal.attribute_map
    assert (facts["period_seconds"], facts["evaluation_periods"],
            facts["datapoints_to_alarm"]) == ("60", "3", "2")
    assert (facts["old_state"], facts["new_state"], facts["region"]) == (
        "OK", "ALARM", "US West (Oregon)")
    assert facts["message_id"] == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert signal.links == (Link(
        "https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2"
        "#alarmsV2:alarm/checkout-api-5xx", "CloudWatch alarm"),)


def test_ok_recovers_the_same_alarm_at_its_state_change_time() -> None:
    [signal] = parse("ok")
    assert (signal.subject, signal.state, signal.action) == (SUBJECT, "ok", "resolved")
    assert signal.occurred_at == datetime(2025, 3, 14, 10, 35, 10, 950000, tzinfo=UTC)


def test_insufficient_data_is_a_warning_never_a_recovery() -> None:
    """TIMELINE.md rule 3: only ``ok`` recovers; a warning leaves a failing subject
    failing. An alarm that cannot evaluate has not recovered."""
    [signal] = parse("insufficient_data")
    assert (signal.subject, signal.state, signal.action) == (SUBJECT, "warning", None)


@pytest.mark.parametrize("name", ["subscription_confirmation", "unsubscribe_confirmation"])
def test_sns_confirmations_map_to_no_signal(name: str) -> None:
    assert parse(name) == []


def test_a_notification_that_is_not_an_alarm_names_the_problem() -> None:
    with pytest.raises(MappingError, match=r"^Message: not a CloudWatch alarm \(not JSON\)$"):
        parse("invalid_not_an_alarm")


def with_alarm(**change: Any) -> list[Signal]:
    body = message("alarm")
    alarm = orjson.loads(body["Message"]) | change
    body["Message"] = orjson.dumps({k: v for k, v in alarm.items() if v is not None}).decode()
    return cloudwatch.parse(Delivery(source="cloudwatch", body=orjson.dumps(body),
                                     received_at=datetime(2025, 3, 14, 10, 5, tzinfo=UTC)))


def test_an_unknown_state_names_the_field() -> None:
    with pytest.raises(MappingError, match=r"^Message\.NewStateValue: unknown state 'FIRING'$"):
        with_alarm(NewStateValue="FIRING")


def test_without_an_alarm_arn_the_region_is_the_one_sent() -> None:
    [signal] = with_alarm(AlarmArn=None)
    assert signal.subject == "123456789012/US West (Oregon)/checkout-api-5xx"
    assert signal.links == ()


# --- the signature ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["alarm", "ok", "subscription_confirmation",
                                  "unsubscribe_confirmation", "invalid_not_an_alarm"])
def test_every_fixture_verifies_against_its_signing_certificate(name: str) -> None:
    """SNS Developer Guide, "Verifying the signatures of Amazon SNS messages": versions
    1 (SHA1withRSA) and 2 (SHA256withRSA) over the documented string to sign."""
    assert sns.verify_signature(message(name), signing_cert()) is None


def test_the_string_to_sign_is_each_signed_key_and_value_on_its_own_line() -> None:
    """Notification without a Subject: Message, MessageId, Timestamp, TopicArn, Type."""
    signed = sns.string_to_sign({"Type": "Notification", "MessageId": "m-1", "Message": "hi",
                                 "Timestamp": "2012-05-02T00:54:06.655Z", "TopicArn": "t",
                                 "UnsubscribeURL": "not signed"})
    assert signed == (b"Message\nhi\nMessageId\nm-1\nTimestamp\n2012-05-02T00:54:06.655Z\n"
                      b"TopicArn\nt\nType\nNotification\n")


def test_a_changed_message_no_longer_verifies() -> None:
    for key, value in (("Message", '{"AlarmName":"x"}'), ("Subject", "OK: x"),
                       ("Type", "SubscriptionConfirmation")):
        assert sns.verify_signature(message("alarm") | {key: value}, signing_cert()) is not None


@pytest.mark.parametrize("url", [
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
])
def test_sns_certificate_urls_are_accepted(url: str) -> None:
    assert sns.sns_url_problem(url, certificate=True) is None


@pytest.mark.parametrize("url", [
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
    "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
    "https://s3.us-east-1.amazonaws.com/bucket/cert.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt",
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
    "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    None,
])
def test_other_certificate_urls_are_refused(url: str | None) -> None:
    assert sns.sns_url_problem(url, certificate=True) is not None


# --- through the server -----------------------------------------------------------------

def headers_for(body: dict[str, Any]) -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-id": body["MessageId"],
            "x-amz-sns-message-type": body["Type"], "x-amz-sns-topic-arn": body["TopicArn"],
            "Authorization": f"Bearer {TOKENS['cloudwatch']}"}


def published(name: str, at: datetime | None = None, **change: Any) -> dict[str, Any]:
    """A fixture's message published at ``at`` (default now), signed with the test key."""
    body = message(name)
    body.pop("Signature")
    version = body.pop("SignatureVersion")
    cert_url = change.pop("cert_url", TEST_CERT_URL)
    body["Timestamp"] = sns_time(at or datetime.now(UTC))
    return sign(body | change, version=version, cert_url=cert_url)


async def post(client: Any, body: dict[str, Any], **extra: str) -> Any:
    data = orjson.dumps(body)
    return await client.post("/v1/webhooks/cloudwatch", data=data,
                             headers=headers_for(body) | extra)


async def stored(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT type, body FROM events ORDER BY position")
        return rows
    finally:
        await conn.close()


class Calls:
    """Stands in for ``ingest.sns.http_get``: records every URL asked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answer: bytes | Exception) -> None:
        self.urls: list[str] = []
        self.answer = answer
        monkeypatch.setattr(sns, "http_get", self)

    async def __call__(self, url: str, seconds: float) -> bytes:
        self.urls.append(url)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_a_signed_alarm_is_stored_and_a_retry_with_its_message_id_is_a_copy(
    client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNS Developer Guide, HTTP/HTTPS headers: a retry keeps the original MessageId,
    which is the delivery id (ARCHITECTURE.md "Idempotent appends")."""
    calls = Calls(monkeypatch, OSError("no network"))
    body = published("alarm")
    first = await post(client, body)
    assert first.status == 202, await first.text()
    [signal] = (await first.json())["signals"]
    assert (signal["subject"], signal["state"]) == (SUBJECT, "failing")
    again = await post(client, body)
    assert again.status == 200
    assert (await again.json())["duplicate"] is True
    assert [r["type"] for r in await stored(database_url)] == ["delivery.received",
                                                               "delivery.copy"]
    assert calls.urls == []  # the certificate came from the cache


@pytest.mark.parametrize("forgery", ["message", "signature", "version"])
async def test_a_forged_message_is_refused_and_not_stored(
    client: Any, database_url: str, forgery: str
) -> None:
    body = published("alarm")
    if forgery == "message":
        body["Message"] = body["Message"].replace('"ALARM"', '"OK"')
    elif forgery == "signature":
        body["Signature"] = published("ok")["Signature"]
    else:
        body["SignatureVersion"] = "1" if body["SignatureVersion"] == "2" else "2"
    response = await post(client, body)
    assert response.status == 401
    assert await stored(database_url) == []


async def test_a_certificate_url_off_the_sns_hosts_is_refused_and_never_fetched(
    client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS: "Don't trust any certificates provided in the message without validation";
    the URL is checked before any request."""
    calls = Calls(monkeypatch, b"")
    for url in ("https://attacker.example/SimpleNotificationService-x.pem",
                "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-x.pem"):
        response = await post(client, published("alarm", cert_url=url))
        assert response.status == 401
    assert calls.urls == []
    assert await stored(database_url) == []


async def test_a_message_published_over_an_hour_before_receipt_is_a_replay(
    client: Any, database_url: str
) -> None:
    """SNS retries a delivery for at most an hour with its original Timestamp."""
    now = datetime.now(UTC)
    late = await post(client, published("alarm", at=now - timedelta(minutes=61)))
    assert late.status == 401
    assert await stored(database_url) == []
    retried = await post(client, published("alarm", at=now - timedelta(minutes=50)))
    assert retried.status == 202


async def test_a_topic_not_in_topic_arns_is_refused(client: Any, database_url: str) -> None:
    """AWS: "Reject any message with an unexpected TopicArn to prevent spoofing"."""
    other = "arn:aws:sns:us-west-2:999999999999:SomeoneElsesTopic"
    response = await post(client, published("alarm", TopicArn=other))
    assert response.status == 401
    assert await stored(database_url) == []


async def test_without_a_token_or_topic_list_nothing_is_accepted(
    make_client: Any, database_url: str
) -> None:
    """Any AWS account can sign an SNS message and subscribe this URL: a bare signature is
    not enough."""
    sources = {name: conf.model_dump() for name, conf in settings_for_tests().sources.items()}
    sources["cloudwatch"] |= {"token": None, "topic_arns": []}
    client = await make_client(sources=sources)
    response = await post(client, published("alarm"))
    assert response.status == 401
    assert await stored(database_url) == []


async def test_a_new_certificate_is_fetched_once_and_cached_on_disk(
    make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Certificates are cached in memory and in the data directory: after one fetch, a
    restart (a new server on the same directory) needs none."""
    pem = (CERTIFICATE_DIR / sns.certificate_file_name(TEST_CERT_URL)).read_bytes()
    url = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-rotated.pem"
    calls = Calls(monkeypatch, pem)
    sources = {name: conf.model_dump() for name, conf in settings_for_tests().sources.items()}
    sources["cloudwatch"]["certificate_dir"] = str(tmp_path)
    client = await make_client(sources=sources)
    assert (await post(client, published("alarm", cert_url=url))).status == 202
    assert (await post(client, published("ok", cert_url=url))).status == 202
    assert calls.urls == [url]
    assert (tmp_path / sns.certificate_file_name(url)).read_bytes() == pem
    restarted = await make_client(sources=sources)
    assert (await post(restarted, published("insufficient_data", cert_url=url))).status == 202
    assert calls.urls == [url]


async def test_a_certificate_that_cannot_be_fetched_is_answered_503_so_sns_retries(
    make_client: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Calls(monkeypatch, OSError("no route to host"))
    sources = {name: conf.model_dump() for name, conf in settings_for_tests().sources.items()}
    sources["cloudwatch"]["certificate_dir"] = str(tmp_path)
    client = await make_client(sources=sources)
    url = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-unreachable.pem"
    response = await post(client, published("alarm", cert_url=url))
    assert response.status == 503
    assert await stored(database_url) == []


async def until(condition: Any, bound: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_subscription_confirmation_is_stored_answered_and_then_confirmed(
    client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNS Developer Guide: SNS sends nothing until the endpoint visits SubscribeURL.
    The message is stored like any authentic delivery, answered 202 with no signal, and
    the URL is visited after the answer."""
    calls = Calls(monkeypatch, b"<ConfirmSubscriptionResponse/>")
    body = published("subscription_confirmation")
    response = await post(client, body)
    assert response.status == 202
    assert (await response.json())["signals"] == []
    await until(lambda: calls.urls == [body["SubscribeURL"]])
    assert [r["type"] for r in await stored(database_url)] == ["delivery.received"]


async def test_a_confirmation_that_fails_is_logged_with_the_url_to_visit_by_hand(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch, OSError("no network"))
    body = published("subscription_confirmation")
    with capture_logs() as logs:
        response = await post(client, body)
        assert response.status == 202
        await until(lambda: any(e["event"] == "sns_subscription_confirmation_failed"
                                for e in logs))
    [failed] = [e for e in logs if e["event"] == "sns_subscription_confirmation_failed"]
    assert failed["subscribe_url"] == body["SubscribeURL"]
    assert failed["topic_arn"] == TEST_TOPIC
    assert calls.urls == [body["SubscribeURL"]]


async def test_a_subscribe_url_off_the_sns_hosts_is_never_visited(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch, b"")
    body = published("subscription_confirmation",
                     SubscribeURL="https://attacker.example/?Action=ConfirmSubscription")
    with capture_logs() as logs:
        response = await post(client, body)
        assert response.status == 202
        await asyncio.sleep(0.05)
    assert calls.urls == []
    assert [e["event"] for e in logs].count("sns_subscription_confirmation_failed") == 1

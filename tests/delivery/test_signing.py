"""Standard Webhooks signing, checked against the reference `standardwebhooks` package."""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.datastructures import Headers

from app.delivery import signing
from app.delivery.signing import InvalidSignature

BODY = b'{"type":"ticket.created","data":{"id":42,"team":"crm-nord"}}'
MESSAGE_ID = "evt_0b6f2c1e9a7d4e35b1c2d3e4f5a6b7c8"
NOW = 1_767_225_600


def _secret(fill: int) -> str:
    return "whsec_" + base64.b64encode(bytes([fill]) * 32).decode()


OLD_SECRET = _secret(1)
NEW_SECRET = _secret(2)
OTHER_SECRET = _secret(3)


def _signed(*, secrets: list[str], timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return signing.headers(secrets=secrets, message_id=MESSAGE_ID, timestamp=timestamp, body=body)


def _reason(*, secrets: list[str], headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(InvalidSignature) as refused:
        signing.verify(secrets=secrets, headers=headers, body=body, now=NOW)
    return refused.value.reason


def test_new_secret_is_prefixed_base64_of_32_random_bytes() -> None:
    secret = signing.new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert len(signing.parse_secret(secret)) == 32
    assert signing.new_secret() != secret


def test_sign_matches_a_known_answer() -> None:
    # The vector published with the reference implementation's own tests.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    message_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    timestamp = 1614265330
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signed_content = b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}'
    by_hand = (
        "v1," + base64.b64encode(hmac.new(key, signed_content, hashlib.sha256).digest()).decode()
    )

    assert by_hand == expected
    assert (
        signing.sign(secret=secret, message_id=message_id, timestamp=timestamp, body=body)
        == expected
    )


def test_headers_carry_id_timestamp_and_one_signature_per_secret() -> None:
    sent = _signed(secrets=[OLD_SECRET, NEW_SECRET])

    assert set(sent) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert sent["webhook-id"] == MESSAGE_ID
    assert sent["webhook-timestamp"] == str(NOW)
    old, new = sent["webhook-signature"].split(" ")
    assert old == signing.sign(secret=OLD_SECRET, message_id=MESSAGE_ID, timestamp=NOW, body=BODY)
    assert new == signing.sign(secret=NEW_SECRET, message_id=MESSAGE_ID, timestamp=NOW, body=BODY)
    assert old != new


def test_our_signature_verifies_with_the_reference_package() -> None:
    sent = _signed(secrets=[NEW_SECRET], timestamp=int(time.time()))

    assert Webhook(NEW_SECRET).verify(BODY, sent) == {
        "type": "ticket.created",
        "data": {"id": 42, "team": "crm-nord"},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(BODY, sent)


@pytest.mark.parametrize("receiver_secret", [OLD_SECRET, NEW_SECRET])
def test_during_rotation_either_secret_verifies_with_the_reference_package(
    receiver_secret: str,
) -> None:
    sent = _signed(secrets=[OLD_SECRET, NEW_SECRET], timestamp=int(time.time()))

    Webhook(receiver_secret).verify(BODY, sent, json_parse=False)


def test_reference_signature_verifies_with_ours() -> None:
    now = int(time.time())
    reference = Webhook(NEW_SECRET).sign(
        msg_id=MESSAGE_ID, timestamp=datetime.fromtimestamp(now, tz=UTC), data=BODY.decode()
    )
    received = {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": str(now),
        "webhook-signature": reference,
    }

    assert signing.verify(secrets=[NEW_SECRET], headers=received, body=BODY, now=now) == MESSAGE_ID
    assert (
        signing.verify(secrets=[OLD_SECRET, NEW_SECRET], headers=received, body=BODY, now=now)
        == MESSAGE_ID
    )
    with pytest.raises(InvalidSignature):
        signing.verify(secrets=[OLD_SECRET], headers=received, body=BODY, now=now)


@pytest.mark.parametrize("receiver_secret", [OLD_SECRET, NEW_SECRET])
def test_during_rotation_either_secret_verifies_with_ours(receiver_secret: str) -> None:
    sent = _signed(secrets=[OLD_SECRET, NEW_SECRET])

    assert signing.verify(secrets=[receiver_secret], headers=sent, body=BODY, now=NOW) == MESSAGE_ID


def test_header_names_are_case_insensitive() -> None:
    sent = _signed(secrets=[NEW_SECRET])
    shouted = {name.title(): value for name, value in sent.items()}
    upper = {name.upper(): value for name, value in sent.items()}

    assert "Webhook-Signature" in shouted
    assert signing.verify(secrets=[NEW_SECRET], headers=shouted, body=BODY, now=NOW) == MESSAGE_ID
    assert signing.verify(secrets=[NEW_SECRET], headers=upper, body=BODY, now=NOW) == MESSAGE_ID


def test_starlette_request_headers_verify() -> None:
    raw = [
        (name.title().encode(), value.encode())
        for name, value in _signed(secrets=[NEW_SECRET]).items()
    ]

    assert (
        signing.verify(secrets=[NEW_SECRET], headers=Headers(raw=raw), body=BODY, now=NOW)
        == MESSAGE_ID
    )


def test_one_valid_v1_among_other_versions_and_garbage_verifies() -> None:
    sent = _signed(secrets=[NEW_SECRET])
    valid = sent["webhook-signature"]
    sent["webhook-signature"] = f"v1a,AAAA v2,{valid[3:]} v1,not-base64! v1,{'A' * 43}= {valid}"

    assert signing.verify(secrets=[NEW_SECRET], headers=sent, body=BODY, now=NOW) == MESSAGE_ID


def test_a_valid_signature_under_another_version_is_refused() -> None:
    sent = _signed(secrets=[NEW_SECRET])
    sent["webhook-signature"] = "v2," + sent["webhook-signature"].removeprefix("v1,")

    assert _reason(secrets=[NEW_SECRET], headers=sent) == "no v1 signature matches a known secret"


def test_tampered_body_is_refused() -> None:
    sent = _signed(secrets=[NEW_SECRET])
    tampered = BODY.replace(b"crm-nord", b"crm-sud")

    assert (
        _reason(secrets=[NEW_SECRET], headers=sent, body=tampered)
        == "no v1 signature matches a known secret"
    )


def test_tampered_message_id_is_refused() -> None:
    sent = _signed(secrets=[NEW_SECRET])
    sent["webhook-id"] = "evt_replayed"

    assert _reason(secrets=[NEW_SECRET], headers=sent) == "no v1 signature matches a known secret"


def test_wrong_secret_is_refused() -> None:
    sent = _signed(secrets=[NEW_SECRET])

    assert (
        _reason(secrets=[OTHER_SECRET, OLD_SECRET], headers=sent)
        == "no v1 signature matches a known secret"
    )


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (NOW - 301, "webhook-timestamp is more than 300 seconds old"),
        (NOW - 3600, "webhook-timestamp is more than 300 seconds old"),
        (NOW + 301, "webhook-timestamp is more than 300 seconds ahead"),
    ],
)
def test_timestamp_outside_tolerance_is_refused(timestamp: int, reason: str) -> None:
    sent = _signed(secrets=[NEW_SECRET], timestamp=timestamp)

    assert _reason(secrets=[NEW_SECRET], headers=sent) == reason


@pytest.mark.parametrize("timestamp", [NOW - 300, NOW + 300])
def test_timestamp_at_the_edge_of_tolerance_is_accepted(timestamp: int) -> None:
    sent = _signed(secrets=[NEW_SECRET], timestamp=timestamp)

    assert signing.verify(secrets=[NEW_SECRET], headers=sent, body=BODY, now=NOW) == MESSAGE_ID


def test_tolerance_is_configurable() -> None:
    sent = _signed(secrets=[NEW_SECRET], timestamp=NOW - 61)

    with pytest.raises(InvalidSignature, match="more than 60 seconds old"):
        signing.verify(secrets=[NEW_SECRET], headers=sent, body=BODY, now=NOW, tolerance=60)


@pytest.mark.parametrize(
    "value", ["", "  ", "12.5", "1e9", "abc", "+1767225600", "-5", "1_767_225_600", "١٧٦٧٢٢٥٦٠٠"]
)
def test_non_integer_timestamp_is_refused(value: str) -> None:
    sent = _signed(secrets=[NEW_SECRET])
    sent["webhook-timestamp"] = value

    reason = _reason(secrets=[NEW_SECRET], headers=sent)

    assert reason in {
        "webhook-timestamp is not an integer number of seconds",
        "missing header webhook-timestamp",
    }


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused(name: str) -> None:
    sent = _signed(secrets=[NEW_SECRET])
    del sent[name]

    assert _reason(secrets=[NEW_SECRET], headers=sent) == f"missing header {name}"


def test_empty_header_counts_as_missing() -> None:
    sent = _signed(secrets=[NEW_SECRET])
    sent["webhook-signature"] = " "

    assert _reason(secrets=[NEW_SECRET], headers=sent) == "missing header webhook-signature"


def test_conflicting_duplicate_header_names_are_refused() -> None:
    sent = _signed(secrets=[NEW_SECRET])
    sent["Webhook-Id"] = "evt_other"

    assert _reason(secrets=[NEW_SECRET], headers=sent) == "conflicting values for header webhook-id"


def test_message_id_with_a_full_stop_is_refused() -> None:
    with pytest.raises(ValueError, match=r"contain no '\.'"):
        signing.sign(secret=NEW_SECRET, message_id="evt.1", timestamp=NOW, body=BODY)

    sent = _signed(secrets=[NEW_SECRET])
    sent["webhook-id"] = "evt.1"
    assert _reason(secrets=[NEW_SECRET], headers=sent) == "webhook-id must not contain '.'"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("", "must start with 'whsec_'"),
        (base64.b64encode(bytes(32)).decode(), "must start with 'whsec_'"),
        ("whsec_", "must decode to 24 to 64 bytes, not 0"),
        ("whsec_not base64!", "is not valid base64"),
        ("whsec_" + "A" * 43 + "=$", "is not valid base64"),
        ("whsec_AAAAA", "is not valid base64"),
        ("whsec_" + base64.b64encode(bytes(16)).decode(), "must decode to 24 to 64 bytes, not 16"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "must decode to 24 to 64 bytes, not 65"),
    ],
)
def test_malformed_secret_is_refused(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signing.parse_secret(secret)
    with pytest.raises(ValueError, match=message):
        signing.sign(secret=secret, message_id=MESSAGE_ID, timestamp=NOW, body=BODY)
    with pytest.raises(ValueError, match=message):
        signing.verify(
            secrets=[NEW_SECRET, secret], headers=_signed(secrets=[NEW_SECRET]), body=BODY, now=NOW
        )


def test_unpadded_secret_is_accepted() -> None:
    unpadded = NEW_SECRET.rstrip("=")

    assert unpadded != NEW_SECRET
    assert signing.parse_secret(unpadded) == signing.parse_secret(NEW_SECRET)


def test_no_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="at least one signing secret"):
        signing.signature_header(secrets=[], message_id=MESSAGE_ID, timestamp=NOW, body=BODY)
    with pytest.raises(ValueError, match="at least one signing secret"):
        signing.verify(secrets=[], headers=_signed(secrets=[NEW_SECRET]), body=BODY, now=NOW)


def test_invalid_signature_maps_to_401() -> None:
    error = InvalidSignature("missing header webhook-id")

    assert error.status_code == 401
    assert error.code == "invalid_signature"
    assert error.message == "missing header webhook-id"

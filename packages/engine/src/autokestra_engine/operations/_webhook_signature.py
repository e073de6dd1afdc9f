"""How a webhook request proves who sent it and when: an HMAC-SHA256 over id, time and body.

A sender that knows the workflow's secret signs ``<delivery id>.<timestamp>.<raw body>``
(the order of the Standard Webhooks spec) and sends three headers, like GitHub's
``X-Hub-Signature-256`` plus the two fields that make a replay detectable:

- ``X-Autokestra-Delivery``: its id for this delivery (1-128 of ``A-Z a-z 0-9 . _ : -``),
  the same on each retry of one event, different for each event;
- ``X-Autokestra-Timestamp``: when it signed, in Unix seconds;
- ``X-Autokestra-Signature-256``: ``sha256=<hex HMAC-SHA256 of the signed content>``.

Signing the id and the time with the body is what makes both checks sound: an attacker who
captured a request cannot give it a new id or a fresh time without the secret. The digest
is compared in constant time.

    headers = signed_headers(b"s3cret", b'{"ref": "main"}', delivery_id="d-1", timestamp_s=t)
    signed = parse_signed(headers)                   # SignedRequest, or raises Unsigned
    signed.verify(b"s3cret", b'{"ref": "main"}')     # False when the digest differs
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from autokestra_obs_schema import AutokestraError

#: The sender's id of one delivery (header names are matched case-insensitively).
DELIVERY_HEADER = "X-Autokestra-Delivery"
#: When the sender signed the request, in Unix seconds.
TIMESTAMP_HEADER = "X-Autokestra-Timestamp"
#: ``sha256=<hex digest>`` of ``<delivery>.<timestamp>.<body>`` keyed with the secret.
SIGNATURE_HEADER = "X-Autokestra-Signature-256"
_SIGNATURE_PREFIX = "sha256="

_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


class Unsigned(AutokestraError):
    """A request without the signature headers, or with one that is not well-formed."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The signature headers of one request, well-formed (not yet verified).

    Attributes:
        delivery_id: the sender's id of this delivery.
        timestamp_s: when it was signed (Unix seconds).
        signature: the hex digest sent (lower case).
    """

    delivery_id: str
    timestamp_s: int
    signature: str

    def verify(self, secret: bytes, body: bytes) -> bool:
        """Whether ``signature`` is the HMAC of this request under ``secret`` (constant time)."""
        expected = signature_of(secret, body, self.delivery_id, self.timestamp_s)
        return hmac.compare_digest(expected, self.signature)

    def within(self, now_ms: int, tolerance_ms: int) -> bool:
        """Whether the signed time is at most ``tolerance_ms`` away from ``now_ms``."""
        return abs(now_ms - self.timestamp_s * 1000) <= tolerance_ms


def signature_of(secret: bytes, body: bytes, delivery_id: str, timestamp_s: int) -> str:
    """The hex HMAC-SHA256 of ``<delivery id>.<timestamp>.<body>`` under ``secret``."""
    content = f"{delivery_id}.{timestamp_s}.".encode() + body
    return hmac.new(secret, content, hashlib.sha256).hexdigest()


def signed_headers(
    secret: bytes, body: bytes, *, delivery_id: str, timestamp_s: int
) -> dict[str, str]:
    """The three headers a sender adds to a request carrying ``body`` (tests, docs, tools)."""
    digest = signature_of(secret, body, delivery_id, timestamp_s)
    return {
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp_s),
        SIGNATURE_HEADER: _SIGNATURE_PREFIX + digest,
    }


def parse_signed(headers: Mapping[str, str]) -> SignedRequest:
    """Read the signature headers (names in any case).

    Raises:
        Unsigned: a header is missing or malformed; the message names it.
    """
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    values: dict[str, str] = {}
    for name in (DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        value = lowered.get(name.lower())
        if not value:
            raise Unsigned(f"missing {name} header")
        values[name] = value
    delivery_id = values[DELIVERY_HEADER]
    if not _DELIVERY_ID.match(delivery_id):
        raise Unsigned(f"{DELIVERY_HEADER} must be 1-128 of A-Z a-z 0-9 . _ : -")
    timestamp = values[TIMESTAMP_HEADER]
    if not _TIMESTAMP.match(timestamp):
        raise Unsigned(f"{TIMESTAMP_HEADER} must be Unix seconds")
    signature = values[SIGNATURE_HEADER]
    digest = signature[len(_SIGNATURE_PREFIX) :]
    if not signature.startswith(_SIGNATURE_PREFIX) or not _HEX_DIGEST.match(digest):
        raise Unsigned(f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>")
    return SignedRequest(delivery_id, int(timestamp), digest.lower())

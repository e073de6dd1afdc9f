"""Fuzzing the redactor (Hypothesis, fixed budget, derandomized), and its §6.13 additions:
hexadecimal forms of secrets and credential shapes masked without being declared."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autokestra_obs_collector import Redactor
from autokestra_obs_schema import SECRET_MASK as MASK

FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
# Secrets share no character with the mask, so the mask can never spell one.
_SECRET = st.text(
    alphabet="".join(sorted(set(string.ascii_letters + string.digits + "-_./+=:@é€") - set(MASK))),
    min_size=4,
    max_size=24,
)
_AROUND = st.text(alphabet=string.printable + "é", max_size=30)


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    ]


class TestHexForms:
    @pytest.mark.parametrize("secret", ["hunter2-token", "p@ss-é€-word", "\U0001f600emoji"])
    def test_lower_and_upper_hex_are_masked(self, secret: str) -> None:
        """A secret printed as hex, lower or upper case, inside a longer dump, is masked."""
        raw = secret.encode()
        redactor = Redactor([secret])
        for dump in (raw.hex(), raw.hex().upper(), "00ff" + raw.hex() + "0a", "0x" + raw.hex()):
            out = redactor.redact(f"bytes: {dump}")
            assert raw.hex() not in out.lower()
            assert MASK in out


TOKEN_SAMPLES = {
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "aws-temporary": "ASIAY34FZKBOKMUTVV7A",
    "github": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "github-fine-grained": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq7Vv1234\n"
    "-----END RSA PRIVATE KEY-----",
    "pem-pkcs8": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
    "pem-begin-line": "-----BEGIN OPENSSH PRIVATE KEY-----",
}


class TestTokenShapes:
    @pytest.mark.parametrize("name", sorted(TOKEN_SAMPLES))
    def test_masked_by_default_without_being_declared(self, name: str) -> None:
        """Each known credential shape is masked by a redactor that knows no secret."""
        token = TOKEN_SAMPLES[name]
        out = Redactor().redact(f"config: {token} (loaded)")
        assert token not in out
        assert out == f"config: {MASK} (loaded)"

    @pytest.mark.parametrize("name", sorted(TOKEN_SAMPLES))
    def test_the_switch_turns_it_off(self, name: str) -> None:
        """mask_token_shapes=False leaves undeclared values as they are."""
        token = TOKEN_SAMPLES[name]
        assert Redactor(mask_token_shapes=False).redact(token) == token
        assert Redactor(["other-secret"], mask_token_shapes=False).redact(token) == token

    def test_in_nested_values(self) -> None:
        """Structures are walked for shapes too."""
        value = {"env": ["AKIAIOSFODNN7EXAMPLE"], "AKIAIOSFODNN7EXAMPLE": 1}
        assert Redactor().redact_value(value) == {"env": [MASK], MASK: 1}

    @pytest.mark.parametrize(
        "text",
        [
            "AKIA is a prefix",
            "AKIAIOSFODNN7EXAMPL",  # one character short
            "ghp_short",
            "eyJhbGciOiJIUzI1NiJ9 alone",
            "-----BEGIN PUBLIC KEY-----",
            "github_pat_",
        ],
    )
    def test_near_misses_are_left_alone(self, text: str) -> None:
        """Text that only resembles a credential is not masked."""
        assert Redactor().redact(text) == text


class TestRedactorFuzz:
    @FUZZ
    @given(_SECRET, _AROUND, _AROUND, st.integers(0, 4))
    def test_no_form_survives_anywhere(
        self, secret: str, before: str, after: str, which: int
    ) -> None:
        """Plain, hex (both cases) and base64 forms embedded in any text are masked."""
        form = _forms(secret)[which]
        out = Redactor([secret]).redact(before + form + after)
        assert secret not in out
        if which in (1, 2):
            assert secret.encode().hex() not in out.lower()

    @FUZZ
    @given(_SECRET, _AROUND)
    def test_redaction_is_idempotent(self, secret: str, text: str) -> None:
        """Redacting twice changes nothing more."""
        redactor = Redactor([secret])
        once = redactor.redact(text + secret + text)
        assert redactor.redact(once) == once

    @FUZZ
    @given(st.text(alphabet=string.ascii_lowercase + string.digits + " .,:-_/\n", max_size=80))
    def test_ordinary_text_is_not_touched_by_shapes(self, text: str) -> None:
        """Lowercase text and numbers never look like a credential shape."""
        assume("eyj" not in text)
        assert Redactor().redact(text) == text

    @FUZZ
    @given(st.from_regex(r"(AKIA|ASIA)[A-Z0-9]{16}", fullmatch=True), _AROUND, _AROUND)
    def test_aws_key_ids_anywhere_are_masked(self, key: str, before: str, after: str) -> None:
        """An AWS access key id between separators is always masked."""
        out = Redactor().redact(f"{before} {key} {after}")
        assert key not in out

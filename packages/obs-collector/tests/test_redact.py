"""Redactor: every form of every secret is masked, in text, structures and the database."""

from __future__ import annotations

import base64
import json
import re
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autokestra_obs_collector import (
    AttemptCapture,
    LogCollector,
    Redactor,
    secret_forms,
)
from autokestra_obs_collector._redact import trie_pattern
from autokestra_obs_collector._rows import metadata_json
from autokestra_obs_schema import SECRET_MASK as MASK
from autokestra_obs_schema import LogLevel, Writer

# Secret characters share nothing with the mask, so a mask can never spell a secret.
_SECRET_CHARS = "".join(
    sorted(set(string.ascii_letters + string.digits + "-_./+=:@ é€") - set(MASK))
)
_TEXT = st.text(alphabet=string.printable + "é€😀", max_size=40)

CORPUS_SECRETS = [
    "hunter2-Correct-Horse-Battery",
    "p@ss w/rd&x=1+2%3?é€",
    'quote"back\\slash\ttab-secret',
    "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    "BKcwggSjAgEAAoIBAQC7Vv\n-----END KEY-----",
    "\U0001f600-emoji-secret-9876",
]


def stable_base64(secret: bytes, align: int) -> str:
    """The base64 characters fixed by the secret alone (independent oracle).

    Two encodings whose surrounding bytes differ in every bit agree exactly on those.
    """
    low = base64.b64encode(b"\x00" * align + secret + b"\x00").decode()
    high = base64.b64encode(b"\xff" * align + secret + b"\xff").decode()
    same = "".join(a if a == b else "\0" for a, b in zip(low, high, strict=True))
    return max(same.split("\0"), key=len)


def every_form(secret: str) -> list[str]:
    """Forms written independently of the implementation, for the corpus."""
    raw = secret.encode()
    forms = [secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]]
    forms.append(json.dumps(secret, ensure_ascii=False)[1:-1])
    for align in range(3):
        for prefix in (b"", b"ab", b"x"):
            blob = prefix[:align] + b"\0" * (align - len(prefix[:align])) + raw
            enc = base64.b64encode(blob).decode()
            forms += [enc, enc.rstrip("="), base64.urlsafe_b64encode(blob).decode()]
        forms.append(stable_base64(raw, align))
    forms += [line for line in secret.splitlines() if len(line) >= 4]
    return [f for f in forms if len(f) >= 4]


def strings(value: Any) -> list[str]:
    """Every string in a structure, dict keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in strings(k) + strings(v)]
    if isinstance(value, list):
        return [t for item in value for t in strings(item)]
    return []


class TestRedact:
    def test_plain_secret_is_masked(self) -> None:
        """The clear value is replaced wherever it occurs."""
        assert Redactor(["s3cret-value"]).redact("a s3cret-value b s3cret-value") == (
            f"a {MASK} b {MASK}"
        )

    def test_empty_redactor_is_a_noop(self) -> None:
        """Redactor() returns its input unchanged and is falsy."""
        redactor = Redactor()
        assert not redactor
        assert redactor.redact("anything") == "anything"
        assert redactor.redact_value({"a": [1]}) == {"a": [1]}

    def test_short_secrets_are_not_substring_redacted(self) -> None:
        """A 3-character secret is masked only as a whole value, not inside text."""
        redactor = Redactor(["abc"])
        assert redactor.redact("abcdef abc") == "abcdef abc"
        assert redactor.redact("abc") == MASK
        assert redactor.redact_value({"k": "abc", "j": "xabc"}) == {"k": MASK, "j": "xabc"}

    def test_each_line_of_a_multiline_secret(self) -> None:
        """A secret printed line by line is masked line by line."""
        secret = CORPUS_SECRETS[3]
        out = Redactor([secret]).redact("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n")
        assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in out

    def test_secret_with_a_trailing_newline_is_masked_as_printed(self) -> None:
        """A value read with its newline ('token\\n') is masked in the line a plugin prints."""
        for secret in ("s3cr3t-token-value\n", "s3cr3t-token-value\r\n", " s3cr3t-token-value "):
            redactor = Redactor([secret])
            assert redactor.redact("Authorization: s3cr3t-token-value") == f"Authorization: {MASK}"
            encoded = base64.b64encode(b"s3cr3t-token-value").decode()
            assert "s3cr3t" not in redactor.redact(encoded)
            assert encoded not in redactor.redact(encoded)

    def test_all_forms_of_the_corpus(self) -> None:
        """Base64 (3 alignments, padded or not, URL-safe), URL and JSON forms are masked."""
        redactor = Redactor(CORPUS_SECRETS)
        for secret in CORPUS_SECRETS:
            for form in every_form(secret):
                out = redactor.redact(f"<<{form}>>")
                assert form not in out, (secret, form)
                assert MASK in out

    def test_redact_value_is_recursive_over_keys_and_values(self) -> None:
        """Dict keys and values, lists and tuples are redacted; numbers stay."""
        redactor = Redactor(["tok-abcdef"])
        value = {"tok-abcdef": ["x tok-abcdef", ("tok-abcdef",), {"n": 1, "b": True}], "z": None}
        assert redactor.redact_value(value) == {
            MASK: [f"x {MASK}", [MASK], {"n": 1, "b": True}],
            "z": None,
        }

    def test_objects_in_metadata_are_redacted_as_the_text_they_are_stored_as(self) -> None:
        """An exception, a Path or a set in metadata is stored as str(): that text is masked."""
        secret = "tok-abcdef-123"
        redactor = Redactor([secret])
        value = {"error": ValueError(f"bad {secret}"), "path": Path(f"/x/{secret}"), "s": {secret}}
        stored = metadata_json(redactor.redact_value(value))
        assert secret not in stored
        assert json.loads(stored)["error"] == f"bad {MASK}"

    def test_forms_are_longest_first(self) -> None:
        """A padded base64 form leaves no '=' fragment behind next to the mask."""
        secret = "abcd"
        encoded = base64.b64encode(secret.encode()).decode()
        assert encoded.endswith("=")
        assert Redactor([secret]).redact(encoded) == MASK
        assert encoded in secret_forms(secret)


class TestRedactProperties:
    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=_SECRET_CHARS, min_size=4, max_size=30), _TEXT, _TEXT)
    def test_embedded_secret_never_survives(self, secret: str, before: str, after: str) -> None:
        """Whatever surrounds it, the secret is not in the output."""
        assert secret not in Redactor([secret]).redact(before + secret + after)

    @settings(max_examples=300, deadline=None)
    @given(
        st.text(alphabet=_SECRET_CHARS, min_size=4, max_size=30),
        st.binary(max_size=5),
        st.binary(max_size=5),
    )
    def test_secret_inside_a_base64_blob(self, secret: str, before: bytes, after: bytes) -> None:
        """A secret base64-encoded inside a larger blob, at any alignment, is masked."""
        raw = secret.encode()
        stable = stable_base64(raw, len(before) % 3)
        assume(len(stable) >= 4)
        blob = base64.b64encode(before + raw + after).decode()
        assert stable not in Redactor([secret]).redact(blob)

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=_SECRET_CHARS, min_size=4, max_size=30), _TEXT)
    def test_text_without_the_secret_is_unchanged(self, secret: str, text: str) -> None:
        """Text that contains no form of the secret comes back identical."""
        assume(not any(form in text for form in secret_forms(secret)))
        assert Redactor([secret]).redact(text) == text

    @settings(max_examples=200, deadline=None)
    @given(
        st.text(alphabet=_SECRET_CHARS, min_size=4, max_size=20),
        st.recursive(
            st.none() | st.integers() | _TEXT,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
            max_leaves=10,
        ),
    )
    def test_structures_hold_no_secret_after_redaction(self, secret: str, value: Any) -> None:
        """Any nesting with the secret planted inside holds no string containing it."""
        planted = {"planted": [value, f"x{secret}y"], secret: value}
        assert not any(secret in text for text in strings(Redactor([secret]).redact_value(planted)))


class TestDatabaseCorpus:
    def test_no_secret_form_reaches_the_database_files(self, writer: Writer, db_path: Path) -> None:
        """Messages, metadata and captured output with every form leave none in db or -wal."""
        collector = LogCollector(writer)
        collector.set_redactor("exec-1", Redactor(CORPUS_SECRETS))
        forms = sorted({f for s in CORPUS_SECRETS for f in every_form(s)}, key=len)
        for i, form in enumerate(forms):
            collector.log(
                "exec-1",
                LogLevel.INFO,
                "worker",
                f"message {i}: [{form}]",
                task_id="t",
                attempt=1,
                metadata={"value": form, f"key {form}": [form, {"deep": form}]},
            )
        cap = AttemptCapture(
            lambda level, message, metadata: collector.log(
                "exec-1", level, "plugin:core/shell.run", message, metadata=metadata
            )
        )
        for form in forms:
            cap.feed("stdout", f"out {form} end\n".encode())
            cap.feed("stderr", f"::error::{form}\n".encode())
        cap.close()
        assert collector.flush(timeout=10)
        wal = Path(f"{db_path}-wal")
        assert wal.exists() and wal.stat().st_size > 0
        files = [db_path, wal]
        stored = writer.connection.execute("SELECT count(*) FROM execution_logs").fetchall()
        captured = sum(len(re.split(r"\r\n|\r|\n", form)) * 2 for form in forms)
        assert stored == [(len(forms) + captured,)]
        for path in files:
            blob = path.read_bytes()
            for form in forms:
                assert form.encode() not in blob, (path.name, form)
        assert MASK.encode() in wal.read_bytes()
        collector.shutdown()
        writer.close()  # checkpoint into the main file, then check it again
        blob = db_path.read_bytes()
        assert MASK.encode() in blob
        for form in forms:
            assert form.encode() not in blob, form


class TestTriePattern:
    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.text(alphabet="ab=c", min_size=1, max_size=6), min_size=1, max_size=8),
        st.text(alphabet="ab=cx", max_size=40),
    )
    def test_matches_like_longest_first_alternation(self, words: list[str], text: str) -> None:
        """The trie expression replaces exactly what longest-first alternation replaces."""
        ordered = sorted(set(words), key=lambda w: (-len(w), w))
        reference = re.compile("|".join(re.escape(w) for w in ordered))
        assert re.sub(trie_pattern(words), "#", text) == reference.sub("#", text)

    def test_escapes_metacharacters(self) -> None:
        """Regex metacharacters in secrets are matched literally."""
        assert re.sub(trie_pattern(["a.b", "a+b", "(x)"]), "#", "a.b axb a+b aab (x)") == (
            "# axb # aab #"
        )

    def test_long_secret(self) -> None:
        """A 20,000-character secret (a certificate bundle) builds and is masked."""
        secret = "".join(chr(ord("A") + i % 26) + str(i % 7) for i in range(10_000))
        redactor = Redactor([secret])
        assert redactor.redact(f"x{secret}y") == f"x{MASK}y"
        blob = base64.b64encode(b"..." + secret.encode() + b".").decode()
        assert redactor.redact(blob).count(MASK) == 1

"""Secret redaction: every stored form of an execution's secrets becomes ``***SECRET***``.

A secret leaks in more shapes than its plain text: base64 (at any byte alignment inside a
larger blob, padded or not, standard or URL-safe alphabet), hexadecimal (lower and upper
case), URL encoding, JSON string escaping, and one line of a multi-line value (a PEM key
printed line by line). The redactor knows them all and replaces them in one pass of one
regular expression, longest form first.

Values nobody declared secret are masked too when they have the shape of a known credential
(DESIGN.md §6.13): PEM private-key blocks, AWS access key ids, GitHub tokens and JWTs. Turn
that off with ``mask_token_shapes=False`` (config ``logging.mask_token_shapes: false``).

    redactor = Redactor(["hunter2-token"])
    redactor.redact("login with hunter2-token")          # 'login with ***SECRET***'
    redactor.redact_value({"auth": ["hunter2-token"]})   # {'auth': ['***SECRET***']}
    Redactor().redact("key AKIAIOSFODNN7EXAMPLE")         # 'key ***SECRET***'

"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from autokestra_obs_schema import SECRET_MASK

#: What every secret form is replaced with.
#: Shorter secrets are not substring-redacted: masking every "abc" would mangle every log.
#: A string that *equals* a short secret is still masked by :meth:`Redactor.redact_value`.
MIN_SECRET_LENGTH = 4

#: Leading base64 characters that also depend on the bytes before the secret, per alignment.
_B64_LEAD = {0: 0, 1: 2, 2: 3}
_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")

#: Credentials recognised by their shape alone, masked even when nobody declared them.
#: Each alternative starts with a literal, so the scan stays cheap on ordinary log lines.
TOKEN_SHAPES = re.compile(
    "|".join(
        (
            # A PEM private key, whole block; or its BEGIN line when printed line by line.
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?",
            # AWS access key ids (long-term AKIA, temporary ASIA, and the rarer prefixes).
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b",
            # GitHub tokens: classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained.
            r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",
            r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
            # JWTs: base64url JSON header and payload (both start '{"' = "eyJ"), signature.
            r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
        )
    )
)


def _base64_forms(raw: bytes) -> set[str]:
    """The base64 texts that reveal ``raw`` wherever it sits inside a larger encoded blob."""
    forms: set[str] = set()
    for align in (0, 1, 2):
        encoded = base64.b64encode(b"\0" * align + raw).decode("ascii")
        body = encoded[_B64_LEAD[align] :]
        stripped = body.rstrip("=")
        # The last 4-char group mixes the secret's final bits with the next byte (or padding
        # bits at the end of data): without it, the core matches wherever the secret sits.
        remainder = (align + len(raw)) % 3
        core = stripped if remainder == 0 else stripped[:-1]
        for text in (core, stripped, body):
            if len(text) >= MIN_SECRET_LENGTH:
                forms.add(text)
                forms.add(text.replace("+", "-").replace("/", "_"))
    return forms


def secret_forms(secret: str) -> set[str]:
    """Every text form of one secret value that the redactor masks.

    Args:
        secret: the clear secret value.

    Returns:
        The secret itself, its base64 forms, hex (lower and upper case), URL-encoded and
        JSON-escaped forms, and the same
        for each line of a multi-line secret and for the secret without surrounding blanks
        (a trailing newline); forms shorter than :data:`MIN_SECRET_LENGTH` are left out.
        Empty for a secret shorter than that.
    """
    if len(secret) < MIN_SECRET_LENGTH:
        return set()
    forms = {secret}
    raw = secret.encode("utf-8", "surrogatepass")
    forms |= _base64_forms(raw)
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms.add(encoded)
        forms.add(_HEX_ESCAPE.sub(lambda m: m.group(0).lower(), encoded))
    # Hexadecimal dumps (a hexdump, a bytes repr): the byte pairs sit on even offsets of any
    # larger hex text, so the secret's own hex matches wherever it is.
    forms.add(raw.hex())
    forms.add(raw.hex().upper())
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    # Each line of a multi-line secret, and a one-line secret without the blanks around it:
    # a value read with its trailing newline ("token\n", common for mounted secret files)
    # is printed by a plugin as the line "token", which the full value does not match.
    lines = [line.strip() for line in secret.splitlines()]
    if len(lines) > 1 or (lines and lines[0] != secret):
        for line in lines:
            forms |= secret_forms(line)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, longest first at each position.

    Factored as a trie (``ab|ac`` becomes ``a(?:b|c)``): Python's regex engine tries the
    alternatives of a plain ``a|b|c`` one by one at every position of the text, so with the
    ~50 forms of a handful of secrets a trie is three times faster on log lines. Greedy
    optional groups make the longest form win, as longest-first alternation would: a padded
    base64 form must beat its unpadded prefix, or a fragment would survive next to the mask.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # end of a word

    def build(node: dict[str, Any]) -> str:
        branches = [chain(char, child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        if "" in node:  # a word ends here: the longer continuations are optional
            return "(?:" + "|".join(branches) + ")?"
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    def chain(char: str, node: dict[str, Any]) -> str:
        # Follow a run of single-child nodes in a loop: recursing per character would hit
        # the recursion limit on a long secret (a certificate).
        run = [char]
        while len(node) == 1 and "" not in node:
            ((char, node),) = node.items()
            run.append(char)
        return re.escape("".join(run)) + build(node)

    return build(root)


class Redactor:
    """Masks one execution's secret values in text and in nested structures.

    Immutable after construction and safe to share between threads. ``Redactor()`` (no
    secrets) masks only credential shapes; ``Redactor(mask_token_shapes=False)`` is a no-op.
    """

    __slots__ = ("_exact", "_pattern", "_secrets", "_shapes")

    def __init__(self, secrets: Iterable[str] = (), *, mask_token_shapes: bool = True) -> None:
        """Build the redactor for a set of secret values.

        Args:
            secrets: the clear secret values; empty strings are ignored.
            mask_token_shapes: also mask values shaped like PEM private keys, AWS access key
                ids, GitHub tokens and JWTs, declared secret or not (:data:`TOKEN_SHAPES`).
        """
        self._shapes = mask_token_shapes
        self._secrets = frozenset(s for s in secrets if s)
        forms: set[str] = set()
        for secret in self._secrets:
            forms |= secret_forms(secret)
        # Whole-string equality still masks a value that IS a short secret.
        self._exact = self._secrets | forms
        self._pattern: re.Pattern[str] | None = None
        if forms:
            self._pattern = re.compile(trie_pattern(forms))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)

    @property
    def masks_token_shapes(self) -> bool:
        """Whether credential shapes are masked even when not declared secret."""
        return self._shapes

    def union(self, secrets: Iterable[str]) -> Redactor:
        """Return a redactor that also masks ``secrets`` (same token-shape setting)."""
        return Redactor([*self._secrets, *secrets], mask_token_shapes=self._shapes)

    def redact(self, text: str) -> str:
        """Return ``text`` with every form of every secret replaced by :data:`SECRET_MASK`."""
        if self._secrets:
            if text in self._exact:
                return SECRET_MASK
            if self._pattern is not None:
                text = self._pattern.sub(SECRET_MASK, text)
        if self._shapes:
            text = TOKEN_SHAPES.sub(SECRET_MASK, text)
        return text

    def redact_value(self, value: Any) -> Any:
        """Redact strings inside ``value`` recursively (dict keys and values, lists, tuples).

        Numbers, booleans and ``None`` are returned unchanged; tuples come back as lists, the
        shape JSON gives them anyway; any other object becomes its redacted ``str()``, the
        text it would be stored as.
        """
        if not self._secrets and not self._shapes:
            return value
        return self._walk(value, depth=0)

    # One return per JSON shape, in the order that matters (the depth guard before containers):
    # a dispatch table would hide that order.
    def _walk(self, value: Any, depth: int) -> Any:  # noqa: PLR0911
        if isinstance(value, str):
            return self.redact(value)
        if depth > _MAX_DEPTH:
            # A cycle or absurd nesting: never emit something unredacted.
            return SECRET_MASK
        if isinstance(value, dict):
            return {
                (self.redact(k) if isinstance(k, str) else k): self._walk(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._walk(item, depth + 1) for item in value]
        if isinstance(value, bytes | bytearray):
            return self.redact(bytes(value).decode("utf-8", "replace"))
        if value is None or isinstance(value, bool | int | float):
            return value
        # Anything else (an exception, a Path, a set) would be stored as str(value) by the
        # JSON encoder, after redaction: turn it into that text now, and redact it.
        return self.redact(str(value))


_MAX_DEPTH = 64

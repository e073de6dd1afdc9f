"""core/http.request: one HTTP request with urllib; status, headers and body as outputs."""

import json
import os
import re
import sys
import urllib.error
import urllib.request

UNITS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
PART = re.compile(r"([0-9]+)(ms|d|h|m|s)")


def duration_s(text: str) -> float:
    parts = PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(text)
    return sum(int(n) * UNITS[u] for n, u in parts) / 1000


def main() -> None:
    inputs = json.load(sys.stdin)
    url = inputs.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        sys.stderr.write("core/http.request: 'url' must start with http:// or https://\n")
        sys.exit(2)
    method = str(inputs.get("method") or "GET").upper()
    headers = {str(k): str(v) for k, v in (inputs.get("headers") or {}).items()}
    body = inputs.get("body")
    data = None
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = str(body).encode()
    try:
        timeout = duration_s(str(inputs.get("timeout") or "30s"))
    except ValueError:
        sys.stderr.write("core/http.request: invalid timeout\n")
        sys.exit(2)
    limit = int(inputs.get("max_body_bytes") or 1048576)
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # url checked: http(s) only
    except urllib.error.HTTPError as exc:
        response = exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        sys.stderr.write(f"core/http.request: {method} {url} failed: {reason}\n")
        sys.exit(1)
    with response:
        raw = response.read(limit + 1)
        status = int(response.status)
        reply_headers = {k: v for k, v in response.headers.items()}
    if len(raw) > limit:
        sys.stderr.write(f"::warn::response body cut at {limit} bytes\n")
        raw = raw[:limit]
    print(f"{method} {url} -> {status}")
    with open(os.environ["AUTOKESTRA_OUTPUTS"], "w", encoding="utf-8") as handle:
        json.dump(
            {"status": status, "headers": reply_headers, "body": raw.decode("utf-8", "replace")},
            handle,
        )
    if status >= 400 and inputs.get("fail_on_error", True) is not False:
        sys.stderr.write(f"core/http.request: HTTP status {status}\n")
        sys.exit(1)


main()

"""core/notify.webhook: POST a Slack-compatible {"text": ...} message about an execution.

The body is ``{"text": <summary>, "autokestra": <execution summary and link>}``: Slack (and
Mattermost, Discord's /slack endpoint, Teams' connectors...) show ``text``; a receiver of our
own reads the structured part.
"""

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


def summary_text(summary: dict[str, object], link: str | None) -> str:
    workflow = summary.get("workflow_id") or "workflow"
    state = summary.get("state") or "UNKNOWN"
    text = f"Autokestra: {workflow} {state} (execution {summary.get('id')})"
    if summary.get("failed_task_id"):
        text += f"; failed task: {summary['failed_task_id']}"
    if summary.get("message"):
        text += f"; {summary['message']}"
    if link:
        text += f" <{link}|open in the console>"
    return text


def main() -> None:
    inputs = json.load(sys.stdin)
    url = inputs.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        sys.stderr.write("core/notify.webhook: 'url' must start with http:// or https://\n")
        sys.exit(2)
    summary = dict(inputs.get("execution") or {})
    summary.setdefault("id", os.environ.get("AUTOKESTRA_EXECUTION_ID"))
    console = inputs.get("console_url")
    link = f"{str(console).rstrip('/')}/executions/{summary['id']}" if console else None
    text = inputs.get("text") or summary_text(summary, link)
    body = json.dumps({"text": text, "autokestra": {**summary, "link": link}}).encode()
    try:
        timeout = duration_s(str(inputs.get("timeout") or "10s"))
    except ValueError:
        sys.stderr.write("core/notify.webhook: invalid timeout\n")
        sys.exit(2)
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"core/notify.webhook: POST failed: {getattr(exc, 'reason', exc)}\n")
        sys.exit(1)
    print(f"notification sent ({status}): {text}")
    with open(os.environ["AUTOKESTRA_OUTPUTS"], "w", encoding="utf-8") as handle:
        json.dump({"status": status, "text": text}, handle)
    if status >= 400:
        sys.stderr.write(f"core/notify.webhook: HTTP status {status}\n")
        sys.exit(1)


main()

"""Test helpers: a real OTLP/HTTP receiver on 127.0.0.1 that decodes what it is sent.

The receiver is an HTTP server in a thread that parses each request with
``opentelemetry-proto`` (the protobuf definitions every OTLP implementation shares), so a
test checks what a real backend would get. It can also misbehave: ``mode="hang"`` never
answers (a stuck collector), ``mode="error"`` answers 503.

    with OtlpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        ...                                    # run something that exports
        receiver.wait_for(lambda r: len(r.spans) >= 3)
        root = [s for s in receiver.spans if not s.parent_span_id]
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "OtlpReceiver",
    "ReceivedLog",
    "ReceivedSpan",
    "SpanEvent",
    "execution_id",
    "unused_port",
]

Mode = Literal["accept", "hang", "error"]


def execution_id() -> str:
    """A fresh id shaped like the engine's execution ids (UUID version 7: time, then random)."""
    ms = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((random >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (random & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        result[pair.key] = _value(pair.value)
    return result


@dataclass(frozen=True)
class SpanEvent:
    """An event recorded on a span (``retry``...)."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it (ids in lowercase hex, empty when absent)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error (opentelemetry.proto Status.StatusCode)
    status_message: str
    events: list[SpanEvent]
    resource: dict[str, Any]
    scope: str


@dataclass(frozen=True)
class ReceivedLog:
    """One log record as the receiver decoded it."""

    trace_id: str
    span_id: str
    time_ns: int
    severity_text: str
    severity_number: int
    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class _Store:
    spans: list[ReceivedSpan] = field(default_factory=list)
    logs: list[ReceivedLog] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _decode_traces(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                        events=[
                            SpanEvent(e.name, e.time_unix_nano, _attributes(e.attributes))
                            for e in span.events
                        ],
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


def _decode_logs(body: bytes) -> list[ReceivedLog]:
    request = ExportLogsServiceRequest()
    request.ParseFromString(body)
    logs: list[ReceivedLog] = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                logs.append(
                    ReceivedLog(
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        time_ns=record.time_unix_nano,
                        severity_text=record.severity_text,
                        severity_number=int(record.severity_number),
                        body=_value(record.body),
                        attributes=_attributes(record.attributes),
                        resource=resource,
                    )
                )
    return logs


class OtlpReceiver:
    """An OTLP/HTTP (protobuf) receiver for tests, on 127.0.0.1 and a free port.

    Args:
        mode: ``accept`` (decode and answer 200), ``hang`` (read the request, never
            answer until stopped) or ``error`` (answer 503 without keeping anything).
    """

    def __init__(self, mode: Mode = "accept") -> None:
        self.mode: Mode = mode
        self._store = _Store()
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the test output is about what was received

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver._received(self.path, dict(self.headers.items()), body)
                if receiver.mode == "hang":
                    receiver._release.wait()
                    self.close_connection = True
                    return
                status = 503 if receiver.mode == "error" else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )
        self._thread.start()

    def _received(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self._store.requests.append((path, headers))
            if self.mode != "accept":
                return
            if path.endswith("/v1/traces"):
                self._store.spans.extend(_decode_traces(body))
            elif path.endswith("/v1/logs"):
                self._store.logs.extend(_decode_logs(body))

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        with self._lock:
            return list(self._store.spans)

    @property
    def logs(self) -> list[ReceivedLog]:
        """Every log record received so far."""
        with self._lock:
            return list(self._store.logs)

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """(path, headers) of every request received, answered or not."""
        with self._lock:
            return list(self._store.requests)

    def wait_for(self, predicate: Callable[[OtlpReceiver], bool], timeout: float = 10.0) -> bool:
        """Poll ``predicate(self)`` until it holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def spans_by_name(self) -> Mapping[str, list[ReceivedSpan]]:
        """The received spans grouped by name."""
        grouped: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans:
            grouped.setdefault(span.name, []).append(span)
        return grouped

    def stop(self) -> None:
        """Release hung requests, stop serving and close the socket; idempotent."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

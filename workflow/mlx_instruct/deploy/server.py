"""A real `mlx_lm server` subprocess on 127.0.0.1 and a bounded HTTP client for it.

Why a subprocess and the standard library: the load test must measure what a user of the
served model sees (mlx_lm's own HTTP server, its batching and error handling), and every
wait here has a deadline so a hung server or request can never hang the DAG. The venv's
interpreter starts the server, so it gets the project's OpenBLAS like every other CLI
(`mlx_instruct_blas.pth`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
CHAT = "/v1/chat/completions"
STOP_GRACE_S = 10.0
LOG_TAIL_CHARS = 2000
ERROR_LINE = re.compile(r"^\w*(Error|Exception)\b|\s-\sERROR\s-\s")


class ServerError(RuntimeError):
    """The server could not be started or stopped answering; the message says why."""


@dataclass
class Outcome:
    """One request as the client saw it. status 0: no HTTP response (timeout, refused)."""

    status: int
    latency_s: float
    ttft_s: float = math.nan
    completion_tokens: int = 0
    prompt_tokens: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def check_port(port: int) -> None:
    """Fail before starting anything when `port` cannot be bound on HOST. SO_REUSEADDR as
    the server's own bind (http.server) sets it: a port whose last connections linger in
    TIME_WAIT is free for it, one with a listener is not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as error:
            raise ServerError(
                f"--port {port}: {HOST}:{port} is in use ({error.strerror})"
            ) from None


def _deadline_timeout(deadline: float) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError("request deadline passed")
    return left


def post(port: int, body: bytes, timeout: float, path: str = CHAT) -> Outcome:
    """One non-streaming POST; the error body (for a non-200 status) is kept in `error`."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        latency = time.perf_counter() - start
        if response.status != 200:
            return Outcome(response.status, latency, error=text[:500] or response.reason)
        usage = json.loads(text).get("usage") or {}
        return Outcome(
            200,
            latency,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
        )
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Outcome(0, time.perf_counter() - start, error=f"{type(error).__name__}: {error}")
    finally:
        conn.close()


def chat_body(content: str, max_tokens: int, stream: bool) -> bytes:
    body: dict = {
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def stream_chat(port: int, content: str, max_tokens: int, timeout: float) -> Outcome:
    """A streaming chat completion with a total deadline of `timeout` seconds.

    TTFT is the time to the first SSE chunk carrying content; completion tokens come from
    the usage chunk mlx_lm sends for `stream_options.include_usage`.
    """
    start = time.perf_counter()
    deadline = start + timeout
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    ttft = math.nan
    try:
        conn.request("POST", CHAT, chat_body(content, max_tokens, True), {})
        sock = conn.sock  # the connection drops its reference once an HTTP/1.0 reply starts
        sock.settimeout(_deadline_timeout(deadline))
        response = conn.getresponse()
        if response.status != 200:
            text = response.read().decode("utf-8", "replace")
            return Outcome(response.status, time.perf_counter() - start, error=text[:500])
        usage: dict = {}
        while True:
            sock.settimeout(_deadline_timeout(deadline))
            line = response.readline()
            if not line:
                raise ServerError("stream closed before data: [DONE]")
            if not line.startswith(b"data: "):
                continue  # blank separators and ": keepalive" comments
            data = line[len(b"data: ") :].strip()
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            usage = chunk.get("usage") or usage
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            if math.isnan(ttft) and delta.get("content"):
                ttft = time.perf_counter() - start
        return Outcome(
            200,
            time.perf_counter() - start,
            ttft,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
        )
    except (OSError, http.client.HTTPException, ValueError, ServerError) as error:
        return Outcome(
            0, time.perf_counter() - start, ttft, error=f"{type(error).__name__}: {error}"
        )
    finally:
        conn.close()


def _tail(log: Path) -> str:
    """The log's error lines (a traceback's last line names the cause, but the frames above
    it can push it out of a plain tail), then its last LOG_TAIL_CHARS."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    errors = [line for line in text.splitlines() if ERROR_LINE.search(line)][-5:]
    tail = text[-LOG_TAIL_CHARS:].strip() or "(empty log)"
    return "\n".join(errors + ["--- last lines:", tail]) if errors else tail


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after STOP_GRACE_S: the server never outlives the load test."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_GRACE_S)


def health(port: int, timeout: float) -> int:
    """GET /health's status: 200 while the server's generation thread lives, 503 once it
    died (e.g. the model failed to load: the HTTP side keeps running); 0 for no answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def _wait_ready(process: subprocess.Popen, port: int, log: Path, timeout: float) -> None:
    """Poll until one real completion succeeds (the model loads on the server's generation
    thread, so /health answers before the model is there); bounded by `timeout`."""
    deadline = time.perf_counter() + timeout
    last = ""
    while True:
        left = deadline - time.perf_counter()
        if process.poll() is not None:
            problem = f"exited with status {process.returncode} before answering"
        elif health(port, min(max(left, 0.1), 5.0)) == 503:
            problem = "is up but its generation thread died (the model did not load?)"
        elif left <= 0:
            problem = f"did not answer within {timeout:g} s (last reply: {last or 'none'})"
        else:
            outcome = post(port, chat_body("Hello", 2, False), timeout=min(left, 30.0))
            if outcome.ok:
                return
            last = outcome.error
            time.sleep(0.25)
            continue
        raise ServerError(f"mlx_lm server on port {port} {problem}; log tail:\n{_tail(log)}")


@contextlib.contextmanager
def serve(
    model: Path,
    adapter_path: Path | None,
    port: int,
    max_tokens: int,
    startup_timeout: float,
) -> Iterator[tuple[int, list[str]]]:
    """Run `python -m mlx_lm server` for the block; yield (port, command).

    Port 0 picks a free port; a given port in use is an error before the server starts.
    The server is stopped on every exit from the block (errors and Ctrl-C included).
    """
    if port == 0:
        port = free_port()
    else:
        check_port(port)
    command = [sys.executable, "-m", "mlx_lm", "server", "--model", str(model)]
    if adapter_path is not None:
        command += ["--adapter-path", str(adapter_path)]
    command += ["--host", HOST, "--port", str(port), "--max-tokens", str(max_tokens)]
    with tempfile.TemporaryDirectory(prefix="mlx-server-") as tmp:
        log = Path(tmp) / "server.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                command,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C reaches it only through _stop
            )
        try:
            _wait_ready(process, port, log, startup_timeout)
            yield port, command
            if process.poll() is not None:
                raise ServerError(
                    f"mlx_lm server exited with status {process.returncode} during the "
                    f"load test; log tail:\n{_tail(log)}"
                )
        finally:
            _stop(process)

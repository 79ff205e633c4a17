"""The HTTP layer every serving client shares: timeouts, retries, one-line errors.

* a timeout on every call (30 s unless told otherwise);
* up to ``tries`` attempts (3) on 429, 503 and connection failures, with exponential
  backoff and jitter (so many kernels do not retry in lock-step), honouring a small
  ``Retry-After``; a large one ends the retries at once rather than freezing the cell;
* every failure as one line, ``EndpointError("POST URL → 422: message")``, taking the
  message from a JSON body's ``error`` / ``message`` / ``detail`` field when there is one.

Secrets: API keys and the server token travel only in request headers. No message, repr or
log line here contains a header, and URLs in messages lose any query string and user info.
Only a connection that was never made is retried after a failure: a request that may have
reached the server is not sent twice.
"""

from __future__ import annotations

import contextlib
import email.utils
import json as _jsonlib
import random
import time
import urllib.parse
from typing import Any, Iterator

import httpx

from ..errors import DataError, EndpointAuthError, EndpointError, EndpointNotFoundError

DEFAULT_TIMEOUT = 30.0
RETRY_STATUSES = frozenset({429, 503})
#: a Retry-After longer than this ends the retries (the error says how long to wait)
MAX_RETRY_AFTER = 10.0
_MAX_MESSAGE = 300
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def safe_url(url: str) -> str:
    """The URL as shown in messages: no user info, no query string (either may hold a key)."""
    p = urllib.parse.urlsplit(str(url))
    netloc = p.hostname or ""
    if ":" in netloc:  # IPv6
        netloc = f"[{netloc}]"
    if p.port:
        netloc = f"{netloc}:{p.port}"
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", ""))


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def error_message(response: httpx.Response) -> str:
    """The server's own words: ``error`` / ``message`` / ``detail`` of a JSON body, else its text."""
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, dict):  # OpenAI: {"error": {"message": ...}}
                value = value.get("message") or value.get("detail") or value
            if value:
                message = str(value)
                break
    if not message:
        message = response.text.strip() or response.reason_phrase or "no details"
    message = " ".join(message.split())
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


class Http:
    """One place for timeouts, retries and one-line errors. ``attempts`` counts every request
    sent (first tries and retries), ``retries`` the retries alone: tests and users can see them."""

    def __init__(self, headers: dict[str, str] | None = None, *, timeout: float | None = DEFAULT_TIMEOUT,
                 tries: int = 3, backoff: float = 0.5, verify: Any = True):
        self._headers = dict(headers or {})
        self.timeout = timeout
        self.tries = max(1, int(tries))
        self.backoff = backoff
        self.verify = verify
        self.attempts = self.retries = 0

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"<Http timeout={self.timeout} tries={self.tries}>"

    def request(self, method: str, url: str, *, json: Any = None, timeout: float | None = None,
                tries: int | None = None) -> httpx.Response:
        """Send; return a 2xx response (read in full), or raise a one-line EndpointError."""
        with self.opened(method, url, json=json, timeout=timeout, tries=tries) as response:
            return response

    @contextlib.contextmanager
    def opened(self, method: str, url: str, *, json: Any = None, timeout: float | None = None,
               tries: int | None = None, stream: bool = False) -> Iterator[httpx.Response]:
        """The 2xx response of *method url*, open for the ``with`` block: with *stream* its body
        is read as it arrives (``iter_lines``), else it is already read. Retries and errors as
        :meth:`request`; only a request that never got an answer, or got 429/503, is sent again."""
        tries = self.tries if tries is None else max(1, tries)
        timeout = self.timeout if timeout is None else timeout
        where = f"{method} {safe_url(url)}"
        headers, content = dict(self._headers), None
        if json is not None:
            content = encode_json(json)
            headers["Content-Type"] = "application/json"
        for attempt in range(1, tries + 1):
            self.attempts += 1
            # no proxy for a server on this machine (a corporate HTTP_PROXY would swallow it)
            local = urllib.parse.urlsplit(url).hostname in _LOOPBACK
            with httpx.Client(timeout=timeout, verify=self.verify, follow_redirects=False,
                              trust_env=not local) as http:
                try:
                    response = http.send(http.build_request(method, url, content=content, headers=headers),
                                         stream=stream)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    if attempt < tries:
                        self._sleep(attempt)
                        continue
                    raise EndpointError(f"{where} → connection failed: {_reason(exc)}",
                                        "is the server running and the URL right? see %aiaas endpoints") from None
                except httpx.TimeoutException:
                    raise EndpointError(f"{where} → no answer within {timeout or 0:g} s",
                                        "pass a larger timeout= or check the server") from None
                except httpx.HTTPError as exc:
                    raise EndpointError(f"{where} → {type(exc).__name__}: {_reason(exc)}") from None
                try:
                    if response.is_success:
                        yield response
                        return
                    if stream:
                        response.read()  # the error's body, for its message
                finally:
                    response.close()
            wait = _retry_after(response)
            if response.status_code in RETRY_STATUSES and attempt < tries and (wait or 0) <= MAX_RETRY_AFTER:
                self._sleep(attempt, wait)
                continue
            raise _status_error(where, response, wait, self._secrets())
        raise AssertionError("unreachable")  # pragma: no cover

    def _secrets(self) -> list[str]:
        """Header values (and bearer tokens) that must never appear in a message, even echoed."""
        values = [v for v in self._headers.values() if len(v) >= 8]
        return values + [v.split(" ", 1)[1] for v in values if v.startswith("Bearer ")]

    def _sleep(self, attempt: int, retry_after: float | None = None) -> None:
        self.retries += 1
        if retry_after is not None:
            time.sleep(retry_after)
        else:  # exponential backoff with jitter: 0.5-1.5 × backoff × 2^(attempt-1)
            time.sleep(self.backoff * 2 ** (attempt - 1) * (0.5 + random.random()))

    def get_json(self, url: str, **kw) -> Any:
        return _json(self.request("GET", url, **kw))

    def post_json(self, url: str, payload: Any, **kw) -> Any:
        return _json(self.request("POST", url, json=payload, **kw))


def encode_json(payload: Any) -> bytes:
    """Strict JSON (no NaN/Infinity, which most servers reject); numpy values become plain ones."""
    def plain(value):
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return value.tolist()
        if hasattr(value, "isoformat"):  # dates, timestamps
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    try:
        return _jsonlib.dumps(payload, allow_nan=False, default=plain, ensure_ascii=False).encode()
    except ValueError:
        raise DataError("the input holds NaN or infinite values, which JSON cannot carry",
                        "fill or drop missing values first (e.g. df.dropna())") from None
    except TypeError as exc:
        raise DataError(f"the input cannot be sent as JSON: {exc}") from None


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _status_error(where: str, response: httpx.Response, wait: float | None,
                  secrets: list[str] = ()) -> EndpointError:
    message = f"{where} → {response.status_code}: {error_message(response)}"
    for secret in secrets:  # a server that echoes the key back must not put it on screen
        message = message.replace(secret, "***")
    if response.status_code in (401, 403):
        return EndpointAuthError(message, "check the API key (or server token) the endpoint expects")
    if response.status_code == 404:
        return EndpointNotFoundError(message)
    if response.status_code in RETRY_STATUSES and wait is not None and wait > MAX_RETRY_AFTER:
        return EndpointError(message, f"the server asks to retry after {wait:g} s")
    return EndpointError(message)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        where = f"{response.request.method} {safe_url(response.request.url)}"
        raise EndpointError(f"{where} → {response.status_code}: the answer is not JSON") from None

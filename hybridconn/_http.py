"""The sender's HTTP side: a signing ``requests`` session and its error boundary.

Everything that crosses from ``requests`` into hybridconn on the sender's
HTTP path passes through here once: exceptions by :func:`translate_requests_error`,
relay error responses by :func:`relay_error`. Neither ever shows a token.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Mapping, Optional, Union
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from .addresses import RELAY_QUERY_PREFIX, redact, redact_url
from .auth import AUTH_HEADER, TokenProvider
from .exceptions import (
    ConfigurationError,
    HybridConnectionError,
    RelayConnectionError,
    RelayTimeoutError,
    error_for_status,
)

__all__ = [
    "QueryTokenAuth",
    "RelaySession",
    "RELAY_ERROR_STATUSES",
    "relay_error",
    "translate_requests_error",
    "scrub_secrets",
]

log = logging.getLogger(__name__)

TOKEN_PARAM = "sb-hc-token"

#: Statuses the service itself answers with (spec, "HTTP request protocol"). A
#: response carrying one of them *without* a ``Via`` header is the relay's, not the listener's.
RELAY_ERROR_STATUSES = frozenset({401, 403, 404, 500, 502, 503, 504})

# How much of a relay error body is worth showing: the service's bodies are short
# descriptions; anything longer is not a description.
_DETAIL_LIMIT = 512


class QueryTokenAuth(AuthBase):
    """``requests`` auth that puts the token in the ``sb-hc-token`` query parameter.

    For networks whose proxies strip unknown headers. The audience is fixed
    (the hybrid connection's), so one token covers every suffix.
    """

    def __init__(self, provider: TokenProvider, audience: str) -> None:
        self.provider = provider
        self.audience = audience

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token, _ = self.provider.get_token(self.audience)
        request.url = with_query_token(request.url or "", token)
        return request

    def __repr__(self) -> str:
        return f"QueryTokenAuth({self.provider!r})"


def with_query_token(url: str, token: str) -> str:
    """``url`` with exactly one ``sb-hc-token`` parameter (a redirect may bring an old one)."""
    parts = urlsplit(url)
    kept = [item for item in parts.query.split("&") if item and not item.lower().startswith(TOKEN_PARAM + "=")]
    kept.append(f"{TOKEN_PARAM}={quote(token, safe='')}")
    return urlunsplit(parts._replace(query="&".join(kept)))


class RelaySession(requests.Session):
    """A ``requests.Session`` whose explicit ``proxies`` and ``verify`` win over the environment.

    Plain ``requests`` lets ``HTTPS_PROXY`` override ``session.proxies`` and
    ``REQUESTS_CA_BUNDLE`` override ``session.verify``; a client configured with
    ``proxy=`` or ``verify=`` means exactly that. Redirects to another host drop
    the relay token as requests drops ``Authorization``.
    """

    def __init__(self, proxy: Optional[str] = None, verify: Union[bool, str] = True) -> None:
        super().__init__()
        self.explicit_proxy = proxy
        self.verify = verify
        if proxy:
            self.proxies = {"http": proxy, "https": proxy}

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Dict[str, Any]:
        if self.explicit_proxy:
            proxies = {**self.proxies, **(proxies or {})}
        if verify is None and self.verify is not True:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        if self.should_strip_auth(response.request.url or "", prepared_request.url or ""):
            prepared_request.headers.pop(AUTH_HEADER, None)
            prepared_request.url = _without_relay_query(prepared_request.url or "")
        super().rebuild_auth(prepared_request, response)


def _without_relay_query(url: str) -> str:
    parts = urlsplit(url)
    pairs = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(RELAY_QUERY_PREFIX)
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote)))


def relay_error(response: requests.Response, read_body: bool = True) -> Optional[HybridConnectionError]:
    """The typed error for a response the *relay* produced, or None for a listener's response.

    The spec's rule: a response with a ``Via`` header comes from the listener
    and is returned untouched, whatever its status. ``read_body=False`` (a
    streamed response) keeps the body unread.
    """
    if "Via" in response.headers or response.status_code not in RELAY_ERROR_STATUSES:
        return None
    description = response.reason or ""
    detail = _short_text_body(response) if read_body else ""
    if detail and detail not in description:
        description = f"{description}: {detail}" if description else detail
    error = error_for_status(response.status_code, redact(description))
    error.response = response  # type: ignore[attr-defined]
    return error


def _short_text_body(response: requests.Response) -> str:
    """A relay error body worth quoting: short text."""
    content_type = response.headers.get("Content-Type", "text/plain")
    if not (content_type.startswith("text/") or "json" in content_type or "xml" in content_type):
        return ""
    try:
        body = response.content[: _DETAIL_LIMIT + 1]
    except requests.RequestException:
        return ""
    if not body or len(body) > _DETAIL_LIMIT:
        return ""
    text = body.decode("utf-8", "replace")
    if "json" in content_type:
        text = _error_message(text)
    return " ".join(text.split())


def _error_message(text: str) -> str:
    """The ``error.message`` of the service's JSON error body (``{"error": {"code", "message"}}``), else ``text``."""
    try:
        document = json.loads(text)
    except ValueError:
        return text
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else text


# The requests exceptions caused by the caller's input, not by the network.
_INPUT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidHeader,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


def translate_requests_error(
    exc: requests.RequestException, url: str, method: str = "request"
) -> HybridConnectionError:
    """The hybridconn error for a ``requests`` failure on ``url`` (shown without its query)."""
    where = redact_url(url.split("?", 1)[0]) if url else "the relay"
    detail = redact(_root_message(exc))
    if isinstance(exc, _INPUT_ERRORS):
        return ConfigurationError(f"invalid {method} to {where}: {detail}")
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail.lower():
            return RelayConnectionError(
                f"TLS certificate verification failed for {where}: {detail}; "
                "pass verify='/path/to/ca.pem' to trust a self-signed relay (such as the emulator)"
            )
        return RelayConnectionError(f"TLS error on {method} to {where}: {detail}")
    if isinstance(exc, requests.exceptions.ProxyError):
        return RelayConnectionError(f"the proxy failed the {method} to {where}: {detail}")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        # The head arrived, the body did not end: a broken response, never a short complete one.
        return RelayConnectionError(f"the response to {method} {where} broke off before its end: {detail}")
    if isinstance(exc, requests.exceptions.Timeout):
        return RelayTimeoutError(f"timed out on {method} to {where}: {detail}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return RelayConnectionError(f"could not {method} {where}: {detail}")
    return RelayConnectionError(f"{method} to {where} failed: {type(exc).__name__}: {detail}")


def _root_message(exc: BaseException) -> str:
    """The most specific message in a requests/urllib3 exception (their outer ones repeat the URL)."""
    inner: Optional[BaseException] = exc
    # requests wraps urllib3's MaxRetryError, whose ``reason`` is the real failure.
    while inner is not None:
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException):
            inner = reason
            continue
        args = getattr(inner, "args", ())
        if args and isinstance(args[0], BaseException) and args[0] is not inner:
            inner = args[0]
            continue
        break
    text = str(inner) if inner is not None else str(exc)
    return text or type(exc).__name__


def scrub_secrets(exc: Optional[BaseException], depth: int = 8) -> None:
    """Redact tokens from the messages of ``exc`` and the exceptions chained to it.

    With ``token_in_query`` the token is part of the URL, and urllib3 puts the
    URL into its messages; a traceback prints the whole chain, so the chain is
    cleaned where it is raised.
    """
    seen = set()
    stack: List[BaseException] = [exc] if exc is not None else []
    while stack and depth > 0:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        depth -= 1
        args = getattr(current, "args", ())
        if any(isinstance(a, (str, BaseException)) and redact(str(a)) != str(a) for a in args):
            current.args = tuple(redact(str(a)) if isinstance(a, (str, BaseException)) else a for a in args)
        for attr in ("url",):
            value = getattr(current, attr, None)
            if isinstance(value, str) and redact(value) != value:
                try:
                    setattr(current, attr, redact(value))
                except AttributeError:
                    pass
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *args]
        stack.extend(item for item in linked if isinstance(item, BaseException))


def merged_headers(*sources: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """Later sources win, compared case-insensitively (the first spelling is kept)."""
    merged: Dict[str, str] = {}
    names: Dict[str, str] = {}
    for source in sources:
        for name, value in (source or {}).items():
            key = names.setdefault(name.lower(), name)
            merged[key] = value
    return merged

"""opsdash's one HTTP client: every HTTP use (the HTTP probe, DLQ and worker-metrics readers,
the RabbitMQ API, notifications) reads through :meth:`HttpClient.request`.

What it guarantees to every consumer alike, whatever :class:`~opsdash.transport.Wire` it runs on
(production: :class:`~opsdash.transport.LeanTransport`; tests: :class:`HttpxWire` over respx or
``httpx.MockTransport``):

- **The body is capped on its decoded size.** A ``gzip``/``deflate`` body the server sent anyway
  (we ask for ``identity``) is inflated chunk by chunk, never beyond ``max_body`` bytes of
  output, so a gzip bomb costs ``max_body`` of memory; the rest is never read (the connection
  is dropped, not drained).
- **Redirects are followed one hop at a time, their bodies unread**, up to ``max_redirects``;
  a loop, too many hops or a non-HTTP target is a :class:`RedirectError`. Across origins the
  ``Authorization`` header stays behind, as httpx does.
- **Credentials in the URL** (``http://user:pw@host/``) are sent as Basic auth (unless the
  request sets its own ``Authorization``); they never appear in the request line.
- Deadlines are the caller's (the harness's :class:`~opsdash.deadline.ProbeDeadlines`, or
  ``asyncio.timeout``): nothing here waits on its own clock.
"""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import zlib
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urljoin

from opsdash.records import dataclass
from opsdash.transport import (
    NetworkStream,
    RemoteProtocolError,
    Request,
    Response,
    Url,
    Wire,
    build_request,
    parse_url,
)

if TYPE_CHECKING:
    import httpx

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RAW_SLACK = 64 * 1024
"""Raw (still compressed) bytes read beyond ``max_body``: compressed data is smaller than what
it inflates to, so this bounds a stream that inflates to nothing."""


class RedirectError(RemoteProtocolError):
    """A redirect that cannot be followed; the message is the summary to show."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A final answer, its body read within the cap."""

    status_code: int
    reason: str
    headers: list[tuple[str, str]]
    """As received, names in lower case."""
    body: bytes
    """Decoded, at most ``max_body`` bytes."""
    truncated: bool
    """The body had more than ``max_body`` bytes (the rest was not read)."""
    redirects: int
    url: Url
    """Where the answer came from (after redirects)."""
    network_stream: NetworkStream | None

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower case), repeated ones joined as httpx does."""
        values = [value for key, value in self.headers if key == name]
        if not values:
            return None
        return values[0] if len(values) == 1 else ", ".join(values)

    @property
    def is_success(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body as text (UTF-8; undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic auth."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class HttpClient:
    """Requests over one :class:`~opsdash.transport.Wire` with default headers.

    First-hop requests are serialised once and kept (a round sends the same ones every time).
    """

    def __init__(
        self,
        wire: Wire,
        *,
        headers: Mapping[str, str] | None = None,
        max_redirects: int = 5,
    ) -> None:
        self.wire = wire
        # The default headers are fixed here: what is derived from them below, and the first
        # hops kept in _prepared, would not follow a later change.
        self._headers = dict(headers or {})
        self.max_redirects = max_redirects
        self._prepared: dict[tuple[Any, ...], Request] = {}
        self._default_items = list(self._headers.items())
        self._defaults_authorize = _names_authorization(self._headers)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the wire's connections."""
        await self.wire.aclose()

    def get(
        self,
        url: str,
        *,
        max_body: int,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> Coroutine[Any, Any, Answer]:
        """GET ``url`` (awaited as :meth:`request`, with no coroutine of its own around it);
        see :meth:`request`."""
        return self.request(
            "GET",
            url,
            max_body=max_body,
            headers=headers,
            auth=auth,
            follow_redirects=follow_redirects,
        )

    async def post(
        self,
        url: str,
        *,
        json: Any,
        max_body: int,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
    ) -> Answer:
        """POST ``json`` to ``url``; see :meth:`request`."""
        body = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        merged = {"Content-Type": "application/json", **(headers or {})}
        return await self.request(
            "POST",
            url,
            body=body,
            max_body=max_body,
            headers=merged,
            follow_redirects=follow_redirects,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        max_body: int,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        auth: tuple[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> Answer:
        """Send the request and read at most ``max_body`` decoded bytes of its final answer,
        following redirects (their bodies unread) when asked."""
        request = self._first(method, url, headers, body, auth)
        visited: set[str] | None = None  # made at the first redirect: most answers have none
        redirects = 0
        while True:
            response = await self.wire.send(request)
            try:
                location = _location(response) if follow_redirects else None
                if location is None:
                    content, truncated = await read_capped(response, max_body)
                    return Answer(
                        status_code=response.status_code,
                        reason=response.reason,
                        headers=response.headers,
                        body=content,
                        truncated=truncated,
                        redirects=redirects,
                        url=request.url,
                        network_stream=response.network_stream,
                    )
            finally:
                response.close()  # a redirect's body, or the rest of a capped one: unread
            redirects += 1
            if visited is None:
                visited = {request.url.shown}
            request = self._next_hop(request, response.status_code, location)
            if request.url.shown in visited:
                raise RedirectError(f"redirect loop (after {redirects} redirects)")
            if redirects > self.max_redirects:
                raise RedirectError(f"too many redirects (more than {self.max_redirects})")
            visited.add(request.url.shown)

    def _first(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        body: bytes,
        auth: tuple[str, str] | None,
    ) -> Request:
        key = None
        if not body:
            key = (method, url, tuple(headers.items()) if headers else (), auth)
            cached = self._prepared.get(key)
            if cached is not None:
                return cached
        parsed = parse_url(url)
        if not headers and (self._defaults_authorize or (auth is None and parsed.username is None)):
            # Most requests: the default headers as they are (build_request copies them).
            request = build_request(method, parsed, self._default_items, body)
        else:
            request = build_request(method, parsed, self._headers_of(parsed, headers, auth), body)
        if key is not None and len(self._prepared) < 100_000:
            self._prepared[key] = request
        return request

    def _headers_of(
        self, parsed: Url, headers: Mapping[str, str] | None, auth: tuple[str, str] | None
    ) -> list[tuple[str, str]]:
        """The default headers with the request's own over them (names are
        case-insensitive), and Basic auth from ``auth`` or the URL's credentials unless one of
        them names an ``Authorization``."""
        merged = dict(self._headers)
        if headers:
            lowered = {name.lower() for name in headers}
            merged = {k: v for k, v in merged.items() if k.lower() not in lowered}
            merged.update(headers)
        if not _names_authorization(merged):
            if auth is not None:
                merged["Authorization"] = basic_auth(*auth)
            elif parsed.username is not None:
                merged["Authorization"] = basic_auth(parsed.username, parsed.password or "")
        return list(merged.items())

    def _next_hop(self, request: Request, status: int, location: str) -> Request:
        try:
            target = parse_url(urljoin(request.url.shown, location))
        except Exception:
            from opsdash.redact import redact_url

            shown = redact_url(urljoin(request.url.shown, location))
            raise RedirectError(f"redirect to an unsupported URL: {shown}") from None
        method, body = request.method, request.body
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", b""  # as browsers and httpx do
        headers = [
            (name, value)
            for name, value in request.headers
            if name.lower() not in ("host", "content-length")
            and not (body == b"" and name.lower() == "content-type")
            and not (name.lower() == "authorization" and not _same_origin(request.url, target))
        ]
        return build_request(method, target, headers, body)


def _names_authorization(headers: Mapping[str, str]) -> bool:
    return any(name.lower() == "authorization" for name in headers)


def _same_origin(old: Url, new: Url) -> bool:
    if old.origin == new.origin:
        return True
    # As httpx: an upgrade to https on the same host with default ports keeps the credentials.
    return (
        old.scheme == "http"
        and old.port == 80
        and new.scheme == "https"
        and new.port == 443
        and old.host == new.host
    )


def _location(response: Response) -> str | None:
    if response.status_code not in _REDIRECTS:
        return None
    for name, value in response.headers:
        if name == "location":
            return value
    return None


def _encoding(response: Response) -> str | None:
    for name, value in response.headers:
        if name == "content-encoding":
            coding = value.strip().lower()
            return coding if coding in ("gzip", "deflate", "x-gzip") else None
    return None


async def read_capped(response: Response, max_body: int) -> tuple[bytes, bool]:
    """At most ``max_body`` bytes of the body, inflated when the server compressed it, and
    whether there was more. Inflating stops at the cap: a bomb's rest is never expanded."""
    encoding = _encoding(response)
    chunks: list[bytes] = []
    size = 0
    if encoding is None:
        while True:
            chunk = await response.read_chunk()
            if not chunk:
                return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), False
            chunks.append(chunk)
            size += len(chunk)
            if size > max_body:
                return b"".join(chunks)[:max_body], True
            if size == max_body and response.complete:
                return b"".join(chunks), False
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
    raw = 0
    while True:
        chunk = await response.read_chunk()
        if not chunk:
            try:
                tail = inflater.flush()
            except zlib.error:
                tail = b""
            chunks.append(tail[: max_body - size + 1])
            size += len(chunks[-1])
            break
        raw += len(chunk)
        try:
            # Never more than one byte past the cap: that byte says "there was more".
            out = inflater.decompress(chunk, max_body - size + 1)
        except zlib.error:
            return b"".join(chunks)[:max_body], False  # not really compressed: what was read
        chunks.append(out)
        size += len(out)
        if size > max_body or inflater.unconsumed_tail or raw > max_body + _RAW_SLACK:
            return b"".join(chunks)[:max_body], True
    content = b"".join(chunks)
    return content[:max_body], size > max_body


class HttpxWire:
    """A :class:`~opsdash.transport.Wire` over an httpx transport: how tests put respx or
    ``httpx.MockTransport`` under the one client (everything above the wire runs as in
    production). Also the way out through an HTTP proxy (notifications)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    async def send(self, request: Request) -> Response:
        import httpx

        outgoing = httpx.Request(
            request.method,
            request.url.shown,
            headers=[(n, v) for n, v in request.headers if n.lower() != "host"],
            content=request.body,
        )
        return _HttpxResponse(await self.transport.handle_async_request(outgoing))

    async def aclose(self) -> None:
        await self.transport.aclose()


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.reason = response.reason_phrase
        self.headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in response.headers.raw
        ]
        self._iterator = response.stream.__aiter__()  # type: ignore[union-attr]
        self._done = False

    @property
    def network_stream(self) -> NetworkStream | None:
        stream = self._response.extensions.get("network_stream")
        return None if stream is None else NetworkStream(_ExtraInfo(stream))  # type: ignore[arg-type]

    async def read_chunk(self) -> bytes:
        while not self._done:
            try:
                chunk = await self._iterator.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            if chunk:
                return bytes(chunk)
        return b""

    @property
    def complete(self) -> bool:
        return self._done

    def close(self) -> None:
        # httpx streams close asynchronously: the close is scheduled (an in-memory stream has
        # nothing to release; a real one gives its connection back).
        self._done = True
        aclose = getattr(self._response.stream, "aclose", None)
        if aclose is not None:
            task = asyncio.ensure_future(aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)


_closing: set[asyncio.Future[Any]] = set()


class _ExtraInfo:
    """An httpcore network stream seen as an asyncio transport (``get_extra_info``)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def get_extra_info(self, name: str) -> Any:
        return self._stream.get_extra_info(name)

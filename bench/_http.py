"""The portal benchmark's load generator client: HTTP/1.1 over one keep-alive connection,
on asyncio, with httptools' C parser reading the answers.

The load generator shares the 2 cores with the server it measures, so what it spends is
taken from the server. httpx cost it 1.4 ms of CPU per request, more than the server spent
answering the bare endpoint (1.0 ms): its client used 93% of a core. This one sends
prepared bytes and lets httptools (the parser uvicorn itself uses) find the status,
headers and body.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httptools


@dataclass(slots=True)
class Response:
    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes


@dataclass(slots=True)
class _Reading:
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)


class _Answers(asyncio.Protocol):
    """Feeds what arrives to the parser; completes the waiting request's future."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.reading = _Reading()
        self.lost: Exception | None = None

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("the server closed the connection")
        self._fail(self.lost)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.reading = _Reading()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.reading.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.reading.body.append(body)

    def on_message_complete(self) -> None:
        answer = Response(
            self.parser.get_status_code(), self.reading.headers, b"".join(self.reading.body)
        )
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)


class Client:
    """One connection, one request at a time, as one browser tab."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._transport: asyncio.Transport | None = None
        self._answers: _Answers | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> Response:
        if self._transport is None or self._answers is None or self._answers.lost:
            await self._connect()
        assert self._transport is not None
        assert self._answers is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._answers.waiter = waiter
        self._transport.write(data)
        async with asyncio.timeout(self.timeout):
            return await waiter

    async def _connect(self) -> None:
        await self.aclose()
        loop = asyncio.get_running_loop()
        transport, answers = await loop.create_connection(_Answers, self.host, self.port)
        self._transport, self._answers = transport, answers

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._answers = None


# What a request can fail with: the connection, the parser, or the time limit.
ERRORS = (OSError, httptools.HttpParserError, TimeoutError)

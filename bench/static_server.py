"""A canned-response HTTP server (uvloop, no framework, no parsing beyond counting requests):
the load generator's own ceiling, i.e. how many requests wrk can push through this machine's
loopback when the server costs almost nothing. Run it with `python -m bench.static_server PORT`.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"key":"mug","name":"Mug","prices":[{"unit_amount":1290,"currency":"EUR"}]}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class Canned(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        # wrk's GETs have no body: one blank line ends one request.
        data = self.pending + data
        count = data.count(b"\r\n\r\n")
        self.pending = data[data.rfind(b"\r\n\r\n") + 4 :] if count else data
        if count:
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Canned, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(port: int) -> None:
    try:
        import uvloop

        uvloop.run(serve(port))
    except ImportError:
        asyncio.run(serve(port))


if __name__ == "__main__":
    main(int(sys.argv[1]))

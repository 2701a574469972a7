"""A stand-in Docker daemon that answers `docker run --rm IMAGE CMD` at once, with no container.

The docker CLI against it takes only its own time (start-up, flags, its calls and their
round trips), so its `run` time is the floor under any daemon's: a daemon's ratio to dockerd
cannot exceed dockerd's time over this one. Measurement only, not a daemon.

    python3 instant_docker.py SOCKET
"""
import asyncio
import json
import os
import sys

CONTAINER_ID = "0" * 64
attached = []  # hijacked attach streams, closed at the start (the process "exited")
waiting = []   # wait requests, answered at the start


def head(status, headers):
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def serve(reader, writer):
    while True:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        lines = request.decode().split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
        if int(headers.get("content-length", "0")):
            await reader.readexactly(int(headers["content-length"]))
        path = target.split("?")[0]
        if path.endswith("/_ping"):
            writer.write(head("200 OK", {"Api-Version": "1.41", "Ostype": "linux", "Content-Length": 2}))
            if method != "HEAD":
                writer.write(b"OK")
        elif path.endswith("/containers/create"):
            body = json.dumps({"Id": CONTAINER_ID, "Warnings": []}).encode()
            writer.write(head("201 Created", {"Content-Type": "application/json", "Content-Length": len(body)}) + body)
        elif path.endswith("/attach"):
            writer.write(head("101 UPGRADED", {"Content-Type": "application/vnd.docker.raw-stream",
                                               "Connection": "Upgrade", "Upgrade": "tcp"}))
            await writer.drain()
            attached.append(writer)
            return
        elif path.endswith("/wait"):
            writer.write(head("200 OK", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
            await writer.drain()
            waiting.append(writer)
            return
        elif path.endswith("/start"):
            writer.write(head("204 No Content", {}))
            await writer.drain()
            for w in attached:
                w.close()
            body = b'{"StatusCode":0}\n'
            for w in waiting:
                w.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
                w.close()
            attached.clear()
            waiting.clear()
        else:
            writer.write(head("404 Not Found", {"Content-Length": 0}))
        await writer.drain()


async def main(socket):
    if os.path.exists(socket):
        os.unlink(socket)
    server = await asyncio.start_unix_server(serve, socket)
    async with server:
        await server.serve_forever()


asyncio.run(main(sys.argv[1]))

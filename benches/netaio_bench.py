"""netaio 0.0.9 round trips per second for `tessera wire bench --baseline`.

A netaio TCPServer with an echo handler runs in a child process; this process
runs N netaio TCPClients (asyncio), each sending 64-byte REQUEST_URI echo
requests back to back over plain TCP (netaio has no TLS). Prints one JSON
object: {"c1_per_s": ..., "c32_per_s": ...}.
Usage: netaio_bench.py SECONDS CLIENTS[,CLIENTS...]
"""
import asyncio
import json
import multiprocessing
import socket
import sys
import time

from netaio import Body, Message, MessageType, TCPClient, TCPServer, make_respond_uri_msg

PAYLOAD = b"x" * 64


def serve(port):
    async def main():
        server = TCPServer(port=port, interface="127.0.0.1")
        server.logger.disabled = True

        @server.on((MessageType.REQUEST_URI, b"echo"))
        def echo(message, writer):
            return make_respond_uri_msg(message.body.content, b"echo")

        await server.start()

    asyncio.run(main())


async def run_clients(port, clients, seconds):
    connected = []
    for _ in range(clients):
        client = TCPClient("127.0.0.1", port)
        client.logger.disabled = True
        await client.connect()
        connected.append(client)
    request = Message.prepare(Body.prepare(PAYLOAD, b"echo"), MessageType.REQUEST_URI)
    done = 0
    deadline = time.monotonic() + seconds

    async def loop(client):
        nonlocal done
        while time.monotonic() < deadline:
            await client.send(request)
            reply = await client.receive_once()
            assert reply is not None and reply.body.content == PAYLOAD
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(c) for c in connected))
    elapsed = time.monotonic() - started
    for client in connected:
        await client.close()
    return done / elapsed


def main():
    seconds = float(sys.argv[1])
    counts = [int(c) for c in sys.argv[2].split(",")]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)
        results = {}
        for clients in counts:
            results[f"c{clients}_per_s"] = asyncio.run(run_clients(port, clients, seconds))
        print(json.dumps(results))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()

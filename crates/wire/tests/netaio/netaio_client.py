"""A real netaio 0.0.9 client checks tessera-wire's netaio-compat server.

Usage: netaio_client.py PORT [SECRET]. Prints one JSON line; exits 0 when
every check of the echo contract passed, 1 otherwise (naming the check).
"""
import asyncio
import json
import sys

from netaio import Body, HMACAuthPlugin, Message, MessageType, TCPClient


def fail(what, message):
    got = None if message is None else (int(message.header.message_type), message.body.uri, message.body.content)
    print(json.dumps({"ok": False, "check": what, "got": repr(got)}))
    sys.exit(1)


async def main(port, secret):
    plugin = HMACAuthPlugin({"secret": secret}) if secret else None
    client = TCPClient("127.0.0.1", port, auth_plugin=plugin)
    await client.connect()

    async def send(kind, uri, content=b""):
        await client.send(Message.prepare(Body.prepare(content, uri), kind))

    async def receive():
        return await asyncio.wait_for(client.receive_once(), 10)

    await send(MessageType.REQUEST_URI, b"echo", b"hello from netaio")
    reply = await receive()
    if reply is None or reply.header.message_type != MessageType.RESPOND_URI \
            or reply.body.uri != b"echo" or reply.body.content != b"hello from netaio":
        fail("echo", reply)

    await send(MessageType.REQUEST_URI, b"no/such/uri")
    reply = await receive()
    if reply is None or reply.header.message_type != MessageType.NOT_FOUND or reply.body.uri != b"no/such/uri":
        fail("not_found", reply)

    await send(MessageType.SUBSCRIBE_URI, b"news")
    reply = await receive()
    if reply is None or reply.header.message_type != MessageType.CONFIRM_SUBSCRIBE or reply.body.uri != b"news":
        fail("subscribe", reply)

    await send(MessageType.PUBLISH_URI, b"news", b"headline")
    first, second = await receive(), await receive()
    if first is None or first.header.message_type != MessageType.NOTIFY_URI or first.body.content != b"headline":
        fail("notify", first)
    if second is None or second.header.message_type != MessageType.OK or second.body.uri != b"news":
        fail("publish_ok", second)

    checks = ["echo", "not_found", "subscribe", "notify", "publish_ok"]
    if secret:
        # A client without the secret is answered AUTH_ERROR, with the request's uri.
        stranger = TCPClient("127.0.0.1", port)
        await stranger.connect()
        await stranger.send(Message.prepare(Body.prepare(b"x", b"echo"), MessageType.REQUEST_URI))
        reply = await asyncio.wait_for(stranger.receive_once(), 10)
        if reply is None or reply.header.message_type != MessageType.AUTH_ERROR or reply.body.uri != b"echo":
            fail("auth_error", reply)
        checks.append("auth_error")
    print(json.dumps({"ok": True, "checks": checks}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))

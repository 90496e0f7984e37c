"""A real netaio 0.0.9 server with the echo contract, for tessera-wire's
netaio-compat client. Usage: netaio_server.py PORT [SECRET]. Prints "ready"
once it listens; runs until killed.
"""
import asyncio
import sys

from netaio import Body, HMACAuthPlugin, Message, MessageType, TCPServer, make_ok_msg, make_respond_uri_msg


async def main(port, secret):
    plugin = HMACAuthPlugin({"secret": secret}) if secret else None
    server = TCPServer(port=port, interface="127.0.0.1", auth_plugin=plugin)

    @server.on((MessageType.REQUEST_URI, b"echo"))
    def echo(message, writer):
        return make_respond_uri_msg(message.body.content, b"echo")

    @server.on(MessageType.SUBSCRIBE_URI)
    def subscribe(message, writer):
        server.subscribe(message.body.uri, writer)
        return Message.prepare(Body.prepare(b"", message.body.uri), MessageType.CONFIRM_SUBSCRIBE)

    @server.on(MessageType.PUBLISH_URI)
    async def publish(message, writer):
        notice = Message.prepare(Body.prepare(message.body.content, message.body.uri), MessageType.NOTIFY_URI)
        await server.notify(message.body.uri, notice)
        return make_ok_msg(uri=message.body.uri)

    task = asyncio.create_task(server.start())
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))

#!/usr/bin/env python3
"""A sylkRTC-2 chat client, as sylkrtc.js's messaging half behaves, for the end-to-end tests.

usage: sylkrtc_chat.py --url WS_URL --account AOR --ha1 HA1 --to AOR --text TEXT
                       [--expect-from AOR] [--timeout S]

Connects, adds and registers the account, sends TEXT to --to (account-message) and waits
for its disposition-notification; then, with --expect-from, waits for a message from that
address and acknowledges it as sylkrtc.js does (account-disposition-notification
`delivered`, since it asks for positive-delivery when it is CPIM); finally replays the
history (account-sync-conversations). Prints `EVENT <json>` per message from the gateway
and one `RESULT <json>` (exit 0), or `RESULT {"error": ...}` (exit 1).
"""

import argparse
import asyncio
import datetime
import json
import sys
import uuid

import websockets


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.pending = {}
        self.events = asyncio.Queue()

    async def reader(self):
        async for text in self.ws:
            msg = json.loads(text)
            print("EVENT " + json.dumps(msg), flush=True)
            if msg.get("sylkrtc") in ("ack", "error"):
                fut = self.pending.pop(msg.get("transaction"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            else:
                await self.events.put(msg)

    async def request(self, kind, **fields):
        tx = str(uuid.uuid4())
        fut = asyncio.get_event_loop().create_future()
        self.pending[tx] = fut
        await self.ws.send(json.dumps(dict(sylkrtc=kind, transaction=tx, **fields)))
        reply = await asyncio.wait_for(fut, 10)
        if reply["sylkrtc"] != "ack":
            raise RuntimeError("%s failed: %s" % (kind, reply.get("error")))
        return reply

    async def event(self, predicate, timeout):
        deadline = asyncio.get_event_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_event_loop().time()
            msg = await asyncio.wait_for(self.events.get(), max(left, 0.01))
            if predicate(msg):
                return msg


async def run(args):
    result = {}
    async with websockets.connect(args.url, subprotocols=["sylkRTC-2"]) as ws:
        client = Client(ws)
        reader = asyncio.create_task(client.reader())
        await client.event(lambda m: m.get("sylkrtc") == "ready-event", 5)
        await client.request("account-add", account=args.account, password=args.ha1)
        await client.request("account-register", account=args.account)
        reg = await client.event(
            lambda m: m.get("event") == "registration-state" and m.get("state") != "registering", 10)
        result["registration"] = reg.get("state")
        message_id = str(uuid.uuid4())
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        await client.request(
            "account-message", account=args.account, uri=args.to, message_id=message_id,
            content=args.text, content_type="text/plain", timestamp=now.replace("+00:00", "Z"))
        disp = await client.event(
            lambda m: m.get("event") == "disposition-notification" and m.get("message_id") == message_id,
            args.timeout)
        result["sent"] = {"state": disp.get("state"), "code": disp.get("code"), "reason": disp.get("reason")}
        if args.expect_from:
            print("WAITING", flush=True)
            msg = await client.event(
                lambda m: m.get("event") == "message" and m["sender"]["uri"] == args.expect_from,
                args.timeout)
            result["received"] = {k: msg.get(k) for k in ("content", "content_type", "message_id")}
            if "positive-delivery" in (msg.get("disposition_notification") or []):
                await client.request(
                    "account-disposition-notification", account=args.account, uri=args.expect_from,
                    message_id=msg["message_id"], state="delivered", timestamp=msg["timestamp"])
        await client.request("account-sync-conversations", account=args.account)
        synced = await client.event(lambda m: m.get("event") == "sync-conversations", 10)
        result["history"] = [
            {"direction": m["direction"], "content": m["content"], "state": m["state"]}
            for m in synced["messages"] if not m["content_type"].startswith("application/sylk-")
        ]
        reader.cancel()
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--ha1", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--expect-from")
    p.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()
    try:
        result = asyncio.run(run(args))
    except Exception as e:  # noqa: BLE001 - reported to the test
        print("RESULT " + json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
        sys.exit(1)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A sylkRTC-2 client with real WebRTC media (aiortc), for the gateway's end-to-end tests.

usage:
  sylkrtc_peer.py call   --ws URL --account AOR --ha1 HEX --to URI [--seconds S] [--hz HZ]
  sylkrtc_peer.py answer --ws URL --account AOR --ha1 HEX [--seconds S] [--hz HZ]
                         [--register-only-after-ready]

call:   adds the account, sends session-create with aiortc's offer (candidates trickled as
        sylkrtc.js does, then end-of-candidates), applies the `accepted` answer, measures the
        audio that comes back for S seconds, then session-terminate.
answer: adds and registers the account, waits for incoming-session, answers with aiortc's
        answer, measures the received audio for S seconds (or until `terminated`).

Every sylkRTC message received is printed as `EVENT <json>`; the last line is
`RESULT <json>` with frames/samples/rms/freq of the received audio (freq from zero
crossings) and the session's states. Exit status 0 when the script ran to the end.

Loopback only: host candidates limited to 127.0.0.1 and an EMPTY ICE server list, so nothing
contacts a public STUN server.
"""
import argparse
import asyncio
import fractions
import json
import math
import struct
import sys
import uuid

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

import av  # noqa: E402
import websockets  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp  # noqa: E402,F401


class Sine(MediaStreamTrack):
    """48 kHz mono s16 sine in 20 ms frames, paced in real time like a microphone."""

    kind = "audio"

    def __init__(self, hz):
        super().__init__()
        self.hz, self.pts, self.start = hz, 0, None

    async def recv(self):
        loop = asyncio.get_event_loop()
        if self.start is None:
            self.start = loop.time()
        delay = self.start + self.pts / 48000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        n = 960
        samples = [int(8000 * math.sin(2 * math.pi * self.hz * (self.pts + i) / 48000)) for i in range(n)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(struct.pack("<%dh" % n, *samples))
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.pts, fractions.Fraction(1, 48000)
        self.pts += n
        return frame


class Meter:
    """Counts decoded frames and estimates the dominant frequency by zero crossings."""

    def __init__(self):
        self.frames = self.samples = self.crossings = 0
        self.sumsq = 0.0
        self.rate = 0
        self.prev = 0

    def feed(self, frame):
        channels = len(frame.layout.channels)
        raw = bytes(frame.planes[0])[: frame.samples * 2 * channels]
        values = struct.unpack("<%dh" % (len(raw) // 2), raw)[::channels]
        self.rate = frame.sample_rate
        self.frames += 1
        for v in values:
            self.sumsq += v * v
            if (v >= 0) != (self.prev >= 0):
                self.crossings += 1
            self.prev = v
        self.samples += len(values)

    def summary(self):
        rms = math.sqrt(self.sumsq / self.samples) if self.samples else 0.0
        freq = self.crossings / 2 / (self.samples / self.rate) if self.samples and self.rate else 0.0
        return {"frames": self.frames, "samples": self.samples, "rms": round(rms, 1), "freq": round(freq, 1)}


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.pending = {}
        self.events = asyncio.Queue()
        self.states = []

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
            if msg.get("sylkrtc") == "session-event" and msg.get("event") == "state":
                self.states.append(msg.get("state"))
            if predicate(msg):
                return msg


def state_is(session, *states):
    return lambda m: m.get("sylkrtc") == "session-event" and m.get("session") == session and m.get("state") in states


async def measure(pc, meter, client, session, seconds):
    """Collects audio until `seconds` have passed or the session is terminated."""
    try:
        await client.event(state_is(session, "terminated"), seconds)
        return "terminated"
    except asyncio.TimeoutError:
        return pc.connectionState


def new_pc(hz, meter):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(Sine(hz), direction="sendrecv")

    @pc.on("track")
    def on_track(track):
        async def pull():
            skipped = 0
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                # Skip jitter-buffer start-up and codec warm-up.
                if skipped < 10:
                    skipped += 1
                    continue
                meter.feed(frame)

        asyncio.ensure_future(pull())

    return pc


async def trickle(client, session, sdp):
    """Sends the SDP's candidates one by one, then end-of-candidates, as sylkrtc.js does.

    A call the far end refuses at once (a 488, say) can end while candidates are still being
    trickled; the gateway then answers the late trickle with an error, which is no failure of
    the client: trickling stops there and the caller reads the terminated state.
    """
    mid = "0"
    candidates = []
    for line in sdp.splitlines():
        if line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            candidates.append([{"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": 0}])
    candidates.append([])
    for c in candidates:
        try:
            await client.request("session-trickle", session=session, candidates=c)
        except RuntimeError as e:
            if "is terminated" in str(e):
                return
            raise


def strip_candidates(sdp):
    """The offer/answer as sylkrtc.js sends it: taken before gathering, so no candidates."""
    return "\r\n".join(
        l for l in sdp.splitlines() if not l.startswith("a=candidate:") and l != "a=end-of-candidates"
    ) + "\r\n"


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["call", "answer"])
    p.add_argument("--ws", required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--ha1", required=True)
    p.add_argument("--to")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--hz", type=float, default=440.0)
    args = p.parse_args()

    result = {"mode": args.mode}
    meter = Meter()
    async with websockets.connect(args.ws, subprotocols=["sylkRTC-2"], max_size=2**20) as ws:
        client = Client(ws)
        reader = asyncio.ensure_future(client.reader())
        ready = await client.event(lambda m: m.get("sylkrtc") == "ready-event", 10)
        result["ready"] = bool(ready)
        await client.request("account-add", account=args.account, password=args.ha1)
        pc = new_pc(args.hz, meter)
        if args.mode == "call":
            session = str(uuid.uuid4())
            await pc.setLocalDescription(await pc.createOffer())
            full = pc.localDescription.sdp
            await client.request(
                "session-create", account=args.account, session=session, uri=args.to, sdp=strip_candidates(full)
            )
            await trickle(client, session, full)
            accepted = await client.event(state_is(session, "accepted", "terminated"), 20)
            if accepted.get("state") != "accepted":
                result.update(states=client.states, error="not accepted: %s" % accepted.get("reason"))
                print("RESULT " + json.dumps(result), flush=True)
                return 1
            await pc.setRemoteDescription(RTCSessionDescription(sdp=accepted["sdp"], type="answer"))
            await client.event(state_is(session, "established"), 15)
            end = await measure(pc, meter, client, session, args.seconds)
            if end != "terminated":
                await client.request("session-terminate", session=session)
                await client.event(state_is(session, "terminated"), 10)
        else:
            await client.request("account-register", account=args.account)
            await client.event(lambda m: m.get("state") == "registered", 10)
            print("REGISTERED", flush=True)
            incoming = await client.event(lambda m: m.get("event") == "incoming-session", 30)
            session = incoming["session"]
            result["originator"] = incoming.get("originator")
            result["offer_has_sendrecv"] = "a=sendrecv" in incoming["sdp"]
            result["offer_has_end_of_candidates"] = "a=end-of-candidates" in incoming["sdp"]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=incoming["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            full = pc.localDescription.sdp
            await client.request("session-answer", session=session, sdp=strip_candidates(full))
            await trickle(client, session, full)
            await client.event(state_is(session, "established", "terminated"), 15)
            end = await measure(pc, meter, client, session, args.seconds)
            if end != "terminated":
                await client.request("session-terminate", session=session)
                await client.event(state_is(session, "terminated"), 10)
        result.update(meter.summary())
        result["states"] = client.states
        await pc.close()
        reader.cancel()
    print("RESULT " + json.dumps(result), flush=True)
    return 0


sys.exit(asyncio.run(main()))

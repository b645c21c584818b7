#!/usr/bin/env python3
"""aiortc as an independent WebRTC peer for media/tests/webrtc_aiortc_interop.rs.

usage: peer.py offer|answer SECONDS

offer:  print our offer SDP, read the answer SDP from stdin.
answer: read an offer SDP from stdin, print our answer SDP.
Each SDP is sent as its lines followed by a line with a single ".".

Sends a 440 Hz sine on a sendrecv audio track, decodes whatever arrives on the remote
track for SECONDS once connected, then prints one line:
  RESULT frames=N samples=N rms=F freq=F state=S
(freq is estimated from zero crossings of the decoded audio).

Loopback only: host candidates limited to 127.0.0.1 (aioice patched) and an EMPTY ICE
server list, so nothing contacts a public STUN server.
"""
import asyncio
import fractions
import math
import struct
import sys

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

import av  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)


class Sine(MediaStreamTrack):
    """48 kHz mono s16 sine, 20 ms frames."""

    kind = "audio"

    def __init__(self, hz=440.0):
        super().__init__()
        self.hz, self.pts = hz, 0
        self.start = None

    async def recv(self):
        loop = asyncio.get_event_loop()
        if self.start is None:
            self.start = loop.time()
        # Pace in real time, as a microphone would.
        due = self.start + self.pts / 48000
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        n = 960
        samples = [int(8000 * math.sin(2 * math.pi * self.hz * (self.pts + i) / 48000)) for i in range(n)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(struct.pack("<%dh" % n, *samples))
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.pts, fractions.Fraction(1, 48000)
        self.pts += n
        return frame


def read_sdp():
    lines = []
    for line in sys.stdin:
        line = line.rstrip("\r\n")
        if line == ".":
            break
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def write_sdp(sdp):
    for line in sdp.splitlines():
        print(line)
    print(".", flush=True)


class Meter:
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

    def line(self, state):
        rms = math.sqrt(self.sumsq / self.samples) if self.samples else 0.0
        freq = self.crossings / 2 / (self.samples / self.rate) if self.samples and self.rate else 0.0
        return "RESULT frames=%d samples=%d rms=%.1f freq=%.1f state=%s" % (
            self.frames, self.samples, rms, freq, state)


async def main():
    mode, seconds = sys.argv[1], float(sys.argv[2])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(Sine(), direction="sendrecv")
    meter = Meter()
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            connected.set()

    @pc.on("track")
    def on_track(track):
        async def pull():
            # Skip the first frames: jitter buffer start-up and codec warm-up.
            skipped = 0
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                if skipped < 10:
                    skipped += 1
                    continue
                meter.feed(frame)

        asyncio.ensure_future(pull())

    loop = asyncio.get_event_loop()
    if mode == "offer":
        await pc.setLocalDescription(await pc.createOffer())
        write_sdp(pc.localDescription.sdp)
        answer = await loop.run_in_executor(None, read_sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    else:
        offer = await loop.run_in_executor(None, read_sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        write_sdp(pc.localDescription.sdp)
    try:
        await asyncio.wait_for(connected.wait(), 15)
    except asyncio.TimeoutError:
        print(meter.line(pc.connectionState), flush=True)
        await pc.close()
        return 1
    await asyncio.sleep(seconds)
    print(meter.line(pc.connectionState), flush=True)
    await pc.close()
    return 0


sys.exit(asyncio.run(main()))

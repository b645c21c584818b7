#!/usr/bin/env python3
"""A sylkRTC-2 (or, with --v1, sylkRTC-1) client with real WebRTC media (aiortc), for the
gateway's end-to-end tests.

usage:
  sylkrtc_peer.py call   --ws URL --account AOR --ha1 HEX --to URI [--seconds S] [--hz HZ]
                         [VIDEO OPTIONS]
  sylkrtc_peer.py answer --ws URL --account AOR --ha1 HEX [--seconds S] [--hz HZ]
                         [--register-only-after-ready] [VIDEO OPTIONS]
  sylkrtc_peer.py read-frame IMAGE

video options (audio-only without --video):
  --video               also send a video track (sendrecv): a 320x240 test pattern at
                        --fps frames/s (default 30) with the frame counter painted as a
                        barcode, encoded by aiortc (VP8 or H.264)
  --video-codec NAME    offer only this video codec (VP8 or H264); default aiortc's list
  --pli-every S         send an RTCP PLI for the received video every S seconds
  --fir-every S         send an RTCP FIR (RFC 5104) for the received video every S seconds
  --lose-video-every S  drop one outgoing video RTP packet every S seconds (network loss:
                        the peer's decoder should ask for a key frame)

chat option (our MSRP extension, README "Chat sessions"):
  --chat TEXT           the account takes chat (`account-add chat: true`), a call offers
                        media ["audio", "chat"] (video too with --video), and once the
                        session is established TEXT goes out as a text/plain session-message;
                        RESULT gets `chat`: the session's `message`,
                        `disposition-notification` and `chat` (the chat failed or ended, the
                        call goes on) events, and the incoming session's `media`

call:   adds the account, sends session-create with aiortc's offer (candidates trickled as
        sylkrtc.js does, then end-of-candidates), applies the `accepted` answer, measures the
        audio that comes back for S seconds (then runs --steps), then session-terminate.

steps (--steps JSON list, run once established, each recorded in RESULT `steps`):
  {"measure": S}           audio (and video) received during S seconds, as its own phase,
                           with the audio RTP payload types that arrived (`payload_types`)
  {"update": KIND}         session-update with a new offer: hold (sendonly), unhold
                           (sendrecv), inactive, add-video (a test-pattern video track),
                           remove-video (its transceiver stopped), codec:NAME (audio
                           offered with NAME only, e.g. codec:PCMU); waits for the `update`
                           event and applies an `accepted` answer; audio is then sent with
                           the first codec agreed (`sending`), as browsers do
  {"answer-update": T}     waits up to T s for `update` `received` and answers it (a
                           changed codec is followed; `answer_formats`: the answer's audio)
  {"dtmf": "123"}          session-dtmf-info (no duration, as sylkrtc.js 1.8 sends it)
  {"say": TEXT}            session-message TEXT (text/plain; over the chat with --chat)
  {"transfer": URI}        session-transfer; waits for `transfer` accepted/failed or the end
  {"wait": NAME, "timeout": T}  waits for a session event NAME (dtmf, transfer-request, ...)
  {"follow-transfer": S}   waits (20 s) for `transfer-request`, calls its `uri` with a new
                           session (session-create `refer` naming this one), measures that
                           call's audio for S seconds, ends it; records whether this
                           session was terminated meanwhile (the transferor hung up)
  {"sleep": S}
--header NAME:VALUE (repeatable) goes into session-create/session-answer `headers`;
--prefix P (repeatable) into account-add `incoming_header_prefixes`;
--auto-answer-updates answers every `update` `received` at once (answer mode too).
--device-token JSON (answer mode): account-devicetoken with these fields before registering.
answer: adds and registers the account, waits for incoming-session, answers with aiortc's
        answer, measures the received audio for S seconds (or until `terminated`).
read-frame: prints `RESULT {width, height, counter}` of an image file, e.g. a SIP peer's
        snapshot of the video it received: the counter --video painted, null if unreadable.

Every sylkRTC message received is printed as `EVENT <json>`; the last line is
`RESULT <json>` with frames/samples/rms/freq of the received audio (freq from zero
crossings) and the session's states. Exit status 0 when the script ran to the end.
With --video, RESULT also has `video`: decoded frames and their size, how many carried a
readable painted counter (and the counters' range), key frames sent and received, PLI/FIR
sent and received (RTCP feedback that reached our video sender, i.e. addressed to its SSRC),
and the RTP payloads received that are byte-identical to payloads we sent (an echo).

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
import threading
import uuid

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

import av  # noqa: E402
import websockets  # noqa: E402
import aiortc.codecs  # noqa: E402
import aiortc.rtcrtpreceiver  # noqa: E402
import aiortc.rtcrtpsender  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcdtlstransport import RTCDtlsTransport  # noqa: E402
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, is_rtcp  # noqa: E402
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

    def snapshot(self):
        return (self.frames, self.samples, self.crossings, self.sumsq)

    def since(self, snap):
        """The summary of what arrived after `snap`."""
        frames, samples, crossings, sumsq = (a - b for a, b in zip(self.snapshot(), snap))
        rms = math.sqrt(sumsq / samples) if samples else 0.0
        freq = crossings / 2 / (samples / self.rate) if samples and self.rate else 0.0
        return {"frames": frames, "samples": samples, "rms": round(rms, 1), "freq": round(freq, 1)}


# --- video -------------------------------------------------------------------------------------

WIDTH, HEIGHT = 320, 240
# The frame counter is painted as CELLS black/white cells across the top BAND rows: 12 bits of
# the counter, then a 4-bit check, so a misread cell is caught instead of giving a wrong count.
CELLS, BAND, COUNTER_BITS = 16, 48, 12


def counter_check(value):
    return (value ^ (value >> 4) ^ (value >> 8) ^ 0xA) & 0xF


class TestPattern(MediaStreamTrack):
    """A moving 320x240 test pattern with the frame counter painted as a barcode, paced in
    real time like a camera."""

    kind = "video"

    def __init__(self, fps):
        super().__init__()
        self.fps, self.count, self.start = fps, 0, None
        self.chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))

    async def recv(self):
        loop = asyncio.get_event_loop()
        if self.start is None:
            self.start = loop.time()
        delay = self.start + self.count / self.fps - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        n = self.count % (1 << COUNTER_BITS)
        code = n | counter_check(n) << COUNTER_BITS
        cell = WIDTH // CELLS
        band_row = b"".join((b"\xeb" if code >> i & 1 else b"\x10") * cell for i in range(CELLS))
        # Below the barcode: a mid-grey field with a bright bar moving 4 px per frame.
        x = (self.count * 4) % (WIDTH - 16)
        body_row = b"\x50" * x + b"\xeb" * 16 + b"\x50" * (WIDTH - 16 - x)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane, rows in zip(frame.planes, ([band_row] * BAND + [body_row] * (HEIGHT - BAND), None, None)):
            if rows is None:
                data, width = self.chroma, WIDTH // 2
            else:
                data, width = b"".join(rows), WIDTH
            if plane.line_size != width:
                pad = b"\x00" * (plane.line_size - width)
                data = b"".join(data[i : i + width] + pad for i in range(0, len(data), width))
            plane.update(data)
        frame.pts, frame.time_base = self.count * 90000 // self.fps, fractions.Fraction(1, 90000)
        self.count += 1
        return frame


def read_counter(frame):
    """The counter painted by TestPattern into a decoded frame, or None if unreadable."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        return None
    y = frame.planes[0]
    data, stride, cell = bytes(y), y.line_size, WIDTH // CELLS
    row = (BAND // 2) * stride
    code = 0
    for i in range(CELLS):
        if data[row + i * cell + cell // 2] > 128:
            code |= 1 << i
    n = code & ((1 << COUNTER_BITS) - 1)
    return n if code >> COUNTER_BITS == counter_check(n) else None


def yuv_at_thirds(frame):
    """[Y, U, V] of a decoded yuv420p frame at mid-height in the middle of its left, centre
    and right thirds (e.g. baresip's fakevideo: red, green and blue bars)."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    planes = [(bytes(p), p.line_size) for p in frame.planes]
    row = frame.height // 2
    out = []
    for x in (frame.width // 6, frame.width // 2, frame.width * 5 // 6):
        (y, ys), (u, us), (v, vs) = planes
        out.append([y[row * ys + x], u[(row // 2) * us + x // 2], v[(row // 2) * vs + x // 2]])
    return out


def is_keyframe(codec_name, data):
    """Whether an encoded frame (VP8 frame, or H.264 Annex B access unit) is a key frame."""
    if not data:
        return False
    if codec_name == "VP8":
        return data[0] & 1 == 0  # RFC 6386 section 9.1: P bit clear = key frame
    if codec_name == "H264":
        i = data.find(b"\x00\x00\x01")
        while i != -1 and i + 3 < len(data):
            if data[i + 3] & 0x1F == 5:  # IDR slice
                return True
            i = data.find(b"\x00\x00\x01", i + 3)
    return False


class VideoStats:
    """What the video of one call did, filled by the hooks below (some run in aiortc's
    encoder/decoder threads, hence the lock)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.codec = None
        self.frames = self.counted = self.keyframes_received = self.keyframes_sent = 0
        self.width = self.height = 0
        self.first_counter = self.last_counter = None
        self.counter_regressions = 0
        self.pli_sent = self.fir_sent = self.pli_received = self.fir_received = 0
        self.sent_payloads = set()
        self.payloads_received = self.payloads_echoed = 0
        self.remote_ssrc = None
        self.thirds = None
        self.rtp_dropped = 0

    def decoded(self, frame):
        n = read_counter(frame)
        with self.lock:
            self.frames += 1
            self.width, self.height = frame.width, frame.height
            self.thirds = yuv_at_thirds(frame)
            if n is not None:
                self.counted += 1
                if self.first_counter is None:
                    self.first_counter = n
                elif n <= self.last_counter:
                    self.counter_regressions += 1
                self.last_counter = n

    def summary(self, sent_frames):
        return {
            "codec": self.codec,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "frames_sent": sent_frames,
            "counted": self.counted,
            "first_counter": self.first_counter,
            "last_counter": self.last_counter,
            "counter_regressions": self.counter_regressions,
            "keyframes_sent": self.keyframes_sent,
            "keyframes_received": self.keyframes_received,
            "pli_sent": self.pli_sent,
            "fir_sent": self.fir_sent,
            "pli_received": self.pli_received,
            "fir_received": self.fir_received,
            "payloads_received": self.payloads_received,
            "payloads_echoed": self.payloads_echoed,
            "rtp_dropped": self.rtp_dropped,
            "last_frame_yuv_at_thirds": self.thirds,
        }


VIDEO = VideoStats()


def install_video_hooks():
    """Wraps aiortc's codec factories and RTCP paths so VIDEO sees every video payload sent and
    received, every key frame, and every PLI/FIR in both directions."""

    def video(codec):
        return codec.mimeType.lower().startswith("video/")

    make_encoder = aiortc.rtcrtpsender.get_encoder

    def get_encoder(codec):
        encoder = make_encoder(codec)
        if video(codec):
            VIDEO.codec = codec.name
            encode = encoder.encode

            def wrapped(frame, force_keyframe=False):
                payloads, timestamp = encode(frame, force_keyframe)
                key = bool(payloads) and is_keyframe(codec.name, aiortc.codecs.depayload(codec, payloads[0]))
                with VIDEO.lock:
                    VIDEO.sent_payloads.update(payloads)
                    VIDEO.keyframes_sent += key
                return payloads, timestamp

            encoder.encode = wrapped
        return encoder

    aiortc.rtcrtpsender.get_encoder = get_encoder

    make_decoder = aiortc.rtcrtpreceiver.get_decoder

    def get_decoder(codec):
        decoder = make_decoder(codec)
        if video(codec):
            decode = decoder.decode

            def wrapped(encoded_frame):
                if is_keyframe(codec.name, encoded_frame.data):
                    with VIDEO.lock:
                        VIDEO.keyframes_received += 1
                return decode(encoded_frame)

            decoder.decode = wrapped
        return decoder

    aiortc.rtcrtpreceiver.get_decoder = get_decoder

    depayload = aiortc.rtcrtpreceiver.depayload

    def counting_depayload(codec, payload):
        if video(codec):
            with VIDEO.lock:
                VIDEO.payloads_received += 1
                VIDEO.payloads_echoed += payload in VIDEO.sent_payloads
        return depayload(codec, payload)

    aiortc.rtcrtpreceiver.depayload = counting_depayload

    handle_rtp = RTCRtpReceiver._handle_rtp_packet

    async def note_ssrc(self, packet, arrival_time_ms):
        if self.track is not None and self.track.kind == "video":
            VIDEO.remote_ssrc = packet.ssrc
        return await handle_rtp(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = note_ssrc

    send_pli = RTCRtpReceiver._send_rtcp_pli

    async def counting_pli(self, media_ssrc):
        if self.track is not None and self.track.kind == "video":
            VIDEO.pli_sent += 1
        return await send_pli(self, media_ssrc)

    RTCRtpReceiver._send_rtcp_pli = counting_pli

    handle_rtcp = RTCRtpSender._handle_rtcp_packet

    async def counting_feedback(self, packet):
        # aiortc routes PSFB to the sender whose SSRC is the packet's media SSRC.
        if self.kind == "video" and isinstance(packet, RtcpPsfbPacket):
            VIDEO.pli_received += packet.fmt == RTCP_PSFB_PLI
            VIDEO.fir_received += packet.fmt == RTCP_PSFB_FIR
        return await handle_rtcp(self, packet)

    RTCRtpSender._handle_rtcp_packet = counting_feedback


# --- codec changes ------------------------------------------------------------------------------

# RTP payload types received per kind, counted as they arrive (before the jitter buffer).
AUDIO_PTS = {}
VIDEO_PTS = {}


def install_codec_hooks():
    """Counts the payload types of the RTP received (AUDIO_PTS, VIDEO_PTS), and notes the codec
    each sender's RTP loop sends with, so follow_codecs can switch it."""
    handle_rtp = RTCRtpReceiver._handle_rtp_packet

    async def count_pt(self, packet, arrival_time_ms):
        if self.track is not None:
            pts = AUDIO_PTS if self.track.kind == "audio" else VIDEO_PTS
            pts[packet.payload_type] = pts.get(packet.payload_type, 0) + 1
        return await handle_rtp(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = count_pt

    run_rtp = RTCRtpSender._run_rtp

    async def noting_run_rtp(self, codec):
        self._sending_codec = codec
        return await run_rtp(self, codec)

    RTCRtpSender._run_rtp = noting_run_rtp


def follow_codecs(pc):
    """After an offer/answer, sends each kind with the first codec agreed and receives every
    codec agreed, as browsers do when a renegotiation changes the codec (RFC 3264 section
    8.3.2); aiortc 1.16 keeps the codec of the first negotiation. Returns the audio codec now
    sent."""
    sent = None
    for t in pc.getTransceivers():
        if not t._codecs or t.kind not in ("audio", "video"):
            continue
        receiving = t.receiver._RTCRtpReceiver__codecs
        router = t.receiver.transport._rtp_router if t.receiver.transport else None
        for c in t._codecs:
            receiving[c.payloadType] = c
            if router is not None:
                # The BUNDLE router hands a packet to a receiver by its payload type.
                router.payload_type_table.setdefault(c.payloadType, set()).add(t.receiver)
        first = next((c for c in t._codecs if not c.mimeType.lower().endswith("/rtx")), t._codecs[0])
        codec = getattr(t.sender, "_sending_codec", None)
        if codec is not None and (codec.mimeType.lower(), codec.payloadType) != (first.mimeType.lower(), first.payloadType):
            # The RTP loop reads this object for every packet; the encoder is made anew from
            # it for the next frame.
            codec.mimeType, codec.clockRate, codec.channels = first.mimeType, first.clockRate, first.channels
            codec.payloadType, codec.parameters = first.payloadType, dict(first.parameters)
            t.sender._RTCRtpSender__encoder = None
        if t.kind == "audio":
            sent = "%s/%s" % (first.mimeType.split("/")[1], first.payloadType)
    return sent


def install_video_loss(pc, every):
    """Drops one outgoing video RTP packet every `every` seconds, as a lossy network would:
    the receiving peer's decoder then misses data and asks for a key frame (PLI or FIR)."""
    loop = asyncio.get_event_loop()
    state = {"next": loop.time() + every}
    send_rtp = RTCDtlsTransport._send_rtp

    async def lossy(self, data):
        if not is_rtcp(data) and len(data) >= 12 and loop.time() >= state["next"]:
            ssrc = struct.unpack("!I", data[8:12])[0]
            if any(s.kind == "video" and s._ssrc == ssrc for s in pc.getSenders()):
                state["next"] = loop.time() + every
                VIDEO.rtp_dropped += 1
                return
        return await send_rtp(self, data)

    RTCDtlsTransport._send_rtp = lossy


async def send_fir(receiver, media_ssrc, seq):
    """RFC 5104 section 4.3.1 FIR: media SSRC 0, FCI = (SSRC, sequence number, 3 reserved)."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
    if rtcp_ssrc is not None:
        fci = struct.pack("!IB3x", media_ssrc, seq & 0xFF)
        await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_FIR, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci))
        VIDEO.fir_sent += 1


async def request_keyframes(pc, kind, every):
    """Every `every` seconds, a PLI or FIR for the video we receive (once it flows)."""
    seq = 0
    while True:
        await asyncio.sleep(every)
        receivers = [t.receiver for t in pc.getTransceivers() if t.kind == "video"]
        if not receivers or VIDEO.remote_ssrc is None:
            continue
        if kind == "pli":
            await receivers[0]._send_rtcp_pli(VIDEO.remote_ssrc)
        else:
            seq += 1
            await send_fir(receivers[0], VIDEO.remote_ssrc, seq)


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.pending = {}
        self.events = asyncio.Queue()
        self.states = []
        self.chat = []
        # Called (as a task) for every `update` `received`, when set.
        self.on_update = None
        self.updates_answered = 0
        # Events that went by while another was awaited (for the `wait` step).
        self.passed = []

    async def reader(self):
        async for text in self.ws:
            msg = json.loads(text)
            print("EVENT " + json.dumps(msg), flush=True)
            msg = from_v1(msg)
            if msg.get("sylkrtc") == "session-event" and msg.get("event") in ("message", "disposition-notification", "chat"):
                self.chat.append(msg)
            if msg.get("sylkrtc") in ("ack", "error"):
                fut = self.pending.pop(msg.get("transaction"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            elif self.on_update and msg.get("event") == "update" and msg.get("state") == "received":
                asyncio.ensure_future(self.on_update(msg))
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
            self.passed.append(msg)

    async def seen_or_event(self, predicate, timeout):
        """An event that arrived while waiting for something else, or the next one."""
        for i, msg in enumerate(self.passed):
            if predicate(msg):
                del self.passed[i]
                return msg
        return await self.event(predicate, timeout)


def from_v1(msg):
    """A sylkRTC-1 event in sylkRTC-2's shape (v1 nests the payload in `data` and writes
    underscores), so the rest of the client reads one dialect; v2 messages pass unchanged."""
    kind = msg.get("sylkrtc")
    if kind == "event" and msg.get("event") == "ready":
        return {"sylkrtc": "ready-event"}
    if kind in ("session_event", "account_event"):
        out = {k: v for k, v in msg.items() if k != "data"}
        out.update(msg.get("data") or {})
        out["sylkrtc"] = kind.replace("_", "-")
        out["event"] = str(msg.get("event", "")).replace("_", "-")
        return out
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


def new_pc(args, meter):
    # max-bundle: a transceiver added by a later offer rides on the one transport, as the
    # gateway runs one BUNDLEd transport per call.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    pc.addTransceiver(Sine(args.hz), direction="sendrecv")
    pattern = None
    if args.video:
        pattern = TestPattern(args.fps)
        video = pc.addTransceiver(pattern, direction="sendrecv")
        if args.video_codec:
            codecs = [
                c
                for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType.lower() == "video/" + args.video_codec.lower()
            ]
            if not codecs:
                raise SystemExit("aiortc has no video codec %s" % args.video_codec)
            video.setCodecPreferences(codecs[:1])

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":

            async def pull_video():
                while True:
                    try:
                        frame = await track.recv()
                    except Exception:
                        return
                    VIDEO.decoded(frame)

            asyncio.ensure_future(pull_video())
            return

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

    return pc, pattern


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


async def say(client, session, text):
    """With --chat: TEXT as a session-message (text/plain: the gateway wraps it in CPIM)."""
    if text is not None:
        await client.request(
            "session-message",
            session=session,
            message_id=str(uuid.uuid4()),
            content=text,
            content_type="text/plain",
            timestamp="2026-05-06T07:08:09.000Z",
        )


def strip_candidates(sdp):
    """The offer/answer as sylkrtc.js sends it: taken before gathering, so no candidates."""
    return "\r\n".join(
        l for l in sdp.splitlines() if not l.startswith("a=candidate:") and l != "a=end-of-candidates"
    ) + "\r\n"


def read_frame(path):
    """`read-frame FILE`: the size of an image (e.g. a peer's PNG snapshot of the video it
    decoded) and the TestPattern counter painted in it (null if none)."""
    with av.open(path) as container:
        frame = next(container.decode(video=0)).reformat(format="yuv420p")
    result = {"width": frame.width, "height": frame.height, "counter": read_counter(frame)}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def session_event(session, name, *states):
    return lambda m: (
        m.get("sylkrtc") == "session-event"
        and m.get("session") == session
        and m.get("event") == name
        and (not states or m.get("state") in states)
    )


def sdp_summary(sdp):
    """The m-lines of an SDP with their ports and directions, for the RESULT."""
    lines, current = [], None
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts = line[2:].split()
            current = {"kind": parts[0], "port": int(parts[1]), "direction": "sendrecv"}
            lines.append(current)
        elif current is not None and line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive"):
            current["direction"] = line[2:]
    return lines


def audio_formats(sdp):
    """The payload types of the first m=audio line."""
    for line in sdp.splitlines():
        if line.startswith("m=audio "):
            return line.split()[3:]
    return []


def rollback(pc):
    """Drops a pending local offer, as a browser's rollback does (aiortc 1.16 has none):
    what sylkrtc.js does when its update failed, e.g. in glare."""
    if pc.signalingState == "have-local-offer":
        pc._RTCPeerConnection__pendingLocalDescription = None
        pc._RTCPeerConnection__setSignalingState("stable")


class Steps:
    """Runs --steps on an established call."""

    def __init__(self, args, client, pc, meter, session):
        self.args, self.client, self.pc, self.meter, self.session = args, client, pc, meter, session
        self.pattern = None

    async def answer_offer(self, offer_sdp):
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        follow_codecs(self.pc)
        return self.pc.localDescription.sdp

    async def auto_answer(self, msg):
        # Glare: our own update failed just before (the gateway says so first).
        rollback(self.pc)
        answer = await self.answer_offer(msg["sdp"])
        await self.client.request("session-update", session=self.session, sdp=answer)
        self.client.updates_answered += 1

    async def update(self, kind):
        audio = next(t for t in self.pc.getTransceivers() if t.kind == "audio")
        if kind in ("hold", "unhold", "inactive"):
            audio.direction = {"hold": "sendonly", "unhold": "sendrecv", "inactive": "inactive"}[kind]
        elif kind == "add-video":
            install_video_hooks()
            self.pattern = TestPattern(self.args.fps)
            self.pc.addTransceiver(self.pattern, direction="sendrecv")
        elif kind == "remove-video":
            for t in self.pc.getTransceivers():
                if t.kind == "video":
                    await t.stop()
        elif kind.startswith("codec:"):
            wanted = "audio/" + kind.split(":", 1)[1].lower()
            audio.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == wanted]
            )
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        await self.client.request("session-update", session=self.session, sdp=offer)
        msg = await self.client.event(session_event(self.session, "update", "accepted", "failed"), 20)
        out = {"update": kind, "state": msg["state"], "offer": sdp_summary(offer)}
        if msg["state"] == "accepted":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
            out["answer"] = sdp_summary(msg["sdp"])
            out["sending"] = follow_codecs(self.pc)
        else:
            out["reason"] = msg.get("reason")
            rollback(self.pc)
        return out

    async def measure(self, seconds):
        snap = self.meter.snapshot()
        video_before = VIDEO.frames
        pts_before = dict(AUDIO_PTS)
        video_pts_before = dict(VIDEO_PTS)
        try:
            await self.client.event(state_is(self.session, "terminated"), seconds)
            ended = True
        except asyncio.TimeoutError:
            ended = False
        out = {"measure": seconds, **self.meter.since(snap), "video_frames": VIDEO.frames - video_before}
        # Audio payload types received in this phase and how many packets of each.
        out["payload_types"] = {str(pt): n - pts_before.get(pt, 0) for pt, n in AUDIO_PTS.items() if n > pts_before.get(pt, 0)}
        if VIDEO_PTS:
            out["video_payload_types"] = {
                str(pt): n - video_pts_before.get(pt, 0)
                for pt, n in VIDEO_PTS.items()
                if n > video_pts_before.get(pt, 0)
            }
            out["video_codec"] = VIDEO.codec
        if ended:
            out["terminated"] = True
        return out

    async def follow_transfer(self, seconds):
        """Calls the target of a `transfer-request` with a session naming this one in `refer`."""
        request = await self.client.seen_or_event(session_event(self.session, "transfer-request"), 20)
        meter = Meter()
        pc, _ = new_pc(self.args, meter)
        session = str(uuid.uuid4())
        await pc.setLocalDescription(await pc.createOffer())
        full = pc.localDescription.sdp
        await self.client.request(
            "session-create",
            account=self.args.account,
            session=session,
            uri=request["uri"],
            sdp=strip_candidates(full),
            refer=self.session,
        )
        await trickle(self.client, session, full)
        out = {"followed": request["uri"], "referred_by": request.get("referred_by")}
        accepted = await self.client.event(state_is(session, "accepted", "terminated"), 20)
        out["state"] = accepted["state"]
        if accepted["state"] == "accepted":
            await pc.setRemoteDescription(RTCSessionDescription(sdp=accepted["sdp"], type="answer"))
            await self.client.seen_or_event(state_is(session, "established"), 15)
            await asyncio.sleep(seconds)
            out.update(meter.summary())
            await self.client.request("session-terminate", session=session)
            await self.client.seen_or_event(state_is(session, "terminated"), 10)
        try:
            ended = await self.client.seen_or_event(state_is(self.session, "terminated"), 5)
            out["original_terminated"] = ended.get("reason", "")
        except asyncio.TimeoutError:
            out["original_terminated"] = None
        await pc.close()
        if out["original_terminated"] is not None:
            out["terminated"] = True
        return out

    async def run(self, steps):
        results = []
        for step in steps:
            if "measure" in step:
                r = await self.measure(step["measure"])
            elif "update" in step:
                r = await self.update(step["update"])
            elif "answer-update" in step:
                # It may have come during an earlier step (a measure).
                msg = await self.client.seen_or_event(
                    session_event(self.session, "update", "received"), step["answer-update"]
                )
                answer = await self.answer_offer(msg["sdp"])
                await self.client.request("session-update", session=self.session, sdp=answer)
                r = {"answered": sdp_summary(msg["sdp"]), "answer_formats": audio_formats(answer)}
            elif "dtmf" in step:
                await self.client.request("session-dtmf-info", session=self.session, digit=step["dtmf"])
                r = {"dtmf": step["dtmf"]}
            elif "say" in step:
                await say(self.client, self.session, step["say"])
                r = {"say": step["say"]}
            elif "transfer" in step:
                await self.client.request("session-transfer", session=self.session, uri=step["transfer"])
                states = []
                while True:
                    msg = await self.client.event(
                        lambda m: session_event(self.session, "transfer")(m) or state_is(self.session, "terminated")(m),
                        20,
                    )
                    if msg.get("event") == "state":
                        states.append("terminated:" + msg.get("reason", ""))
                        break
                    states.append(msg["state"])
                    if msg["state"] in ("failed",):
                        break
                r = {"transfer": step["transfer"], "states": states}
            elif "follow-transfer" in step:
                r = await self.follow_transfer(step["follow-transfer"])
            elif "wait" in step:
                msg = await self.client.seen_or_event(
                    session_event(self.session, step["wait"]), step.get("timeout", 10)
                )
                r = {"wait": step["wait"], "event": msg}
            elif "sleep" in step:
                await asyncio.sleep(step["sleep"])
                r = {"sleep": step["sleep"]}
            else:
                raise SystemExit("unknown step %r" % step)
            print("STEP " + json.dumps(r), flush=True)
            results.append(r)
        return results


def parse_headers(items):
    out = []
    for item in items or []:
        name, _, value = item.partition(":")
        out.append({"name": name.strip(), "value": value.strip()})
    return out


async def main():
    if sys.argv[1:2] == ["read-frame"] and len(sys.argv) == 3:
        return read_frame(sys.argv[2])
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["call", "answer"])
    p.add_argument("--ws", required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--ha1", required=True)
    p.add_argument("--to")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--hz", type=float, default=440.0)
    p.add_argument("--video", action="store_true")
    p.add_argument("--video-codec", choices=["VP8", "H264"])
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--pli-every", type=float)
    p.add_argument("--fir-every", type=float)
    p.add_argument("--lose-video-every", type=float)
    p.add_argument("--chat")
    p.add_argument("--steps", default="[]")
    p.add_argument("--header", action="append")
    p.add_argument("--prefix", action="append")
    p.add_argument("--auto-answer-updates", action="store_true")
    p.add_argument("--device-token")
    p.add_argument("--v1", action="store_true", help="speak sylkRTC-1 instead of sylkRTC-2")
    args = p.parse_args()
    steps = json.loads(args.steps)
    install_codec_hooks()
    if args.video:
        install_video_hooks()

    result = {"mode": args.mode}
    meter = Meter()
    dialect = "sylkRTC-1" if args.v1 else "sylkRTC-2"
    async with websockets.connect(args.ws, subprotocols=[dialect], max_size=2**20) as ws:
        client = Client(ws)
        reader = asyncio.ensure_future(client.reader())
        ready = await client.event(lambda m: m.get("sylkrtc") == "ready-event", 10)
        result["ready"] = bool(ready)
        add = dict(account=args.account, password=args.ha1)
        if args.prefix:
            add["incoming_header_prefixes"] = args.prefix
        if args.chat is not None:
            add["chat"] = True
        await client.request("account-add", **add)
        pc, pattern = new_pc(args, meter)
        if args.video and args.lose_video_every:
            install_video_loss(pc, args.lose_video_every)
        requesters = [
            asyncio.ensure_future(request_keyframes(pc, kind, every))
            for kind, every in (("pli", args.pli_every), ("fir", args.fir_every))
            if args.video and every
        ]
        if args.mode == "call":
            session = str(uuid.uuid4())
            await pc.setLocalDescription(await pc.createOffer())
            full = pc.localDescription.sdp
            create = dict(account=args.account, session=session, uri=args.to, sdp=strip_candidates(full))
            if args.header:
                create["headers"] = parse_headers(args.header)
            if args.chat is not None:
                create["media"] = ["audio", "video", "chat"] if args.video else ["audio", "chat"]
            await client.request("session-create", **create)
            await trickle(client, session, full)
            accepted = await client.event(state_is(session, "accepted", "early-media", "terminated"), 20)
            if accepted.get("state") == "early-media":
                # The early answer is the answer (sylkrtc.js applies it; `accepted` then has none).
                await pc.setRemoteDescription(RTCSessionDescription(sdp=accepted["sdp"], type="answer"))
                accepted = await client.event(state_is(session, "accepted", "terminated"), 20)
            if accepted.get("state") != "accepted":
                result.update(states=client.states, error="not accepted: %s" % accepted.get("reason"))
                print("RESULT " + json.dumps(result), flush=True)
                return 1
            result["accepted_headers"] = accepted.get("headers")
            if accepted.get("sdp"):
                await pc.setRemoteDescription(RTCSessionDescription(sdp=accepted["sdp"], type="answer"))
            # DTLS may complete on the early media, before `accepted`.
            await client.seen_or_event(state_is(session, "established"), 15)
            await say(client, session, args.chat)
            runner = Steps(args, client, pc, meter, session)
            if args.auto_answer_updates:
                client.on_update = runner.auto_answer
            end = await measure(pc, meter, client, session, args.seconds)
            if end != "terminated" and steps:
                result["steps"] = await runner.run(steps)
                end = "terminated" if any(s.get("terminated") for s in result["steps"]) else end
            if end != "terminated" and not any("transfer" in s for s in steps):
                await client.request("session-terminate", session=session)
                await client.event(state_is(session, "terminated"), 10)
        else:
            if args.device_token:
                await client.request("account-devicetoken", account=args.account, **json.loads(args.device_token))
            await client.request("account-register", account=args.account)
            await client.event(lambda m: m.get("state") == "registered", 10)
            print("REGISTERED", flush=True)
            incoming = await client.event(lambda m: m.get("event") == "incoming-session", 30)
            session = incoming["session"]
            result["originator"] = incoming.get("originator")
            result["media"] = incoming.get("media")
            result["offer_has_sendrecv"] = "a=sendrecv" in incoming["sdp"]
            result["offer_has_end_of_candidates"] = "a=end-of-candidates" in incoming["sdp"]
            result["incoming_headers"] = incoming.get("headers")
            runner = Steps(args, client, pc, meter, session)
            if args.auto_answer_updates:
                client.on_update = runner.auto_answer
            await pc.setRemoteDescription(RTCSessionDescription(sdp=incoming["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            full = pc.localDescription.sdp
            answer = dict(session=session, sdp=strip_candidates(full))
            if args.header:
                answer["headers"] = parse_headers(args.header)
            await client.request("session-answer", **answer)
            await trickle(client, session, full)
            if (await client.event(state_is(session, "established", "terminated"), 15))["state"] == "established":
                await say(client, session, args.chat)
            end = await measure(pc, meter, client, session, args.seconds)
            if end != "terminated" and steps:
                result["steps"] = await runner.run(steps)
                end = "terminated" if any(s.get("terminated") for s in result["steps"]) else end
            if end != "terminated":
                await client.request("session-terminate", session=session)
                await client.event(state_is(session, "terminated"), 10)
        for r in requesters:
            r.cancel()
        result.update(meter.summary())
        result["updates_answered"] = client.updates_answered
        if pattern is None and runner.pattern is not None:
            pattern = runner.pattern
        if pattern is not None:
            result["video"] = VIDEO.summary(pattern.count)
        result["states"] = client.states
        # Inbound RTP as the receiver counted it (RFC 3550 section 6.4.1 cumulative loss).
        received = lost = 0
        for stat in (await pc.getStats()).values():
            if stat.type == "inbound-rtp" and stat.kind == "audio":
                received += stat.packetsReceived
                lost += stat.packetsLost
        result["rtp_in"] = {"received": received, "lost": lost}
        if args.chat is not None:
            result["chat"] = client.chat
        await pc.close()
        reader.cancel()
    print("RESULT " + json.dumps(result), flush=True)
    return 0


sys.exit(asyncio.run(main()))

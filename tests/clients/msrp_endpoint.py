#!/usr/bin/env python3
"""An independent MSRP endpoint for the chat tests, written from RFC 4975 (framing, chunking,
reports), RFC 6135 (a=setup) and just enough RFC 3261 (UDP SIP: REGISTER with digest from the
HA1, INVITE/200/ACK, BYE) to set up a chat session with the gateway through Kamailio.

usage: msrp_endpoint.py uas|uac --proxy HOST:PORT --user U --ha1 HEX [--domain D]
                        [--call USER] [--setup passive|active|none] [--out DIR]
                        [--tls CERT KEY] --script STEPS

uas: registers as U at the proxy, waits for an INVITE with an m=message line and answers it
     (a=setup:passive listens on a fresh port, active connects to the offerer's first path
     URI, none writes no a=setup: RFC 4975's default, the offerer connects). With --tls
     (passive only) it answers TCP/TLS/MSRP with an msrps:// path and TLS on its listener
     with CERT and KEY (PEM).
uac: INVITEs USER@D through the proxy offering m=message without a=setup (RFC 4975: the
     offerer connects), then connects to the answerer's first path URI.
STEPS (comma-separated, run in order once the MSRP connection is up):
     bind            send an empty SEND (the active end's first request, RFC 4975 5.4)
     recv:N          receive N messages (200 to every chunk, a success REPORT when asked)
     fail-next       answer the next message 200, then a failure REPORT (000 415)
     send:TEXT       send TEXT as one CPIM message (Success-Report: yes), expect 200 + REPORT
     send-big:BYTES  send a CPIM message of BYTES bytes in 2048-byte chunks, expect a 200
                     per chunk and the success REPORT; the body goes to OUT/big.cpim
     malformed       send a frame with a broken Byte-Range, expect 400 on the same connection
     drop-mid        send half of a chunk and close the TCP connection
     flood:N         write N one-chunk SENDs at once without waiting for answers, then read
                     until the gateway closes the connection (`closed`: whether it did)
     wait-bye        wait for the gateway's BYE (and answer it)
     bye             send BYE
Prints `STEP <name> <json>` as steps finish, `EVENT <text>` for what it saw, and one
`RESULT <json>` at the end (exit 0), or `RESULT {"error": ...}` (exit 1). 127.0.0.1 only.
"""

import argparse
import hashlib
import json
import os
import random
import re
import select
import socket
import ssl
import string
import sys
import time


def token(n=10):
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


def emit(kind, payload):
    print(f"{kind} {payload if isinstance(payload, str) else json.dumps(payload)}", flush=True)


# ------------------------------------------------------------------------------ SIP (UDP)

class SipMessage:
    def __init__(self, data):
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if ":" in line:
                n, v = line.split(":", 1)
                self.headers.append((n.strip(), v.strip()))
        self.body = body
        parts = self.start.split(" ", 2)
        self.is_response = parts[0] == "SIP/2.0"
        self.code = int(parts[1]) if self.is_response else 0
        self.method = None if self.is_response else parts[0]

    def all(self, name):
        short = {"via": "v", "from": "f", "to": "t", "call-id": "i", "contact": "m"}.get(name.lower())
        return [v for n, v in self.headers if n.lower() in (name.lower(), short)]

    def get(self, name):
        vals = self.all(name)
        return vals[0] if vals else None

    def cseq(self):
        num, method = self.get("CSeq").split()
        return int(num), method


class Sip:
    """A UDP SIP user agent, one dialog at a time."""

    def __init__(self, proxy, user, ha1, domain):
        self.proxy = proxy
        self.user, self.ha1, self.domain = user, ha1, domain
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.contact = f"<sip:{user}@127.0.0.1:{self.port}>"
        self.cseq = 0
        self.dialog = None

    def send(self, data, to=None):
        self.sock.sendto(data.encode() if isinstance(data, str) else data, to or self.proxy)

    def recv(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        data, addr = self.sock.recvfrom(65535)
        return SipMessage(data), addr

    def request(self, method, uri, headers, body=b"", ctype=None, to=None):
        branch = "z9hG4bK" + token(12)
        lines = [f"{method} {uri} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={branch}",
                 "Max-Forwards: 70"] + [f"{n}: {v}" for n, v in headers]
        if ctype:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.send(data, to)
        return data

    def respond(self, req, code, reason, extra=(), body=b"", ctype=None, to_tag=None, addr=None):
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in req.all("Via")]
        to = req.get("To")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines += [f"From: {req.get('From')}", f"To: {to}", f"Call-ID: {req.get('Call-ID')}",
                  f"CSeq: {req.get('CSeq')}"]
        lines += [f"Record-Route: {v}" for v in req.all("Record-Route")]
        lines += [f"{n}: {v}" for n, v in extra]
        if ctype:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.send(data, addr)
        return data

    def digest(self, method, uri, challenge):
        p = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
        nc, cnonce = "00000001", token(16)
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
        ha2 = md5(f"{method}:{uri}")
        if "qop" in p:
            resp = md5(f"{self.ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            return (f'Digest username="{self.user}", realm="{p["realm"]}", nonce="{p["nonce"]}", '
                    f'uri="{uri}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')
        resp = md5(f"{self.ha1}:{p['nonce']}:{ha2}")
        return (f'Digest username="{self.user}", realm="{p["realm"]}", nonce="{p["nonce"]}", '
                f'uri="{uri}", response="{resp}", algorithm=MD5')

    def register(self):
        call_id, tag, uri = token(16), token(8), f"sip:{self.domain}"
        auth = []
        for _ in range(2):
            self.cseq += 1
            self.request("REGISTER", uri, [
                ("From", f"<sip:{self.user}@{self.domain}>;tag={tag}"),
                ("To", f"<sip:{self.user}@{self.domain}>"), ("Call-ID", call_id),
                ("CSeq", f"{self.cseq} REGISTER"), ("Contact", self.contact), ("Expires", "300")] + auth)
            resp = self.final(call_id)
            if resp.code == 200:
                return
            if resp.code != 401:
                raise RuntimeError(f"REGISTER: {resp.start}")
            auth = [("Authorization", self.digest("REGISTER", uri, resp.get("WWW-Authenticate")))]
        raise RuntimeError("REGISTER refused")

    def final(self, call_id, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.recv(deadline - time.time())
            if got is None:
                break
            msg, addr = got
            if msg.is_response and msg.get("Call-ID") == call_id and msg.code >= 200:
                return msg
            if not msg.is_response:
                self.handle_request(msg, addr)
        raise RuntimeError("no final response")

    def handle_request(self, msg, addr):
        """Requests outside what the caller waits for: BYE ends the dialog."""
        if msg.method == "BYE":
            self.respond(msg, 200, "OK", addr=addr)
            emit("EVENT", "BYE received")
            self.dialog = None
            return "BYE"
        if msg.method not in ("ACK",):
            self.respond(msg, 200 if msg.method == "OPTIONS" else 501, "OK" if msg.method == "OPTIONS" else "Not Implemented", addr=addr)
        return msg.method

    def wait_invite(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.recv(deadline - time.time())
            if got is None:
                continue
            msg, addr = got
            if msg.method == "INVITE":
                return msg, addr
            if not msg.is_response:
                self.handle_request(msg, addr)
        raise RuntimeError("no INVITE")

    def answer(self, invite, addr, sdp):
        tag = token(8)
        contact = re.search(r"<([^>]+)>", invite.get("Contact")).group(1)
        self.dialog = {
            "call_id": invite.get("Call-ID"), "local": invite.get("To") + f";tag={tag}",
            "remote": invite.get("From"), "target": contact, "routes": invite.all("Record-Route"),
        }
        data = self.respond(invite, 200, "OK", [("Contact", self.contact)], sdp.encode(),
                            "application/sdp", tag, addr)
        # The 200 is retransmitted until the ACK comes (RFC 3261 13.3.1.4).
        deadline, again = time.time() + 8, time.time() + 0.5
        while time.time() < deadline:
            got = self.recv(0.1)
            if got and got[0].method == "ACK":
                return
            if got and not got[0].is_response:
                self.handle_request(*got)
            if time.time() > again:
                self.send(data, addr)
                again = time.time() + 1
        raise RuntimeError("no ACK")

    def invite(self, callee, sdp):
        call_id, tag = token(16), token(8)
        uri = f"sip:{callee}@{self.domain}"
        self.cseq += 1
        headers = [("From", f"<sip:{self.user}@{self.domain}>;tag={tag}"), ("To", f"<{uri}>"),
                   ("Call-ID", call_id), ("CSeq", f"{self.cseq} INVITE"), ("Contact", self.contact)]
        self.request("INVITE", uri, headers, sdp.encode(), "application/sdp")
        resp = self.final(call_id, 30)
        if resp.code != 200:
            raise RuntimeError(f"INVITE: {resp.start}")
        contact = re.search(r"<([^>]+)>", resp.get("Contact")).group(1)
        self.dialog = {
            "call_id": call_id, "local": f"<sip:{self.user}@{self.domain}>;tag={tag}",
            "remote": resp.get("To"), "target": contact,
            "routes": list(reversed(resp.all("Record-Route"))),
        }
        self.in_dialog("ACK", cseq=self.cseq)
        return resp

    def in_dialog(self, method, cseq=None):
        d = self.dialog
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        headers = [("From", d["local"]), ("To", d["remote"]), ("Call-ID", d["call_id"]),
                   ("CSeq", f"{cseq} {method}")] + [("Route", r) for r in d["routes"]]
        to = None
        if d["routes"]:
            m = re.search(r"sip:([^;>]+)", d["routes"][0]).group(1)
            host, _, port = m.rpartition("@")[2].partition(":")
            to = (host, int(port or 5060))
        self.request(method, d["target"], headers, to=to)
        return d["call_id"]

    def bye(self):
        call_id = self.in_dialog("BYE")
        resp = self.final(call_id)
        self.dialog = None
        return resp.code

    def wait_bye(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline and self.dialog is not None:
            got = self.recv(0.2)
            if got and not got[0].is_response:
                self.handle_request(*got)
        return self.dialog is None


def sdp_of(path, setup, port, proto="TCP/MSRP"):
    lines = ["v=0", f"o=- {random.randint(1, 1 << 30)} 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
             "t=0 0", f"m=message {port} {proto} *", "a=accept-types:message/cpim text/plain",
             "a=accept-wrapped-types:*", f"a=path:{path}"]
    if setup:
        lines.append(f"a=setup:{setup}")
    return "\r\n".join(lines) + "\r\n"


def message_line(sdp):
    """(path URIs, setup, transport) of the first active m=message line of an SDP body."""
    section, path, setup, proto = None, None, None, None
    for line in sdp.decode().splitlines():
        if line.startswith("m="):
            section = line.startswith("m=message ") and not line.startswith("m=message 0 ")
            if section and proto is None:
                proto = line.split()[2]
        elif section and line.startswith("a=path:"):
            path = line[7:].split()
        elif section and line.startswith("a=setup:"):
            setup = line[8:].strip()
    return path, setup, proto


# ------------------------------------------------------------------------------ MSRP

class Frame:
    def __init__(self, tid, start, headers, body, flag):
        self.tid, self.headers, self.body, self.flag = tid, headers, body, flag
        parts = start.split(" ", 3)
        self.is_response = parts[2].isdigit()
        self.code = int(parts[2]) if self.is_response else 0
        self.method = None if self.is_response else parts[2]

    def hdr(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


class Msrp:
    """One MSRP connection: frames in (RFC 4975 section 7 grammar) and out."""

    def __init__(self, sock, local_uri, peer_path):
        # Frames go out at once: with Nagle a REPORT written right after a 200 waits for the
        # peer's delayed ACK, and a BYE sent meanwhile overtakes it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.local, self.peer_path = sock, local_uri, peer_path
        self.buf = b""
        self.incoming = {}       # message id -> {"ctype", "data", "success"}
        self.messages = []       # complete ones
        self.responses = {}      # tid -> code
        self.reports = []        # (message id, status)
        self.fail_next = False

    def write(self, data):
        self.sock.sendall(data)

    def frame_bytes(self, tid, method, headers, body=None, ctype="message/cpim", flag="$"):
        lines = [f"MSRP {tid} {method}", f"To-Path: {' '.join(self.peer_path)}", f"From-Path: {self.local}"]
        lines += [f"{n}: {v}" for n, v in headers]
        data = ("\r\n".join(lines) + "\r\n").encode()
        if body is not None:
            data += f"Content-Type: {ctype}\r\n\r\n".encode() + body + b"\r\n"
        return data + f"-------{tid}{flag}\r\n".encode()

    def read_frame(self, timeout):
        deadline = time.time() + timeout
        while True:
            frame = self.take_frame()
            if frame is not None:
                return frame
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no MSRP frame")
            # TLS may hold decrypted bytes select() cannot see.
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            r, _, _ = select.select([self.sock], [], [], 0 if pending else left)
            if r or pending:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("MSRP connection closed by the gateway")
                self.buf += chunk

    def take_frame(self):
        """A whole frame from the buffer (RFC 4975 section 7: start line, headers, an
        optional body after a blank line, and the end-line with the transaction id)."""
        m = re.match(rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) ([^\r\n]*)\r\n", self.buf)
        if not m:
            if len(self.buf) >= 5 and not self.buf.startswith(b"MSRP "):
                raise ValueError(f"not MSRP: {self.buf[:40]!r}")
            return None
        tid, pos, headers = m.group(1), m.end(), []
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol == -1:
                return None
            line = self.buf[pos:eol]
            if line == b"":
                end = re.compile(rb"\r\n-------" + re.escape(tid) + rb"([$+#])\r\n").search(self.buf, eol + 2)
                if not end:
                    return None
                body, flag, stop = self.buf[eol + 2:end.start()], end.group(1), end.end()
                break
            if line.startswith(b"-------" + tid) and len(line) == 8 + len(tid):
                body, flag, stop = None, line[-1:], eol + 2
                break
            headers.append(tuple(line.decode().split(": ", 1)))
            pos = eol + 2
        self.buf = self.buf[stop:]
        return Frame(tid.decode(), f"MSRP {tid.decode()} {m.group(2).decode()}", headers, body,
                     flag.decode())

    def respond(self, req, code, comment):
        prev = req.hdr("From-Path").split()[0]
        self.write(f"MSRP {req.tid} {code} {comment}\r\nTo-Path: {prev}\r\nFrom-Path: {self.local}\r\n"
                   f"-------{req.tid}$\r\n".encode())

    def handle_request(self, f):
        """SEND: 200 (or the failure REPORT test), reassembly, success REPORT."""
        if f.method == "REPORT":
            self.reports.append((f.hdr("Message-ID"), f.hdr("Status")))
            return
        if f.method != "SEND":
            self.respond(f, 501, "Not Implemented")
            return
        mid = f.hdr("Message-ID")
        rng = f.hdr("Byte-Range") or "1-*/*"
        start, _, total = rng.replace("-", "/", 1).split("/")
        self.respond(f, 200, "OK")
        if f.body is None:
            return
        m = self.incoming.setdefault(mid, {"ctype": f.hdr("Content-Type"), "data": bytearray(),
                                           "success": f.hdr("Success-Report") == "yes"})
        pos = int(start) - 1
        m["data"][pos:pos + len(f.body)] = f.body
        if f.flag != "$":
            return
        msg = self.incoming.pop(mid)
        body = bytes(msg["data"])
        path_back = f.hdr("From-Path")
        status = "000 200 OK"
        if self.fail_next:
            self.fail_next = False
            status = "000 415 Unsupported Media Type"
        elif not msg["success"]:
            status = None
        if status:
            rtid = token(12)
            self.write((f"MSRP {rtid} REPORT\r\nTo-Path: {path_back}\r\nFrom-Path: {self.local}\r\n"
                        f"Message-ID: {mid}\r\nByte-Range: 1-{len(body)}/{len(body)}\r\nStatus: {status}\r\n"
                        f"-------{rtid}$\r\n").encode())
        self.messages.append({"message_id": mid, "content_type": msg["ctype"],
                              "sha256": hashlib.sha256(body).hexdigest(), "len": len(body),
                              "text": body.decode("utf-8", "replace")[:4000], "report": status})

    def pump(self, until, timeout=20):
        """Handles frames until `until()` is true."""
        deadline = time.time() + timeout
        while not until():
            f = self.read_frame(deadline - time.time())
            if f.is_response:
                self.responses[f.tid] = f.code
            else:
                self.handle_request(f)

    def send(self, headers, body, flag="$"):
        tid = token(12)
        self.write(self.frame_bytes(tid, "SEND", headers, body, flag=flag))
        return tid


def cpim(sender, to, text):
    return (f"From: <sip:{sender}>\r\nTo: <sip:{to}>\r\nDateTime: 2026-05-06T07:08:09Z\r\n"
            f"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: {token(10)}\r\n\r\n"
            f"Content-Type: text/plain\r\n\r\n{text}").encode()


def run_script(msrp, sip, steps, args, me, peer):
    result = {}
    for step in steps:
        name, _, arg = step.partition(":")
        if name == "bind":
            tid = msrp.send([("Message-ID", token(10)), ("Byte-Range", "1-0/0")], None)
            msrp.pump(lambda: tid in msrp.responses)
            out = {"code": msrp.responses[tid]}
        elif name == "recv":
            want = len(msrp.messages) + int(arg)
            msrp.pump(lambda: len(msrp.messages) >= want)
            out = {"messages": msrp.messages[want - int(arg):]}
        elif name == "fail-next":
            msrp.fail_next = True
            want = len(msrp.messages) + 1
            msrp.pump(lambda: len(msrp.messages) >= want)
            out = {"message": msrp.messages[-1]}
        elif name in ("send", "send-big"):
            if name == "send":
                body = cpim(me, peer, arg)
            else:
                filler = (string.ascii_letters + "\r\n-------" + " ").encode()
                head = cpim(me, peer, "")
                body = head + bytes(filler[i % len(filler)] for i in range(int(arg) - len(head)))
                with open(os.path.join(args.out, "big.cpim"), "wb") as f:
                    f.write(body)
            mid, tids = token(10), []
            for at in range(0, max(len(body), 1), 2048):
                chunk = body[at:at + 2048]
                last = at + 2048 >= len(body)
                tids.append(msrp.send([("Message-ID", mid), ("Success-Report", "yes"),
                                       ("Byte-Range", f"{at + 1}-{at + len(chunk)}/{len(body)}")],
                                      chunk, "$" if last else "+"))
            msrp.pump(lambda: all(t in msrp.responses for t in tids) and any(r[0] == mid for r in msrp.reports))
            out = {"chunks": len(tids), "codes": sorted(set(msrp.responses[t] for t in tids)),
                   "report": [r[1] for r in msrp.reports if r[0] == mid][0],
                   "sha256": hashlib.sha256(body).hexdigest(), "len": len(body)}
        elif name == "malformed":
            tid = token(12)
            msrp.write(msrp.frame_bytes(tid, "SEND", [("Message-ID", token(10)), ("Byte-Range", "one-two/three")],
                                        b"x"))
            msrp.pump(lambda: tid in msrp.responses)
            out = {"code": msrp.responses[tid]}
        elif name == "drop-mid":
            frame = msrp.frame_bytes(token(12), "SEND", [("Message-ID", token(10)), ("Byte-Range", "1-4096/4096")],
                                     b"z" * 4096)
            msrp.write(frame[:len(frame) // 2])
            time.sleep(0.2)
            msrp.sock.close()
            out = {}
        elif name == "flood":
            burst = b"".join(
                msrp.frame_bytes(f"fl{i:08d}", "SEND", [("Message-ID", f"flood{i}"), ("Byte-Range", "1-1/1")], b"x")
                for i in range(int(arg))
            )
            closed = False
            try:
                msrp.write(burst)
                msrp.pump(lambda: False, timeout=10)
            except (ConnectionError, OSError):
                closed = True
            except TimeoutError:
                closed = False
            out = {"closed": closed, "answered": len(msrp.responses)}
        elif name == "wait-bye":
            out = {"bye": sip.wait_bye()}
        elif name == "bye":
            out = {"code": sip.bye()}
        else:
            raise ValueError(f"unknown step {step}")
        emit("STEP", f"{name} {json.dumps(out)}")
        result[name] = out
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["uas", "uac"])
    p.add_argument("--proxy", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--ha1", required=True)
    p.add_argument("--domain", default="example.test")
    p.add_argument("--call")
    p.add_argument("--setup", default="passive", choices=["passive", "active", "none"])
    p.add_argument("--out", default=".")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--script", required=True)
    args = p.parse_args()
    host, port = args.proxy.rsplit(":", 1)
    sip = Sip((host, int(port)), args.user, args.ha1, args.domain)
    me = f"{args.user}@{args.domain}"
    session_id = token(16)
    try:
        if args.mode == "uas":
            sip.register()
            emit("READY", f"registered {me}")
            invite, addr = sip.wait_invite()
            peer_path, _, offered = message_line(invite.body)
            emit("EVENT", f"offered {offered} {peer_path[0]}")
            peer = re.search(r"sip:([^>;]+)", invite.get("From")).group(1)
            listener = None
            scheme, proto = ("msrps", "TCP/TLS/MSRP") if args.tls else ("msrp", "TCP/MSRP")
            if args.setup == "active":
                local = f"msrp://127.0.0.1:9/{session_id};tcp"
            else:
                listener = socket.socket()
                listener.bind(("127.0.0.1", 0))
                listener.listen(1)
                local = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/{session_id};tcp"
            sdp = sdp_of(local, None if args.setup == "none" else args.setup, int(local.split(":")[2].split("/")[0]),
                         proto)
            sip.answer(invite, addr, sdp)
            if listener:
                listener.settimeout(15)
                conn, _ = listener.accept()
                if args.tls:
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(*args.tls)
                    conn = ctx.wrap_socket(conn, server_side=True)
                    emit("EVENT", f"tls {conn.version()}")
            else:
                h, _, rest = peer_path[0].split("://", 1)[1].partition(":")
                conn = socket.create_connection((h, int(rest.split("/")[0].split(";")[0])), timeout=10)
            msrp = Msrp(conn, local, peer_path)
        else:
            listener = None
            conn_path_local = f"msrp://127.0.0.1:9/{session_id};tcp"
            resp = sip.invite(args.call, sdp_of(conn_path_local, None, 9))
            peer_path, setup, _ = message_line(resp.body)
            peer = f"{args.call}@{args.domain}"
            emit("EVENT", f"answered setup={setup}")
            h, _, rest = peer_path[0].split("://", 1)[1].partition(":")
            conn = socket.create_connection((h, int(rest.split("/")[0].split(";")[0])), timeout=10)
            msrp = Msrp(conn, conn_path_local, peer_path)
        result = run_script(msrp, sip, [s for s in args.script.split(",") if s], args, me, peer)
        result["reports"] = msrp.reports
    except Exception as e:  # noqa: BLE001 - reported to the test
        emit("RESULT", {"error": f"{type(e).__name__}: {e}"})
        sys.exit(1)
    emit("RESULT", result)


if __name__ == "__main__":
    main()

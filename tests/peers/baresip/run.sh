#!/bin/bash
# run.sh : baresip as a registered, auto-answering SIP UA in the FOREGROUND on
# 127.0.0.1 only. Writes config/accounts into BS_RUN, then execs baresip (the
# spawner's pid is baresip's). Ready once the log shows
# "USER@DOMAIN: {0/UDP/v4} 200 OK" (the REGISTER answer).
#   BS_RUN         run directory (config, log files)     required
#   BS_SIP_PORT    local SIP port                         required
#   BS_CTRL_PORT   ctrl_tcp (netstring JSON) port         required
#   BS_RTP_PORTS   RTP port range "LOW-HIGH"              required
#   KAM_PORT       Kamailio SIP port (outbound proxy)     required
#   KAM_DOMAIN     SIP domain                             default example.test
#   BS_USER/BS_PASS  account                              default bob/bobpass
#   BS_TRANSPORT   udp or tcp                             default udp
#   BS_AUDIO       sine (ausine 440 Hz, default) or wav (generated 440 Hz tone via aufile)
#   BS_SNDFILE=1   record sent/received audio as WAV files into BS_RUN
#   BS_MEDIAENC    account mediaenc, e.g. srtp-mand (loads srtp.so); default empty (plain RTP)
#   BS_VIDEO=1     video too: VP8 (vp8.so), source and display from fakevideo.so
#   BS_ANSWERMODE  auto (default), manual (ring until ctrl "accept") or early (183 with media)
#   BS_SINE_HZ     ausine frequency                      default 440
#   BS_CONTACTS    space-separated sip: URIs for the contacts file (loads contact.so, whose
#                  `message` command sends a plain MESSAGE to the current contact)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${BS_RUN:?}" "${BS_SIP_PORT:?}" "${BS_CTRL_PORT:?}" "${BS_RTP_PORTS:?}" "${KAM_PORT:?}"
KAM_DOMAIN=${KAM_DOMAIN:-example.test}
BS_USER=${BS_USER:-bob}; BS_PASS=${BS_PASS:-bobpass}; BS_TRANSPORT=${BS_TRANSPORT:-udp}
command -v baresip >/dev/null || { echo "baresip not installed: run tests/run-all.sh" >&2; exit 127; }
mkdir -p "$BS_RUN"

# ausine needs no file (and only does 48 kHz stereo, hence ausrc_srate);
# aufile plays a generated 8 kHz WAV (60 s, about 0.5 s to generate).
src="ausine,${BS_SINE_HZ:-440}"; srate=""
if [ "${BS_AUDIO:-sine}" = wav ]; then
  [ -s "$BS_RUN/tone.wav" ] || python3 "$HERE/../sipp/gen_tone.py" "$BS_RUN/tone.ulaw" 60 440 >/dev/null
  src="aufile,$BS_RUN/tone.wav"; srate="# "
fi
snd="# "; [ "${BS_SNDFILE:-0}" = 1 ] && snd=""
menc=${BS_MEDIAENC:-}; srtp="# "; [ -n "$menc" ] && srtp=""
video="# "; [ "${BS_VIDEO:-0}" = 1 ] && video=""
contact="# "; [ -n "${BS_CONTACTS:-}" ] && contact=""
sed -e "s|@SIP_PORT@|$BS_SIP_PORT|; s|@CTRL_PORT@|$BS_CTRL_PORT|; s|@RTP_PORTS@|$BS_RTP_PORTS|" \
    -e "s|@AUDIO_SOURCE@|$src|; s|@RUN@|$BS_RUN|; s|@SNDFILE@|$snd|; s|@AUSRC_SRATE@|$srate|" \
    -e "s|@SRTP@|$srtp|; s|@VIDEO@|$video|; s|@CONTACT@|$contact|" \
    "$HERE/config.in" > "$BS_RUN/config"
sed -e "s|@USER@|$BS_USER|g; s|@PASS@|$BS_PASS|; s|@DOMAIN@|$KAM_DOMAIN|" \
    -e "s|@KAM_PORT@|$KAM_PORT|; s|@TRANSPORT@|$BS_TRANSPORT|g; s|@MEDIAENC@|$menc|" \
    -e "s|@ANSWERMODE@|${BS_ANSWERMODE:-auto}|" \
    "$HERE/accounts.in" > "$BS_RUN/accounts"
: > "$BS_RUN/contacts"
for c in ${BS_CONTACTS:-}; do echo "<$c>" >> "$BS_RUN/contacts"; done
# baresip 1.0 binds RTP/RTCP to the wildcard address whatever net_interface says:
# the bind_lo.c shim turns those binds into 127.0.0.1 (about 0.1 s to compile).
command -v cc >/dev/null || { echo "cc not installed: run tests/run-all.sh" >&2; exit 127; }
cc -shared -fPIC -O2 -o "$BS_RUN/bind_lo.so" "$HERE/bind_lo.c" -ldl
export LD_PRELOAD="$BS_RUN/bind_lo.so"
# -f: config dir (nothing is read from or written to ~/.baresip)
# With contacts the stdio UI runs (it prints received MESSAGEs): it needs the spawner's
# stdin pipe; without, nothing reads stdin.
if [ -n "${BS_CONTACTS:-}" ]; then exec baresip -f "$BS_RUN"; fi
exec baresip -f "$BS_RUN" < /dev/null

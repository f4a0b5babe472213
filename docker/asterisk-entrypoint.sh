#!/bin/sh
# Use callcore's asterisk-config/ as the Asterisk configuration, keeping the image's
# other module configs. The AMI secret comes from CALLCORE_AMI_SECRET if set.
# Several Asterisk servers on one host network (docker-compose.cluster.yml) tell themselves apart with:
#   CALLCORE_AST_SYSTEMNAME  asterisk.conf [options] systemname: prefixes every uniqueid ("ast1-1764…"),
#                            so two servers' channels never share an id in callcore's store
#   CALLCORE_AST_AMI_PORT    manager.conf port (AMI stays on 127.0.0.1)
#   CALLCORE_AST_SIP_PORT    pjsip.conf transport-udp port
#   CALLCORE_AST_RTP_START / CALLCORE_AST_RTP_END   rtp.conf range
set -e
# ASTERISK_ETC / ASTERISK_BIN exist for tests/unit/callcore/test_docker.py (runs this script in a temp dir).
ETC=${ASTERISK_ETC:-/etc/asterisk}
cp "$ETC"/callcore/*.conf "$ETC"/
if [ -n "${CALLCORE_AMI_SECRET:-}" ]; then
  case "$CALLCORE_AMI_SECRET" in
    *"
"*) echo "callcore-entrypoint: CALLCORE_AMI_SECRET must be one line" >&2; exit 1 ;;
  esac
  # escape what sed's replacement treats specially (\, /, &) so any one-line secret works
  esc=$(printf '%s' "$CALLCORE_AMI_SECRET" | sed -e 's/[\\/&]/\\&/g')
  sed -i "s/^secret *=.*/secret = $esc/" "$ETC"/manager.conf
fi
number() {  # number NAME VALUE: a TCP/UDP port or refuse
  case "$2" in
    ''|*[!0-9]*) echo "callcore-entrypoint: $1 must be a port number, got '$2'" >&2; exit 1 ;;
  esac
  if [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then echo "callcore-entrypoint: $1 out of range: $2" >&2; exit 1; fi
}
if [ -n "${CALLCORE_AST_SYSTEMNAME:-}" ]; then
  case "$CALLCORE_AST_SYSTEMNAME" in
    *[!A-Za-z0-9_-]*) echo "callcore-entrypoint: CALLCORE_AST_SYSTEMNAME must be letters, digits, _ or -" >&2; exit 1 ;;
  esac
  [ -f "$ETC"/asterisk.conf ] || printf '[options]\n' > "$ETC"/asterisk.conf
  grep -q '^\[options\]' "$ETC"/asterisk.conf || printf '\n[options]\n' >> "$ETC"/asterisk.conf
  sed -i -e '/^[; ]*systemname *=/d' -e "s/^\[options\].*/&\nsystemname = $CALLCORE_AST_SYSTEMNAME/" "$ETC"/asterisk.conf
fi
if [ -n "${CALLCORE_AST_AMI_PORT:-}" ]; then
  number CALLCORE_AST_AMI_PORT "$CALLCORE_AST_AMI_PORT"
  sed -i "s/^port *= *[0-9]*/port = $CALLCORE_AST_AMI_PORT/" "$ETC"/manager.conf
fi
if [ -n "${CALLCORE_AST_SIP_PORT:-}" ]; then
  number CALLCORE_AST_SIP_PORT "$CALLCORE_AST_SIP_PORT"
  sed -i "s/^bind = 0\.0\.0\.0:[0-9]*/bind = 0.0.0.0:$CALLCORE_AST_SIP_PORT/" "$ETC"/pjsip.conf
fi
if [ -n "${CALLCORE_AST_RTP_START:-}${CALLCORE_AST_RTP_END:-}" ]; then
  number CALLCORE_AST_RTP_START "${CALLCORE_AST_RTP_START:-}"
  number CALLCORE_AST_RTP_END "${CALLCORE_AST_RTP_END:-}"
  sed -i -e "s/^rtpstart *= *[0-9]*/rtpstart = $CALLCORE_AST_RTP_START/" -e "s/^rtpend *= *[0-9]*/rtpend = $CALLCORE_AST_RTP_END/" "$ETC"/rtp.conf
fi
exec ${ASTERISK_BIN:-asterisk} -f -vvv

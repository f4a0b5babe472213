#!/bin/sh
# Use callcore's asterisk-config/ as the Asterisk configuration, keeping the image's
# other module configs. The AMI secret comes from CALLCORE_AMI_SECRET if set.
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
exec ${ASTERISK_BIN:-asterisk} -f -vvv

#!/bin/sh
# Use callcore's asterisk-config/ as the Asterisk configuration, keeping the image's
# other module configs. The AMI secret comes from CALLCORE_AMI_SECRET if set.
set -e
cp /etc/asterisk/callcore/*.conf /etc/asterisk/
if [ -n "$CALLCORE_AMI_SECRET" ]; then
  sed -i "s/^secret *=.*/secret = $CALLCORE_AMI_SECRET/" /etc/asterisk/manager.conf
fi
exec asterisk -f -vvv

#!/bin/sh
# Register the unit with systemd. The daemon is neither enabled nor started:
# it answers DNS and HTTPS for every host registered with it, which an
# operator turns on deliberately (systemctl enable --now agw).
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# On upgrade, restart a running daemon onto the new binary.
	if systemctl is-active --quiet agw.service; then
		systemctl try-restart agw.service >/dev/null 2>&1 || true
	fi
fi

#!/bin/sh
# Stop the daemon before its binary goes, on removal only: deb passes
# "remove", rpm passes 0 when no version of the package stays installed.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now agw.service >/dev/null 2>&1 || true
	fi
	;;
esac

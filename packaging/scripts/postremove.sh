#!/bin/sh
# Forget the removed unit. The data directory /var/lib/agw (identity, CA,
# credentials, audit trail), the agw user and the agw-admin group stay:
# remove them by hand once nothing needs the CA or the audit trail.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi

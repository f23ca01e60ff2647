#!/bin/sh
# Create the agw system user the daemon runs as, and the agw-admin group
# whose members may use its admin socket. Both are kept on removal: files
# they own (the data directory) may outlive the package.
set -e

if ! getent group agw-admin >/dev/null 2>&1; then
	groupadd --system agw-admin
fi
if ! getent passwd agw >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /var/lib/agw --shell /usr/sbin/nologin --user-group --comment "agw gateway" agw
fi

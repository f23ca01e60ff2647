package adminserver

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Listen opens the admin socket: mode 0600, or 0660 owned by the admin
// group. A stale socket left by a crash is replaced; a live one is an error.
func Listen(path string, gid int) (net.Listener, error) {
	dir := filepath.Dir(path)
	dirMode := os.FileMode(0o700)
	if gid >= 0 {
		dirMode = 0o750
	}
	if _, err := os.Stat(dir); err != nil {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
		if gid >= 0 {
			if err := os.Chown(dir, -1, gid); err != nil {
				return nil, fmt.Errorf("give socket directory to the admin group: %w", err)
			}
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or pass another --socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another agw serve is already listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("give admin socket to the admin group: %w", err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set admin socket mode: %w", err)
	}
	return ln, nil
}

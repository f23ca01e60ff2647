package adminserver

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Listen opens the admin socket: mode 0600, or 0660 owned by the admin
// group. A stale socket left by a crash is replaced; a live one is an error.
func Listen(path string, gid int) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
	}
	if gid >= 0 {
		// Group members must be able to reach the socket: the directory
		// needs the group's search bit whatever the umask made of it (and
		// only that: they need not list it).
		if err := groupSearchable(dir, gid); err != nil {
			return nil, err
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

// groupSearchable gives dir to group gid with the group search bit, when
// the daemon owns it; a directory owned by someone else (root's /run)
// must already let the group through, or the error says so.
func groupSearchable(dir string, gid int) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) == os.Geteuid() {
		if err := os.Chown(dir, -1, gid); err != nil {
			return fmt.Errorf("give socket directory %s to the admin group: %w", dir, err)
		}
		if err := os.Chmod(dir, fi.Mode().Perm()|0o010); err != nil {
			return fmt.Errorf("let the admin group reach %s: %w", dir, err)
		}
		return nil
	}
	if fi.Mode().Perm()&0o011 == 0 {
		return fmt.Errorf("the admin group cannot reach the socket: %s (mode %v) is not searchable by its group or others; pass --socket in a directory the group can search", dir, fi.Mode().Perm())
	}
	return nil
}

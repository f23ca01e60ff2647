package crypto

import (
	"fmt"
	"os"
)

// writeFileExcl writes data to a new file at path with mode perm. It never
// replaces an existing file (the error then wraps fs.ErrExist), and it
// removes the file it created if writing it fails, so a crash-free failure
// leaves nothing half-written behind.
func writeFileExcl(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	// The umask may have cleared bits; set exactly what was asked for.
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return fmt.Errorf("set mode of %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

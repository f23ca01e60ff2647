package adminserver

import "golang.org/x/sys/unix"

func peerCredentials(fd int) (uid, gid, pid int, err error) {
	c, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, -1, 0, err
	}
	return int(c.Uid), int(c.Gid), int(c.Pid), nil
}

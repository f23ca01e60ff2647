package adminserver

import "golang.org/x/sys/unix"

func peerCredentials(fd int) (uid, gid, pid int, err error) {
	c, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, -1, 0, err
	}
	gid = -1
	if c.Ngroups > 0 {
		gid = int(c.Groups[0])
	}
	pid, perr := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if perr != nil {
		pid = 0
	}
	return int(c.Uid), gid, pid, nil
}

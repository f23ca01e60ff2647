package adminserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// peer is the process on the other end of an admin socket connection, as
// the kernel reports it (not as the client claims).
type peer struct {
	UID, GID, PID int
	err           error
}

type peerKey struct{}

// peerConnContext attaches the connection's peer credentials to every
// request's context (http.Server.ConnContext).
func peerConnContext(ctx context.Context, c net.Conn) context.Context {
	p := peer{UID: -1, GID: -1}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		p.err = fmt.Errorf("admin connection is not a Unix socket")
		return context.WithValue(ctx, peerKey{}, p)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		p.err = err
		return context.WithValue(ctx, peerKey{}, p)
	}
	cerr := raw.Control(func(fd uintptr) {
		p.UID, p.GID, p.PID, p.err = peerCredentials(int(fd))
	})
	if cerr != nil && p.err == nil {
		p.err = cerr
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func peerFrom(ctx context.Context) peer {
	p, ok := ctx.Value(peerKey{}).(peer)
	if !ok {
		return peer{UID: -1, GID: -1, err: fmt.Errorf("no peer credentials")}
	}
	return p
}

// adminPolicy decides which local users may use the admin socket: root, the
// daemon's own user, and members of the admin group.
type adminPolicy struct {
	selfUID  int
	groupGID int // -1: no admin group
	group    string
}

func newAdminPolicy(group string) (adminPolicy, error) {
	pol := adminPolicy{selfUID: os.Getuid(), groupGID: -1, group: group}
	if group == "" {
		return pol, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		if _, nerr := strconv.Atoi(group); nerr == nil {
			g, err = user.LookupGroupId(group)
		}
	}
	if err != nil {
		return pol, fmt.Errorf("admin group %q: %w (create it, or leave --admin-group unset)", group, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return pol, fmt.Errorf("admin group %q has a non-numeric gid %q", group, g.Gid)
	}
	pol.groupGID = gid
	return pol, nil
}

// allows reports whether p may use the admin API, and if not, why.
func (pol adminPolicy) allows(p peer) (bool, string) {
	if p.err != nil {
		return false, "cannot read the caller's credentials from the socket: " + p.err.Error()
	}
	if p.UID == 0 || p.UID == pol.selfUID {
		return true, ""
	}
	if pol.groupGID >= 0 {
		if p.GID == pol.groupGID {
			return true, ""
		}
		if u, err := user.LookupId(strconv.Itoa(p.UID)); err == nil {
			if gids, err := u.GroupIds(); err == nil && slices.Contains(gids, strconv.Itoa(pol.groupGID)) {
				return true, ""
			}
		}
	}
	who := fmt.Sprintf("uid %d", p.UID)
	if u, err := user.LookupId(strconv.Itoa(p.UID)); err == nil {
		who = fmt.Sprintf("user %s (uid %d)", u.Username, p.UID)
	}
	msg := fmt.Sprintf("%s may not use the agw admin API: only root, the daemon's user (uid %d)", who, pol.selfUID)
	if pol.group != "" {
		msg += " and members of group " + pol.group
	} else {
		msg += " and members of the --admin-group (none is set)"
	}
	return false, msg + " are served"
}

package tunnel

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// SOCKS5 (RFC 1928) with username/password authentication (RFC 1929).

const (
	socksVersion     = 5
	authNone         = 0x00
	authUserPass     = 0x02
	authNoAcceptable = 0xff
	userPassVersion  = 1

	cmdConnect   = 1
	cmdBind      = 2
	cmdAssociate = 3

	atypIPv4   = 1
	atypDomain = 3
	atypIPv6   = 4

	socksSucceeded       = 0x00
	socksNotAllowed      = 0x02
	socksHostUnreachable = 0x04
	socksCmdUnsupported  = 0x07
	socksAtypUnsupported = 0x08
)

// socksReply is a reply with the given code and an unspecified bound
// address (the client has no use for agw's).
func socksReply(code byte) []byte {
	return []byte{socksVersion, code, 0, atypIPv4, 0, 0, 0, 0, 0, 0}
}

func (c *Conn) readN(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		return nil, readErr(err)
	}
	return b, nil
}

func (c *Conn) readSOCKS5(opt Options) error {
	hdr, err := c.readN(2)
	if err != nil {
		return err
	}
	if hdr[1] == 0 {
		_, _ = c.Conn.Write([]byte{socksVersion, authNoAcceptable})
		return &Error{Reason: "SOCKS5 greeting offers no authentication method"}
	}
	methods, err := c.readN(int(hdr[1]))
	if err != nil {
		return err
	}
	var none, userPass bool
	for _, m := range methods {
		none = none || m == authNone
		userPass = userPass || m == authUserPass
	}
	c.req = Request{Proto: ProtoSOCKS5}
	switch {
	case userPass:
		// Preferred: it carries the agent's token.
		if _, err := c.Conn.Write([]byte{socksVersion, authUserPass}); err != nil {
			return err
		}
		if err := c.readSOCKS5Auth(opt); err != nil {
			return err
		}
	case none:
		if _, err := c.Conn.Write([]byte{socksVersion, authNone}); err != nil {
			return err
		}
	default:
		_, _ = c.Conn.Write([]byte{socksVersion, authNoAcceptable})
		return &Error{Reason: "SOCKS5 client offers neither no-authentication nor username/password"}
	}

	req, err := c.readN(4)
	if err != nil {
		return err
	}
	if req[0] != socksVersion {
		return &Error{Reason: fmt.Sprintf("SOCKS5 request with version %d", req[0])}
	}
	switch req[1] {
	case cmdConnect:
	case cmdBind, cmdAssociate:
		_, _ = c.Conn.Write(socksReply(socksCmdUnsupported))
		name := map[byte]string{cmdBind: "BIND", cmdAssociate: "UDP ASSOCIATE"}[req[1]]
		return &Error{Reason: "SOCKS5 " + name + " is not supported: agw opens CONNECT tunnels only"}
	default:
		_, _ = c.Conn.Write(socksReply(socksCmdUnsupported))
		return &Error{Reason: fmt.Sprintf("SOCKS5 command %d is not supported: agw opens CONNECT tunnels only", req[1])}
	}
	var host string
	switch req[3] {
	case atypIPv4, atypIPv6:
		n := 4
		if req[3] == atypIPv6 {
			n = 16
		}
		b, err := c.readN(n)
		if err != nil {
			return err
		}
		a, _ := netip.AddrFromSlice(b)
		host = a.Unmap().String()
	case atypDomain:
		l, err := c.readN(1)
		if err != nil {
			return err
		}
		b, err := c.readN(int(l[0]))
		if err != nil {
			return err
		}
		if host = normalizeHost(string(b)); host == "" {
			_, _ = c.Conn.Write(socksReply(socksHostUnreachable))
			return &Error{Reason: "SOCKS5 target " + strconv.Quote(printable(string(b))) + " is not a host name"}
		}
	default:
		_, _ = c.Conn.Write(socksReply(socksAtypUnsupported))
		return &Error{Reason: fmt.Sprintf("SOCKS5 address type %d is not supported", req[3])}
	}
	p, err := c.readN(2)
	if err != nil {
		return err
	}
	c.req.Host, c.req.Port = host, uint16(p[0])<<8|uint16(p[1])
	if c.req.Port == 0 {
		_, _ = c.Conn.Write(socksReply(socksHostUnreachable))
		return &Error{Reason: "SOCKS5 target port 0"}
	}
	return nil
}

// readSOCKS5Auth reads the username/password step and answers it.
func (c *Conn) readSOCKS5Auth(opt Options) error {
	hdr, err := c.readN(2)
	if err != nil {
		return err
	}
	if hdr[0] != userPassVersion {
		_, _ = c.Conn.Write([]byte{userPassVersion, 1})
		return &Error{Reason: fmt.Sprintf("SOCKS5 username/password step with version %d", hdr[0])}
	}
	user, err := c.readN(int(hdr[1]))
	if err != nil {
		return err
	}
	l, err := c.readN(1)
	if err != nil {
		return err
	}
	pass, err := c.readN(int(l[0]))
	if err != nil {
		return err
	}
	c.req.User, c.req.Password = string(user), string(pass)
	if opt.Authenticate != nil && (len(user) > 0 || len(pass) > 0) {
		if err := opt.Authenticate(c.req.User, c.req.Password); err != nil {
			_, _ = c.Conn.Write([]byte{userPassVersion, 1})
			return &Error{Reason: err.Error()}
		}
	}
	_, err = c.Conn.Write([]byte{userPassVersion, 0})
	return err
}

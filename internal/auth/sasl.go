package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"unicode/utf8"

	"github.com/ferry-mq/ferry/internal/base"
)

// PlainMessage is a decoded SASL PLAIN message (RFC 4616).
type PlainMessage struct {
	AuthzID  string // "" when the client acts as itself
	AuthcID  string
	Password string
}

// User returns the user the message authenticates. Ferry does not let a
// user act as another: a non-empty authzid must equal the authcid
// (base.CodeAccessRefused otherwise).
func (m PlainMessage) User() (string, error) {
	if m.AuthzID != "" && m.AuthzID != m.AuthcID {
		return "", base.Errorf(base.CodeAccessRefused, "auth: user %q may not act as %q", m.AuthcID, m.AuthzID)
	}
	return m.AuthcID, nil
}

// ParsePlain decodes a PLAIN message, [authzid] NUL authcid NUL passwd,
// within base.AuthSASLMessageBytesMax. It refuses (base.CodeInvalidArgument)
// anything else: a missing or extra NUL, an empty authcid or password,
// fields over their limits, invalid UTF-8. The error never contains the
// password.
func ParsePlain(msg []byte) (PlainMessage, error) {
	bad := func(what string) (PlainMessage, error) {
		return PlainMessage{}, base.Errorf(base.CodeInvalidArgument, "auth: PLAIN: %s", what)
	}
	if len(msg) > base.AuthSASLMessageBytesMax {
		return bad("message over the limit")
	}
	i := bytes.IndexByte(msg, 0)
	if i < 0 {
		return bad("want authzid NUL authcid NUL password")
	}
	j := bytes.IndexByte(msg[i+1:], 0)
	if j < 0 {
		return bad("want authzid NUL authcid NUL password")
	}
	authz, authc, pass := msg[:i], msg[i+1:i+1+j], msg[i+2+j:]
	switch {
	case bytes.IndexByte(pass, 0) >= 0:
		return bad("more than two NUL separators")
	case len(authc) == 0:
		return bad("empty authentication identity")
	case len(pass) == 0:
		return bad("empty password")
	case len(authz) > base.AuthIdentityBytesMax || len(authc) > base.AuthIdentityBytesMax:
		return bad("identity over the limit")
	case len(pass) > base.AuthPasswordBytesMax:
		return bad("password over the limit")
	case !utf8.Valid(authz) || !utf8.Valid(authc) || !utf8.Valid(pass):
		return bad("not UTF-8")
	}
	return PlainMessage{AuthzID: string(authz), AuthcID: string(authc), Password: string(pass)}, nil
}

// ScramConversation is the server side of one SCRAM-SHA-256 or -512
// authentication (RFC 5802, RFC 7677; scram.go). Not safe for concurrent
// use; one per connection attempt.
type ScramConversation struct {
	srv  scramServer
	mech Mechanism
}

// Step takes the client's next message and returns the server's. After the
// second step, Done is true; the conversation succeeded only if Username
// returns ok. A refused client gets base.CodeUnauthenticated (the response,
// when not empty, is RFC 5802's "e=..." to send back before closing);
// oversized or non-UTF-8 messages get base.CodeInvalidArgument. The final
// message may carry the nonce as librdkafka before 2.6.1 sends it (its own
// nonce, then the server's whole r=), as Apache Kafka accepts: see scram.go.
func (c *ScramConversation) Step(clientMsg []byte) (response []byte, err error) {
	if len(clientMsg) > base.AuthSASLMessageBytesMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "auth: %s: message over the limit", c.mech)
	}
	if !utf8.Valid(clientMsg) {
		return nil, base.Errorf(base.CodeInvalidArgument, "auth: %s: message is not UTF-8", c.mech)
	}
	resp, err := c.srv.step(string(clientMsg))
	return []byte(resp), err
}

// Done reports whether the conversation is over, successfully or not.
func (c *ScramConversation) Done() bool { return c.srv.state == scramStateDone }

// Username returns the authenticated user once the conversation succeeded.
func (c *ScramConversation) Username() (string, bool) {
	if c.srv.state != scramStateDone || !c.srv.valid {
		return "", false
	}
	return c.srv.user, true
}

// NewScram starts a SCRAM server conversation for mechanism m. nonce
// returns the server's nonce: at least 18 random printable characters, no
// commas, drawn by the caller (this package draws no randomness). After
// success, call Admit with the user name and the peer address.
func (d *Directory) NewScram(m Mechanism, nonce func() string) (*ScramConversation, error) {
	if m.hash() == nil {
		return nil, base.Errorf(base.CodeNotSupported, "auth: mechanism %s is not SCRAM", m)
	}
	return &ScramConversation{mech: m, srv: scramServer{mech: m, nonce: nonce,
		lookup: func(name string) (ScramCredential, error) { return d.scramLookup(m, name) }}}, nil
}

// scramLookup returns a user's stored credential. For an unknown user it
// returns a decoy derived from the directory's decoy key, so the
// conversation fails at the proof like a wrong password does and does not
// reveal which users exist (RFC 5802 §5.1); without a decoy key it fails at
// once.
func (d *Directory) scramLookup(m Mechanism, name string) (ScramCredential, error) {
	var cred ScramCredential
	if u := d.users[name]; u != nil {
		cred = u.creds.ScramSHA256
		if m == MechScramSHA512 {
			cred = u.creds.ScramSHA512
		}
	}
	if cred.StoredKey == nil {
		if d.decoyKey == nil {
			return ScramCredential{}, base.Errorf(base.CodeUnauthenticated, "auth: unknown user")
		}
		cred = d.decoy(m, name)
	}
	return cred, nil
}

func (d *Directory) decoy(m Mechanism, name string) ScramCredential {
	mac := func(label string) []byte {
		h := hmac.New(sha256.New, d.decoyKey)
		h.Write([]byte(string(m) + "\x00" + label + "\x00" + name))
		return h.Sum(nil)
	}
	stored := append(mac("stored"), mac("stored2")...)[:m.keyLen()]
	server := append(mac("server"), mac("server2")...)[:m.keyLen()]
	return ScramCredential{Salt: mac("salt")[:16], Iterations: base.AuthScramIterationsDefault,
		StoredKey: stored, ServerKey: server}
}

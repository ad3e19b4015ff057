package auth

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// The server side of SCRAM (RFC 5802, RFC 7677), written here rather than
// taken from xdg-go/scram because of one client quirk: librdkafka before
// 2.6.1 (Debian's kcat links 2.0.2) answers the server-first message with
// r=<client nonce><server's r=>, i.e. its own nonce twice, and signs that
// doubled nonce in its AuthMessage. Apache Kafka accepts it (since 3.8.1 the
// check is endsWith, CVE-2024-56128; librdkafka fixed the client in its
// PR #4895). xdg-go's server insists on the exact nonce, and the nonce
// cannot be rewritten before verification because the proof covers the
// client's bytes. This server accepts the exact nonce and exactly that
// legacy form, nothing else (Kafka accepts any prefix): both contain the
// full server nonce, so the proof still binds the conversation.

// RFC 5802 §7 server-error values sent as "e=...".
const (
	scramErrInvalidEncoding = "e=invalid-encoding"
	scramErrExtensions      = "e=extensions-not-supported"
	scramErrInvalidProof    = "e=invalid-proof"
	scramErrChannelBinding  = "e=channel-bindings-dont-match"
	scramErrCBNotSupported  = "e=channel-binding-not-supported"
	scramErrUnknownUser     = "e=unknown-user"
	scramErrInvalidUsername = "e=invalid-username-encoding"
	scramErrOther           = "e=other-error"
)

// The states of a scramServer.
const (
	scramStateFirst = iota // waiting for client-first
	scramStateFinal        // waiting for client-final
	scramStateDone         // over, valid or not
)

// scramServer is one server conversation. Not safe for concurrent use.
type scramServer struct {
	mech   Mechanism
	lookup func(name string) (ScramCredential, error)
	nonce  func() string

	state    int
	valid    bool
	user     string
	gs2      string // the gs2 header of the client-first message, e.g. "n,,"
	cnonce   string // the client's nonce
	combined string // client nonce + server nonce, as sent in server-first
	first    string // client-first-message-bare
	sfirst   string // server-first-message
	cred     ScramCredential
}

// step runs one step. On failure it returns the "e=..." to send (may be
// empty) and an error; the conversation is then done and invalid.
func (s *scramServer) step(msg string) (string, error) {
	switch s.state {
	case scramStateFirst:
		resp, err := s.clientFirst(msg)
		if err != nil {
			s.state = scramStateDone
			return resp, err
		}
		s.state = scramStateFinal
		return resp, nil
	case scramStateFinal:
		s.state = scramStateDone
		resp, err := s.clientFinal(msg)
		if err == nil {
			s.valid = true
		}
		return resp, err
	}
	return "", base.Errorf(base.CodeUnauthenticated, "auth: %s: conversation already over", s.mech)
}

func scramFail(e, format string, args ...any) (string, error) {
	return e, base.Errorf(base.CodeUnauthenticated, format, args...)
}

// clientFirst parses gs2-header client-first-message-bare and answers the
// server-first message r=<combined nonce>,s=<salt>,i=<iterations>.
func (s *scramServer) clientFirst(msg string) (string, error) {
	// gs2-header = gs2-cbind-flag "," [authzid] ","
	cbind, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return scramFail(scramErrInvalidEncoding, "auth: %s: client-first message without a gs2 header", s.mech)
	}
	switch {
	case cbind == "n", cbind == "y": // y: the client could bind but thinks we cannot; we cannot
	case strings.HasPrefix(cbind, "p="):
		return scramFail(scramErrCBNotSupported, "auth: %s: channel binding is not supported", s.mech)
	default:
		return scramFail(scramErrInvalidEncoding, "auth: %s: bad gs2 channel-binding flag", s.mech)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return scramFail(scramErrInvalidEncoding, "auth: %s: client-first message without a gs2 header", s.mech)
	}
	s.gs2 = msg[:len(msg)-len(bare)]
	s.first = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || strings.HasPrefix(attrs[0], "m=") {
		return scramFail(scramErrExtensions, "auth: %s: mandatory extension or missing attributes", s.mech)
	}
	name, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return scramFail(scramErrInvalidEncoding, "auth: %s: client-first message without n=", s.mech)
	}
	if s.user, ok = decodeSaslName(name); !ok || s.user == "" || len(s.user) > base.AuthIdentityBytesMax {
		return scramFail(scramErrInvalidUsername, "auth: %s: bad user name encoding", s.mech)
	}
	if authz != "" {
		// Ferry does not let a user act as another (as PLAIN).
		az, ok := strings.CutPrefix(authz, "a=")
		if az, ok2 := decodeSaslName(az); !ok || !ok2 || az != s.user {
			return scramFail(scramErrOther, "auth: %s: user %q may not act as another", s.mech, s.user)
		}
	}
	if s.cnonce, ok = strings.CutPrefix(attrs[1], "r="); !ok || !printableNonce(s.cnonce) {
		return scramFail(scramErrInvalidEncoding, "auth: %s: client-first message without a valid r=", s.mech)
	}
	// Other extensions (Kafka's tokenauth=true) are ignored: Ferry has no
	// delegation tokens, and the credential lookup is the user's own.
	cred, err := s.lookup(s.user)
	if err != nil {
		return scramFail(scramErrUnknownUser, "auth: %s: login refused for user %q", s.mech, s.user)
	}
	s.cred = cred
	snonce := s.nonce()
	base.Assert(printableNonce(snonce), "auth: SCRAM server nonce %q is empty or not printable without commas", snonce)
	s.combined = s.cnonce + snonce
	s.sfirst = "r=" + s.combined + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) +
		",i=" + strconv.Itoa(cred.Iterations)
	return s.sfirst, nil
}

// clientFinal checks c=, r= and p= and answers v=<server signature>.
func (s *scramServer) clientFinal(msg string) (string, error) {
	withoutProof, proofAttr, ok := cutLast(msg, ",p=")
	if !ok {
		return scramFail(scramErrInvalidEncoding, "auth: %s: client-final message without p=", s.mech)
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 {
		return scramFail(scramErrInvalidEncoding, "auth: %s: client-final message without c= and r=", s.mech)
	}
	cb, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return scramFail(scramErrInvalidEncoding, "auth: %s: client-final message without c=", s.mech)
	}
	if raw, err := base64.StdEncoding.Strict().DecodeString(cb); err != nil || string(raw) != s.gs2 {
		return scramFail(scramErrChannelBinding, "auth: %s: channel binding differs from the gs2 header", s.mech)
	}
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || (nonce != s.combined && nonce != s.cnonce+s.combined) {
		return scramFail(scramErrOther, "auth: %s: login refused for user %q: nonce received did not match nonce sent", s.mech, s.user)
	}
	proof, err := base64.StdEncoding.Strict().DecodeString(proofAttr)
	if err != nil || len(proof) != s.mech.keyLen() || len(s.cred.StoredKey) != s.mech.keyLen() {
		return scramFail(scramErrInvalidProof, "auth: %s: login refused for user %q", s.mech, s.user)
	}
	authMsg := []byte(s.first + "," + s.sfirst + "," + withoutProof)
	h := s.mech.hash()
	mac := hmac.New(h, s.cred.StoredKey)
	mac.Write(authMsg)
	clientKey := mac.Sum(nil)
	for i := range clientKey {
		clientKey[i] ^= proof[i]
	}
	d := h()
	d.Write(clientKey)
	if subtle.ConstantTimeCompare(d.Sum(nil), s.cred.StoredKey) != 1 {
		return scramFail(scramErrInvalidProof, "auth: %s: login refused for user %q", s.mech, s.user)
	}
	mac = hmac.New(h, s.cred.ServerKey)
	mac.Write(authMsg)
	return "v=" + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// decodeSaslName undoes RFC 5802's saslname escaping: "=2C" is ',' and
// "=3D" is '='; any other '=' is malformed.
func decodeSaslName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, !strings.Contains(s, ",")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// printableNonce reports whether n is RFC 5802's printable: at least one
// character in %x21-2B / %x2D-7E (no comma).
func printableNonce(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

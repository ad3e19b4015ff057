package kafka

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// saslMechanisms are the mechanisms SaslHandshake offers, in Kafka's
// order of preference.
var saslMechanisms = []string{string(auth.MechScramSHA512), string(auth.MechScramSHA256), string(auth.MechPlain)}

// saslState is a connection's authentication, owned by its reader.
type saslState struct {
	authenticated bool
	mech          auth.Mechanism // chosen by SaslHandshake; "" before
	// raw is set after a version-0 SaslHandshake: the client then sends
	// the SASL tokens as bare size-prefixed frames, not SaslAuthenticate
	// requests, and gets bare frames back.
	raw   bool
	scram *auth.ScramConversation
}

// allows reports whether a request of API k may be handled in this state.
// Before authentication only ApiVersions and the SASL requests are (Kafka
// closes the connection on anything else).
func (s *saslState) allows(required bool, k protocol.APIKey) bool {
	if !required || s.authenticated {
		return true
	}
	switch k {
	case protocol.APIKeyApiVersions, protocol.APIKeySaslHandshake:
		return true
	case protocol.APIKeySaslAuthenticate:
		return s.mech != ""
	}
	return false
}

func handleSaslHandshake(c *conn, r *request) error {
	var req protocol.SaslHandshakeRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	resp := protocol.SaslHandshakeResponse{Mechanisms: saslMechanisms}
	if !c.srv.cfg.AuthRequired || c.auth.authenticated || c.auth.mech != "" {
		// As Kafka on a listener without SASL, and for a second
		// handshake (re-authentication is not supported).
		resp.ErrorCode = int16(protocol.ErrorCodeIllegalSaslState)
		c.respond(r, &resp)
		return nil
	}
	mech := auth.Mechanism(req.Mechanism)
	switch mech {
	case auth.MechPlain:
	case auth.MechScramSHA256, auth.MechScramSHA512:
		conv, err := c.srv.cfg.Backend.Directory().NewScram(mech, scramNonce)
		if err != nil {
			return err
		}
		c.auth.scram = conv
	default:
		resp.ErrorCode = int16(protocol.ErrorCodeUnsupportedSaslMechanism)
		c.respondAndClose(r, &resp)
		return nil
	}
	c.auth.mech = mech
	c.auth.raw = r.hdr.APIVersion == 0
	c.respond(r, &resp)
	return nil
}

// scramNonce returns a server nonce: 24 random bytes in base64, no commas.
func scramNonce() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		base.Bugf("kafka: crypto/rand failed: %v", err) // never fails on Linux (Go 1.24+)
	}
	return base64.RawStdEncoding.EncodeToString(b)
}

func handleSaslAuthenticate(c *conn, r *request) error {
	var req protocol.SaslAuthenticateRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	var resp protocol.SaslAuthenticateResponse
	resp.Default()
	if !c.srv.cfg.AuthRequired || c.auth.authenticated || c.auth.raw {
		resp.ErrorCode = int16(protocol.ErrorCodeIllegalSaslState)
		c.respondAndClose(r, &resp)
		return nil
	}
	out, err := c.saslStep(req.AuthBytes)
	if err != nil {
		c.log.Info("authentication failed", "mechanism", c.auth.mech, "err", err)
		resp.ErrorCode = int16(protocol.ErrorCodeSaslAuthenticationFailed)
		msg := fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", c.auth.mech)
		resp.ErrorMessage = &msg
		c.respondAndClose(r, &resp)
		return nil
	}
	resp.AuthBytes = out
	c.respond(r, &resp)
	return nil
}

// saslRawToken handles one bare SASL token after a version-0 handshake.
// A failure closes the connection with no answer, as Kafka does.
func (c *conn) saslRawToken(token []byte) error {
	s, ok := c.newSlot(len(token))
	if !ok {
		return c.ctx.Err()
	}
	out, err := c.saslStep(token)
	if err != nil {
		s.complete(nil, true)
		return err
	}
	if c.auth.authenticated {
		c.auth.raw = false
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(out)), uint32(len(out)))
	s.complete(append(frame, out...), false)
	return nil
}

// saslStep runs one step of the chosen mechanism and, when it completes
// the authentication, opens the session. It returns the server's token.
func (c *conn) saslStep(token []byte) ([]byte, error) {
	peer := c.peer.Addr()
	switch c.auth.mech {
	case auth.MechPlain:
		msg, err := auth.ParsePlain(token)
		if err != nil {
			return nil, err
		}
		p, err := c.srv.cfg.Backend.Directory().AuthenticatePlain(msg, peer)
		if err != nil {
			return nil, err
		}
		return nil, c.authenticated(p.Name)
	case auth.MechScramSHA256, auth.MechScramSHA512:
		out, err := c.auth.scram.Step(token)
		if err != nil {
			return nil, err
		}
		if !c.auth.scram.Done() {
			return out, nil
		}
		user, ok := c.auth.scram.Username()
		if !ok {
			return nil, base.Errorf(base.CodeUnauthenticated, "kafka: %s conversation failed", c.auth.mech)
		}
		if _, err := c.srv.cfg.Backend.Directory().Admit(user, peer); err != nil {
			return nil, err
		}
		return out, c.authenticated(user)
	}
	return nil, base.Errorf(base.CodeUnauthenticated, "kafka: SASL token before SaslHandshake")
}

func (c *conn) authenticated(user string) error {
	if err := c.openSession(Principal{User: user, Tenant: c.srv.cfg.Tenant}); err != nil {
		return err
	}
	c.auth.authenticated = true
	c.auth.scram = nil
	return nil
}

package amqp

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// serverCapabilities are announced in connection.start, as RabbitMQ
// announces them; clients switch features on by them.
var serverCapabilities = codec.Table{
	"publisher_confirms":           true,
	"exchange_exchange_bindings":   true,
	"basic.nack":                   true,
	"consumer_cancel_notify":       true,
	"connection.blocked":           true,
	"authentication_failure_close": true,
	"per_consumer_qos":             true,
	"direct_reply_to":              true,
	"consumer_priorities":          true,
}

// mechanisms are the SASL mechanisms offered, strongest first as RabbitMQ
// lists them.
const mechanisms = "PLAIN AMQPLAIN"

func (c *conn) serverProperties() codec.Table {
	return codec.Table{
		"product":      "Ferry",
		"version":      "0.1",
		"platform":     "Go",
		"copyright":    "The Ferry authors",
		"information":  "Ferry message broker; AMQP 0-9-1 as RabbitMQ speaks it",
		"cluster_name": c.cfg.Node,
		"capabilities": serverCapabilities,
	}
}

// handshake runs the protocol header, start/start-ok, tune/tune-ok and
// open/open-ok within cfg.HandshakeTimeout. It returns a *codec.Error to
// close with, a *codec.ProtocolHeaderError (answered here), or the
// socket's error.
func (c *conn) handshake() error {
	t := c.clock.NewTimer(c.cfg.HandshakeTimeout)
	done := make(chan struct{})
	timerDone := make(chan struct{})
	go func() {
		defer close(timerDone)
		select {
		case <-t.C():
			c.log.Debug("handshake timed out")
			_ = c.nc.Close()
		case <-done:
		}
	}()
	defer func() {
		t.Stop()
		close(done)
		<-timerDone
	}()
	if err := codec.ReadProtocolHeader(c.br); err != nil {
		var he *codec.ProtocolHeaderError
		if errors.As(err, &he) {
			// Answer with the header we speak, then close (spec §4.2.2).
			_ = c.out.send(false, func(enc *codec.FrameWriter) error { return enc.WriteProtocolHeader() })
		}
		return err
	}
	if err := c.authenticate(); err != nil {
		return err
	}
	if err := c.tune(); err != nil {
		return err
	}
	return c.openVhost()
}

// authenticate sends connection.start and checks start-ok's credentials.
func (c *conn) authenticate() error {
	start := &codec.ConnectionStart{VersionMajor: codec.ProtocolMajor, VersionMinor: codec.ProtocolMinor,
		ServerProperties: c.serverProperties(), Mechanisms: mechanisms, Locales: "en_US"}
	if err := c.out.sendMethod(true, 0, start); err != nil {
		return err
	}
	m, err := c.handshakeMethod(codec.MethodConnectionStartOk)
	if err != nil {
		return err
	}
	ok := m.(*codec.ConnectionStartOk)
	c.readClientProperties(ok.ClientProperties)
	// A malformed response is refused as wrong credentials are (403), so
	// that a client without authentication_failure_close sees the same
	// silent close for both, as with RabbitMQ.
	user, password, err := saslCredentials(ok.Mechanism, ok.Response)
	var p Principal
	if err == nil {
		p, err = c.cfg.Backend.Authenticate(user, password, c.peer.Addr())
	}
	if err != nil {
		c.log.Info("authentication failed", "user", user, "mechanism", ok.Mechanism, "err", err)
		if code := base.CodeOf(err); code != base.CodeUnauthenticated && code != base.CodeAccessRefused {
			return asReply(err, codec.MethodConnectionStartOk)
		}
		if !c.caps.authFailureClose {
			// The spec's way, and what clients without the capability
			// expect: drop the socket without a word. With no reply to
			// count it (sendClose counts), count it here.
			c.srv.stats.CountError(base.CodeUnauthenticated)
			return errAuthFailed
		}
		return codec.NewError(codec.ReplyAccessRefused, base.CodeUnauthenticated, codec.MethodConnectionStartOk,
			"Login was refused using authentication mechanism %s. For details see the broker logfile.", ok.Mechanism)
	}
	c.user = p
	return nil
}

var errAuthFailed = errors.New("amqp: authentication failed")

// readClientProperties records the client's capabilities and name.
func (c *conn) readClientProperties(props codec.Table) {
	if caps, ok := props["capabilities"].(codec.Table); ok {
		flag := func(k string) bool { b, _ := caps[k].(bool); return b }
		c.caps = clientCaps{
			authFailureClose: flag("authentication_failure_close"),
			cancelNotify:     flag("consumer_cancel_notify"),
			blocked:          flag("connection.blocked"),
		}
	}
	if name, ok := props["connection_name"].(string); ok {
		c.name = name
		c.log = c.log.With("name", name)
	}
}

// saslCredentials extracts the user name and password of a PLAIN or
// AMQPLAIN response.
func saslCredentials(mechanism, response string) (user, password string, err error) {
	switch mechanism {
	case "PLAIN":
		msg, perr := auth.ParsePlain([]byte(response))
		if perr == nil {
			user, perr = msg.User()
		}
		if perr != nil {
			return "", "", protoErr(codec.ReplyAccessRefused, codec.MethodConnectionStartOk, "%v", perr)
		}
		return user, msg.Password, nil
	case "AMQPLAIN":
		return parseAMQPlain(response)
	}
	return "", "", protoErr(codec.ReplyCommandInvalid, codec.MethodConnectionStartOk,
		"unknown authentication mechanism '%s'", mechanism)
}

// parseAMQPlain decodes AMQPLAIN's response: a field table without its
// length prefix, holding LOGIN and PASSWORD. It is decoded by the codec's
// (fuzzed) table decoder, inside a connection.start-ok payload built
// around it, so that no second table parser exists.
func parseAMQPlain(response string) (user, password string, err error) {
	if len(response) > base.AuthSASLMessageBytesMax {
		return "", "", protoErr(codec.ReplyAccessRefused, codec.MethodConnectionStartOk, "AMQPLAIN response over %d bytes", base.AuthSASLMessageBytesMax)
	}
	payload := make([]byte, 0, 4+4+len(response)+1+4+1)
	payload = binary.BigEndian.AppendUint32(payload, uint32(codec.MethodConnectionStartOk))
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(response)))
	payload = append(payload, response...)
	payload = append(payload, 0, 0, 0, 0, 0, 0) // empty mechanism, response, locale
	m, derr := codec.DecodeMethod(payload)
	if derr != nil {
		return "", "", protoErr(codec.ReplyAccessRefused, codec.MethodConnectionStartOk, "malformed AMQPLAIN response")
	}
	t := m.(*codec.ConnectionStartOk).ClientProperties
	user, _ = t["LOGIN"].(string)
	password, _ = t["PASSWORD"].(string)
	if user == "" {
		return "", "", protoErr(codec.ReplyAccessRefused, codec.MethodConnectionStartOk, "AMQPLAIN response has no LOGIN")
	}
	return user, password, nil
}

// tune sends connection.tune and applies tune-ok.
func (c *conn) tune() error {
	offer := &codec.ConnectionTune{ChannelMax: c.cfg.ChannelMax, FrameMax: c.cfg.FrameMax,
		Heartbeat: uint16(c.cfg.Heartbeat / time.Second)}
	if err := c.out.sendMethod(true, 0, offer); err != nil {
		return err
	}
	m, err := c.handshakeMethod(codec.MethodConnectionTuneOk)
	if err != nil {
		return err
	}
	ok := m.(*codec.ConnectionTuneOk)
	key := codec.MethodConnectionTuneOk
	switch {
	case ok.ChannelMax > c.cfg.ChannelMax:
		return protoErr(codec.ReplyNotAllowed, key, "negotiated channel_max = %d is higher than the maximum allowed value (%d)", ok.ChannelMax, c.cfg.ChannelMax)
	case ok.FrameMax == 0 || ok.FrameMax > c.cfg.FrameMax:
		return protoErr(codec.ReplyNotAllowed, key, "negotiated frame_max = %d is larger than the maximum allowed value (%d)", ok.FrameMax, c.cfg.FrameMax)
	case ok.FrameMax < codec.FrameMinSize:
		return protoErr(codec.ReplyNotAllowed, key, "frame_max=%d < %d min size", ok.FrameMax, codec.FrameMinSize)
	}
	c.channelMax = ok.ChannelMax
	if c.channelMax == 0 {
		c.channelMax = c.cfg.ChannelMax
	}
	c.frameMax = ok.FrameMax
	c.heartbeat = time.Duration(ok.Heartbeat) * time.Second
	if err := c.fr.SetFrameMax(ok.FrameMax); err != nil {
		return err
	}
	return c.out.setFrameMax(ok.FrameMax)
}

// openVhost waits for connection.open and registers the connection.
func (c *conn) openVhost() error {
	m, err := c.handshakeMethod(codec.MethodConnectionOpen)
	if err != nil {
		return err
	}
	vhost := m.(*codec.ConnectionOpen).VirtualHost
	info := ConnInfo{ID: c.id, Protocol: "amqp", Peer: c.peer, User: c.user.User, Tenant: vhost, Name: c.name}
	s, err := c.cfg.Backend.OpenConnection(info, c.user, c.forceClose)
	if err != nil {
		switch base.CodeOf(err) {
		case base.CodeNotFound:
			return protoErr(codec.ReplyNotAllowed, codec.MethodConnectionOpen, "vhost %s not found", vhost)
		case base.CodeAccessRefused:
			return protoErr(codec.ReplyNotAllowed, codec.MethodConnectionOpen,
				"access to vhost '%s' refused for user '%s'", vhost, c.user.User)
		}
		return asReply(err, codec.MethodConnectionOpen)
	}
	c.session, c.vhost = s, vhost
	c.log = c.log.With("user", c.user.User, "vhost", vhost)
	if err := c.out.sendMethod(true, 0, &codec.ConnectionOpenOk{}); err != nil {
		return err
	}
	c.mu.Lock()
	c.open = true
	c.mu.Unlock()
	if blocked, reason := c.srv.flowBlocked(); blocked {
		c.setBlocked(true, reason)
	}
	return nil
}

// handshakeMethod reads frames until a method on channel 0, skipping
// heartbeats, and checks that it is want. A connection.close from the
// client is answered with close-ok and ends the handshake.
func (c *conn) handshakeMethod(want codec.MethodKey) (codec.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch {
		case f.Type == codec.FrameHeartbeat:
			continue
		case f.Type != codec.FrameMethod:
			return nil, protoErr(codec.ReplyUnexpectedFrame, 0, "expected method frame, got non method frame instead")
		case f.Channel != 0:
			return nil, protoErr(codec.ReplyChannelError, 0, "channel %d used before connection.open", f.Channel)
		}
		m, err := c.dec.Decode(f.Payload)
		if err != nil {
			return nil, err
		}
		if _, ok := m.(*codec.ConnectionClose); ok {
			c.mu.Lock()
			c.closing = true
			c.mu.Unlock()
			_ = c.out.sendLast(0, &codec.ConnectionCloseOk{})
			return nil, errClientClosed
		}
		if m.Key() != want {
			return nil, protoErr(codec.ReplyCommandInvalid, m.Key(), "expected '%s', got '%s'", want, m.Key())
		}
		return m, nil
	}
}

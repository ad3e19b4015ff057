package codec

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/ferry-mq/ferry/internal/base"
)

// ReplyCode is an AMQP reply code, as carried by connection.close and
// channel.close. The codes of the spec are the generated Reply* constants.
type ReplyCode uint16

// String returns the code's name as RabbitMQ writes it in reply texts
// (FRAME_ERROR), or REPLY_<n> for a code the spec does not define.
func (c ReplyCode) String() string {
	if name, ok := replyCodeName(c); ok {
		return name
	}
	return "REPLY_" + strconv.Itoa(int(c))
}

// Hard reports whether the code is a hard error, answered with
// connection.close; a soft error closes only the channel.
func (c ReplyCode) Hard() bool { return replyCodeHard(c) }

// replyTextBytesMax is the most a reply-text (a shortstr) can hold.
const replyTextBytesMax = 255

// Error is what the codec returns for bytes a peer should not have sent. It
// carries the reply code to answer with, and the method it concerns (for
// connection.close's class-id and method-id; zero when the error is not
// about one method), so the server can close exactly as RabbitMQ would.
//
// Every reply code the codec returns is a hard error: frame-error (501) for
// bytes that cannot be decoded, syntax-error (502) for decodable but illegal
// values, unexpected-frame (505) for a frame that cannot be in the right
// place, not-allowed (530) for an out-of-range frame-max, not-implemented
// (540) for an unknown method. Error unwraps to a *base.Error with the
// matching Ferry code (invalid_argument, too_large or not_supported).
type Error struct {
	ReplyCode ReplyCode
	Method    MethodKey
	Text      string
	code      base.Code
}

func newError(reply ReplyCode, code base.Code, format string, args ...any) *Error {
	return &Error{ReplyCode: reply, Text: fmt.Sprintf(format, args...), code: code}
}

// NewError returns an *Error for the server's own protocol errors, such as
// command-invalid (503) for a method a client may not send or
// channel-error (504), so that every reply the front end closes with has
// one type. code is the Ferry code it unwraps to; method is the method
// concerned, or 0.
func NewError(reply ReplyCode, code base.Code, method MethodKey, format string, args ...any) *Error {
	e := newError(reply, code, format, args...)
	e.Method = method
	return e
}

func (e *Error) Error() string {
	if e.Method != 0 {
		return fmt.Sprintf("amqp %s (%d) in %s: %s", e.ReplyCode, uint16(e.ReplyCode), e.Method, e.Text)
	}
	return fmt.Sprintf("amqp %s (%d): %s", e.ReplyCode, uint16(e.ReplyCode), e.Text)
}

// Unwrap returns the error as a *base.Error, so that base.CodeOf works.
func (e *Error) Unwrap() error { return &base.Error{Code: e.code, Msg: e.Error()} }

// ReplyText is the reply-text to send: "<NAME> - <text>" as RabbitMQ
// writes it, cut to the 255 bytes a shortstr holds without splitting a
// UTF-8 sequence.
func (e *Error) ReplyText() string {
	s := e.ReplyCode.String() + " - " + e.Text
	if len(s) <= replyTextBytesMax {
		return s
	}
	cut := replyTextBytesMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// ConnectionClose returns the connection.close that answers e.
func (e *Error) ConnectionClose() *ConnectionClose {
	return &ConnectionClose{
		ReplyCode: uint16(e.ReplyCode),
		ReplyText: e.ReplyText(),
		ClassID:   e.Method.ClassID(),
		MethodID:  e.Method.MethodID(),
	}
}

// frameError reports bytes that cannot be decoded (501).
func frameError(format string, args ...any) *Error {
	return newError(ReplyFrameError, base.CodeInvalidArgument, format, args...)
}

// syntaxError reports decodable bytes with an illegal value (502).
func syntaxError(format string, args ...any) *Error {
	return newError(ReplySyntaxError, base.CodeInvalidArgument, format, args...)
}

// tooLarge reports a frame, message or table over its limit: a frame error
// (501), as RabbitMQ answers an oversized frame or body.
func tooLarge(format string, args ...any) *Error {
	return newError(ReplyFrameError, base.CodeTooLarge, format, args...)
}

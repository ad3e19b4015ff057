package amqp

import (
	"errors"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// replyCodes maps the broker's error codes to AMQP reply codes, as
// RabbitMQ answers the same conditions. Whether the reply closes the
// channel or the connection follows from the code (codec.ReplyCode.Hard):
// 403-406 are channel errors, 5xx and 320 connection errors.
var replyCodes = map[base.Code]codec.ReplyCode{
	base.CodeInvalidArgument:    codec.ReplyPreconditionFailed, // RabbitMQ: "invalid arg 'x-...' for queue"
	base.CodeNotFound:           codec.ReplyNotFound,
	base.CodePreconditionFailed: codec.ReplyPreconditionFailed,
	base.CodeAccessRefused:      codec.ReplyAccessRefused,
	base.CodeUnauthenticated:    codec.ReplyAccessRefused,
	base.CodeTooLarge:           codec.ReplyPreconditionFailed, // "message size ... is larger than configured max size"
	base.CodeResourceLocked:     codec.ReplyResourceLocked,
	base.CodeNotSupported:       codec.ReplyNotImplemented,
	base.CodeOutOfRange:         codec.ReplyPreconditionFailed,
	base.CodeConflict:           codec.ReplyPreconditionFailed, // if-unused, if-empty
	base.CodeCorrupt:            codec.ReplyInternalError,
	base.CodeInternal:           codec.ReplyInternalError,
	base.CodeNotLeader:          codec.ReplyInternalError, // forwarded calls never return it
	base.CodeTimeout:            codec.ReplyInternalError,
	base.CodeUnavailable:        codec.ReplyInternalError, // RabbitMQ: quorum queue without quorum
	base.CodeOverloaded:         codec.ReplyResourceError,
	base.CodeNoSpace:            codec.ReplyResourceError,
	base.CodeStopped:            codec.ReplyConnectionForced, // "broker forced connection closure"
	base.CodeStorageFailed:      codec.ReplyInternalError,
}

// replyCodeOf returns the reply code for a broker error.
func replyCodeOf(err error) codec.ReplyCode {
	if rc, ok := replyCodes[base.CodeOf(err)]; ok {
		return rc
	}
	return codec.ReplyInternalError
}

// asReply turns err into the *codec.Error the front end closes a channel or
// the connection with: a *codec.Error in err's chain as it is (with method
// filled in when unset), anything else through replyCodes, its message as
// the reply text.
func asReply(err error, method codec.MethodKey) *codec.Error {
	var ce *codec.Error
	if errors.As(err, &ce) {
		if ce.Method == 0 && method != 0 {
			cp := *ce
			cp.Method = method
			return &cp
		}
		return ce
	}
	text := err.Error()
	var be *base.Error
	if errors.As(err, &be) && be.Msg != "" {
		text = be.Msg
	}
	return codec.NewError(replyCodeOf(err), base.CodeOf(err), method, "%s", text)
}

// protoErr builds a front-end protocol error.
func protoErr(reply codec.ReplyCode, method codec.MethodKey, format string, args ...any) *codec.Error {
	return codec.NewError(reply, codeForReply(reply), method, format, args...)
}

// codeForReply is the base code a front-end protocol error unwraps to.
func codeForReply(reply codec.ReplyCode) base.Code {
	switch reply {
	case codec.ReplyNotFound:
		return base.CodeNotFound
	case codec.ReplyAccessRefused:
		return base.CodeAccessRefused
	case codec.ReplyResourceLocked:
		return base.CodeResourceLocked
	case codec.ReplyNotImplemented:
		return base.CodeNotSupported
	case codec.ReplyResourceError:
		return base.CodeOverloaded
	case codec.ReplyInternalError:
		return base.CodeInternal
	case codec.ReplyConnectionForced:
		return base.CodeStopped
	case codec.ReplyPreconditionFailed:
		return base.CodePreconditionFailed
	}
	return base.CodeInvalidArgument
}

// errConnClosed reports work on a connection that has ended.
var errConnClosed = base.Errorf(base.CodeStopped, "amqp: connection closed")

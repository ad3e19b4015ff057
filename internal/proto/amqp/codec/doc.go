// Package codec is the AMQP 0-9-1 wire format, as RabbitMQ speaks it: the
// protocol header, frames (method, content header, body, heartbeat), every
// method of the spec with RabbitMQ's extensions, content properties and
// field tables.
//
// The method structs, constants, method metadata and property code are
// generated (the *_gen.go files, by internal/codegen/amqp from the
// machine-readable spec; run go generate here after changing the
// generator). Reader, Writer, Table, frames, content headers and errors are
// written by hand.
//
// Reading a connection:
//
//	codec.ReadProtocolHeader(conn)           // *ProtocolHeaderError: answer ProtocolHeader, close
//	fr := codec.NewFrameReader(bufio.NewReader(conn))
//	var methods codec.MethodDecoder
//	f, err := fr.ReadFrame()                 // f.Payload valid until the next ReadFrame
//	m, err := methods.Decode(f.Payload)      // for FrameMethod; m owned by methods
//	var h codec.ContentHeader; h.Decode(p)   // for FrameHeader; h.RawProperties aliases p
//	fr.SetFrameMax(tuneOk.FrameMax)          // after connection.tune-ok
//
// Every *Error carries the reply code to close the connection with
// (Error.ConnectionClose builds the method).
//
// The package owns the bytes, not the conversation: it never decides
// whether a frame is acceptable in the connection's state (a content
// header without a publish, a method on a closed channel), never starts
// goroutines, and does no I/O but through the io.Reader and io.Writer it
// is handed. It must never allocate from a length or count it has not
// checked against the bytes present and the named limits of
// internal/base (AMQPFrameBytesMax, AMQPFrameSlackBytes, AMQPTableDepthMax,
// AMQPTableFieldsMax, AMQPMessageBytesMax), and never panic on input.
package codec

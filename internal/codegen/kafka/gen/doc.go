// Package gen turns the Apache Kafka message definitions into the Go codec
// of internal/proto/kafka/protocol. It is a library so that the generator's
// command (internal/codegen/kafka) and the test that keeps the committed
// output current share one code path.
//
// It owns parsing the definitions (schema.go: every key they use, unknown
// keys rejected), deciding Go types and defaults (types.go), and emitting
// the types, codecs, validation (emit.go, codec.go, validate.go) and the
// API and error-code tables (tables.go).
//
// It must never emit code that allocates from a length or count before
// checking it (the runtime in the protocol package does the checks the
// emitted calls ask for), never emit an array whose elements can take zero
// bytes (Generate fails: decoding would stop being linear), and never
// import anything of Ferry: it is a build tool.
package gen

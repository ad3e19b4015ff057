// Command kafka generates Ferry's Kafka codec
// (internal/proto/kafka/protocol, files ending in _gen.go) from the Apache
// Kafka message definitions in ./message and the error-code table in
// ./error_codes.txt. Run it through go generate:
//
//	go generate ./internal/proto/kafka/protocol
//
// Flags: -defs (definitions directory), -errors (error-code table) and
// -out (output directory). The logic lives in ./gen, whose tests fail when
// the committed output differs from what the generator produces.
//
// ./message is a copy of the Apache Kafka repository's
// clients/src/main/resources/common/message (October 2024 snapshot, Apache
// License 2.0, licence headers kept). ./error_codes.txt is written for
// Ferry from the Kafka protocol guide.
//
// This package owns the translation, nothing else. It is a build tool: the
// broker must never import it, it must never write outside the output
// directory it is given, and the code it emits must never import a Ferry
// package other than internal/base.
package main

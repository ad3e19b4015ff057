package protocol

import "flag"

// long turns on the slow variants of the randomized tests:
//
//	go test ./internal/proto/kafka/protocol -args -long
var long = flag.Bool("long", false, "run the long randomized tests")

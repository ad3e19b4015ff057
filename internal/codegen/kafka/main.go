package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ferry-mq/ferry/internal/codegen/kafka/gen"
)

func main() {
	defs := flag.String("defs", "message", "directory of the Kafka message definitions (*.json)")
	codes := flag.String("errors", "error_codes.txt", "the Kafka error-code table")
	out := flag.String("out", ".", "directory to write the generated Go files into")
	flag.Parse()
	if err := run(*defs, *codes, *out); err != nil {
		fmt.Fprintln(os.Stderr, "kafka codegen:", err)
		os.Exit(1)
	}
}

func run(defs, codes, out string) error {
	msgs, err := gen.LoadDir(defs)
	if err != nil {
		return err
	}
	table, err := gen.LoadErrorCodes(codes)
	if err != nil {
		return err
	}
	files, err := gen.Generate(msgs, table)
	if err != nil {
		return err
	}
	return files.Write(out)
}

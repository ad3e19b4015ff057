//go:build ignore

// gendoc writes docs/configuration.md from server.Config; run it with
// go generate ./internal/server.
package main

import (
	"log"
	"os"

	"github.com/ferry-mq/ferry/internal/server"
)

func main() {
	if err := os.WriteFile("../../docs/configuration.md", []byte(server.ConfigDoc()), 0o644); err != nil {
		log.Fatal(err)
	}
}

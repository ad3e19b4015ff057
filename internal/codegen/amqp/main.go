package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "amqp codegen:", err)
		os.Exit(1)
	}
}

// run parses the command line, generates and writes the files. It writes
// nothing unless every file generated.
func run(args []string) error {
	fs := flag.NewFlagSet("amqp codegen", flag.ContinueOnError)
	specPath := fs.String("spec", "", "path of amqp-rabbitmq-0.9.1.json")
	outDir := fs.String("out", ".", "directory to write the *_gen.go files into")
	pkg := fs.String("pkg", os.Getenv("GOPACKAGE"), "package name of the generated files (go generate sets $GOPACKAGE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *specPath == "" || *pkg == "" || fs.NArg() != 0 {
		return fmt.Errorf("usage: amqp -spec FILE [-out DIR] [-pkg NAME]")
	}
	data, err := os.ReadFile(*specPath)
	if err != nil {
		return err
	}
	files, err := generate(data, filepath.Base(*specPath), *pkg)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(*outDir, name), files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

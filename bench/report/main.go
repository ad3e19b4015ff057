package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: report render|median [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	resultsPath := fs.String("results", "", "results.jsonl written by the driver runs")
	physicalPath := fs.String("physical", "", "render: JSON of bench/physical")
	machinePath := fs.String("machine", "", "render: 'key: value' lines describing the machine and versions")
	notesPath := fs.String("notes", "", "render: lines of notes about this run (what was skipped and why)")
	command := fs.String("command", "", "render: the exact command line that produced the results")
	docPath := fs.String("doc", "docs/benchmarks.md", "render: the document whose section is replaced")
	target := fs.String("target", "", "median: target")
	workload := fs.String("workload", "", "median: workload")
	variant := fs.String("variant", "", "median: variant")
	metric := fs.String("metric", "", "median: metric")
	_ = fs.Parse(os.Args[2:]) // ExitOnError
	rs, err := readResults(*resultsPath)
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "median":
		c := rs.cell(key{*workload, *variant, *target}, *metric)
		if c.s.N == 0 {
			fail(fmt.Errorf("no passing run of %s/%s/%s with metric %s", *target, *workload, *variant, *metric))
		}
		fmt.Printf("%.0f\n", c.s.Median)
	case "render":
		in := inputs{command: *command}
		if err := readJSON(*physicalPath, &in.physical); err != nil {
			fail(err)
		}
		if in.machine, err = readLines(*machinePath); err != nil {
			fail(err)
		}
		if *notesPath != "" {
			if in.notes, err = readLines(*notesPath); err != nil {
				fail(err)
			}
		}
		if err := updateDoc(*docPath, rs.section(in)); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// sectionTitle is the heading of the section this program owns.
const sectionTitle = "## Side by side with peer brokers"

// updateDoc replaces the owned section of the document at path (from its
// heading to the next level-2 heading or the end) with section, appending
// it when absent and creating the document when missing.
func updateDoc(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if doc == "" {
		doc = "# Benchmarks\n"
	}
	out, err := splice(doc, section)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// splice returns doc with the owned section replaced by section (which
// starts with the heading). Other sections are kept byte for byte.
func splice(doc, section string) (string, error) {
	if !strings.HasPrefix(section, sectionTitle+"\n") {
		return "", fmt.Errorf("section must start with %q", sectionTitle)
	}
	section = strings.TrimRight(section, "\n") + "\n"
	lines := strings.SplitAfter(doc, "\n")
	// Headings are recognised by their line alone, even inside a code
	// fence: tracking fences would let one unclosed fence in another
	// section hide ours and append it twice. This section's own fences
	// hold command lines, never a line starting with "## ".
	start, end := -1, len(lines)
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		switch {
		case t == sectionTitle && start < 0:
			start = i
		case start >= 0 && i > start && strings.HasPrefix(t, "## "):
			end = i
		}
		if start >= 0 && end < len(lines) {
			break
		}
	}
	if start < 0 {
		if !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + "\n" + section, nil
	}
	rest := strings.Join(lines[end:], "")
	if rest != "" {
		section += "\n"
	}
	return strings.Join(lines[:start], "") + section + rest, nil
}

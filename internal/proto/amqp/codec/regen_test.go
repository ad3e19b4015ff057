package codec

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGeneratedCodeIsUpToDate runs this package's go:generate directive
// with its output redirected to a temporary directory, and fails when the
// result differs from the committed *_gen.go files, or when a committed
// *_gen.go file would no longer be generated.
func TestGeneratedCodeIsUpToDate(t *testing.T) {
	args := generateDirective(t)
	out := t.TempDir()
	for i, a := range args {
		if a == "-out" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	if !slices.Contains(args, out) {
		t.Fatalf("go:generate directive has no -out argument: %q", args)
	}
	goTool, err := exec.LookPath(args[0])
	if err != nil {
		t.Fatalf("the go tool is needed to regenerate: %v", err)
	}
	cmd := exec.Command(goTool, args[1:]...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=codec")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%q: %v\n%s", args, err, msg)
	}
	fresh, _ := filepath.Glob(filepath.Join(out, "*_gen.go"))
	committed, _ := filepath.Glob("*_gen.go")
	if len(fresh) == 0 {
		t.Fatalf("the generator wrote no *_gen.go files")
	}
	var freshNames []string
	for _, path := range fresh {
		name := filepath.Base(path)
		freshNames = append(freshNames, name)
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s is generated but not committed; run go generate", name)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what go generate writes (%d bytes committed, %d generated); run go generate", name, len(got), len(want))
		}
	}
	for _, name := range committed {
		if !slices.Contains(freshNames, name) {
			t.Errorf("%s is committed but no longer generated; delete it", name)
		}
	}
}

// generateDirective returns the arguments of the package's one
// go:generate directive.
func generateDirective(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("generate.go")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate "); ok {
			if found != nil {
				t.Fatalf("generate.go has more than one go:generate directive")
			}
			found = strings.Fields(rest)
		}
	}
	if len(found) < 2 || found[0] != "go" {
		t.Fatalf("generate.go: want one //go:generate go run ... directive, got %q", found)
	}
	return found
}

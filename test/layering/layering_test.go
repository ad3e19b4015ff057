// Package layering holds the test that enforces the layers of
// docs/design.md §2, so that the direction of dependencies is never left to
// review.
package layering

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/ferry-mq/ferry/"

// allowed maps a package (or, ending in "/", every package below a
// directory) to the Ferry packages its non-test files may import. A package
// may always import its own subpackages. A package missing from the table
// fails the test: place it in a layer before it lands.
var allowed = map[string][]string{
	"internal/base":        nil,
	"internal/base/vfs":    nil,
	"internal/storage/":    {"internal/base", "internal/base/vfs"},
	"internal/queue":       {"internal/base"},
	"internal/stream":      {"internal/base"},
	"internal/routing":     {"internal/base"},
	"internal/auth":        {"internal/base"},
	"internal/replication": {"internal/base", "internal/base/vfs", "internal/storage/"},
	"internal/controller": {"internal/base", "internal/base/vfs", "internal/storage/", "internal/replication",
		"internal/routing", "internal/auth", "internal/queue", "internal/stream"},
	"internal/broker": {"internal/base", "internal/base/vfs", "internal/storage/", "internal/replication",
		"internal/controller", "internal/queue", "internal/stream", "internal/routing", "internal/auth"},
	"internal/proto/": {"internal/base", "internal/auth", "internal/broker", "internal/storage/log/batch", "internal/storage/log/batch/compress",
		"internal/proto/wirestats"},
	"internal/admin":    {"internal/base", "internal/auth", "internal/broker"},
	"internal/sim":      {"internal/base", "internal/base/vfs", "internal/storage/", "internal/replication", "internal/queue", "internal/stream"},
	"internal/server":   {"internal/"},
	"sdk":               {"internal/server", "internal/base"},
	"cmd/":              {"internal/server", "internal/base", "internal/loadgen", "sdk"},
	"bench/":            {"sdk", "internal/base", "internal/loadgen"},
	"internal/loadgen":  {"internal/base"},
	"test/":             {"internal/", "sdk"},
	"internal/codegen/": {"internal/base"},

	// batch/compress turns a stored compressed batch into an uncompressed
	// copy (for the Kafka front end's produce validation and the broker's
	// stream readers), so it reads the batch format it sits under.
	"internal/storage/log/batch/compress": {"internal/base", "internal/storage/log/batch"},

	// clienttest runs third-party client programs in the front ends'
	// tests; only tests import it, and it imports no Ferry package.
	"internal/proto/clienttest": nil,

	// testnet gives tests the ports of the programs they start; only
	// tests import it, and it imports no Ferry package.
	"internal/testnet": nil,

	// wirestats is the socket-byte and error counting every front end
	// shares, so front ends may import it; it imports no Ferry package.
	"internal/proto/wirestats": nil,
}

// pure are the state-machine packages of design.md §1: no I/O, no
// goroutines, no clock reads.
var pure = []string{"internal/queue", "internal/stream", "internal/routing", "internal/auth"}

var impureImports = []string{"os", "net", "net/http", "io/fs", "syscall", "math/rand", "math/rand/v2", "crypto/rand", "os/exec", "internal/base/vfs"}

var clockReads = map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true}

// banned may appear in no non-test file: kmsg's decoder can be made to spin
// on a crafted tagged-field count (design.md §5), so it is a test oracle only.
var banned = []string{"github.com/twmb/franz-go/pkg/kmsg"}

func ruleFor(pkg string) ([]string, bool) {
	if rule, ok := allowed[pkg]; ok {
		return rule, true
	}
	best := ""
	for prefix := range allowed {
		if strings.HasSuffix(prefix, "/") && strings.HasPrefix(pkg+"/", prefix) && len(prefix) > len(best) {
			best = prefix
		}
	}
	rule, ok := allowed[best]
	return rule, ok && best != ""
}

func permitted(pkg, imp string, rule []string) bool {
	if strings.HasPrefix(imp, pkg+"/") {
		return true
	}
	for _, a := range rule {
		if imp == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a)) {
			return true
		}
	}
	return false
}

func isPure(pkg string) bool {
	for _, p := range pure {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

func TestLayering(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		isTest := strings.HasSuffix(path, "_test.go")
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		if !isTest {
			checkFile(t, pkg, rel, f)
		}
		if isPure(pkg) && !isTest {
			checkPure(t, fset, path, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatalf("no Go files found under %s", root)
	}
}

func checkFile(t reporter, pkg, rel string, f *ast.File) {
	rule, known := ruleFor(pkg)
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		for _, b := range banned {
			if path == b || strings.HasPrefix(path, b+"/") {
				t.Errorf("%s imports %s, which only tests may use", rel, path)
			}
		}
		if !strings.HasPrefix(path, module) {
			continue
		}
		target := strings.TrimPrefix(path, module)
		if !known {
			t.Errorf("%s: package %s has no layer in test/layering; add it to the table", rel, pkg)
			return
		}
		if !permitted(pkg, target, rule) {
			t.Errorf("%s imports %s: package %s may import only %v (docs/design.md §2)", rel, target, pkg, rule)
		}
	}
}

func checkPure(t reporter, fset *token.FileSet, path, rel string) {
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	timeName := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		for _, bad := range impureImports {
			if p == bad || p == module+bad {
				t.Errorf("%s imports %s: state machines do no I/O and draw no randomness", rel, p)
			}
		}
		if p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			t.Errorf("%s: go statement at %s: state machines start no goroutines", rel, fset.Position(n.Pos()))
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && clockReads[n.Sel.Name] {
				t.Errorf("%s: time.%s at %s: state machines read time only from commands", rel, n.Sel.Name, fset.Position(n.Pos()))
			}
		}
		return true
	})
}

// reporter is the part of testing.T the checks use, so the self-test can
// count what they report.
type reporter interface {
	Errorf(format string, args ...any)
}

type recorder struct{ msgs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// TestLayeringCatchesViolations checks the checker on a made-up state
// machine that breaks every rule, so a broken rule table cannot pass
// silently.
func TestLayeringCatchesViolations(t *testing.T) {
	src := `package queue
import (
	"os"
	"time"
	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)
func f() { go func() {}(); _ = time.Now(); _ = os.Args; _ = broker.X; _ = kmsg.X }
`
	path := filepath.Join(t.TempDir(), "bad.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	checkFile(rec, "internal/queue", "bad.go", f)
	checkPure(rec, fset, path, "bad.go")
	for _, want := range []string{"imports internal/broker", "only tests may use", "imports os", "go statement", "time.Now"} {
		found := false
		for _, m := range rec.msgs {
			found = found || strings.Contains(m, want)
		}
		if !found {
			t.Errorf("violation %q not reported; reported: %q", want, rec.msgs)
		}
	}
	rec = &recorder{}
	checkFile(rec, "internal/nowhere", "x.go", f)
	if len(rec.msgs) == 0 || !strings.Contains(rec.msgs[len(rec.msgs)-1], "has no layer") {
		t.Errorf("package outside the table not reported: %q", rec.msgs)
	}
}

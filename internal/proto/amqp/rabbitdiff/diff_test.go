package rabbitdiff

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"go.uber.org/goleak"
)

// The differences file, its syntax:
//
//	diff scenario=NAME
//	docs/amqp.md: "a phrase of docs/amqp.md that documents the difference"
//	docs/arguments.md: "a phrase of the reference docs/amqp.md's Arguments names"
//	----
//	@@ LINE
//	-a line only RabbitMQ's transcript has
//	+a line only Ferry's transcript has
//
// Every scenario whose transcripts differ has one block with at least one
// reason line; the expected output is the difference, rewritten with
// -rewrite (go test ./internal/proto/amqp/rabbitdiff -rewrite).
const differencesFile = "testdata/differences.txt"

// docsFiles are the pages a reason may quote, by the name it uses.
var docsFiles = map[string]string{
	"docs/amqp.md":      "../../../../docs/amqp.md",
	"docs/arguments.md": "../../../../docs/arguments.md",
}

var (
	flagScenario = flag.String("rabbitdiff.scenario", "", "run only the scenarios whose names match this regexp")
	flagShow     = flag.Bool("rabbitdiff.show", false, "log both transcripts of every scenario run")
)

// parallelScenarios is how many scenarios run at once, each against both
// brokers at the same time. Scenarios share no state (every name they
// declare starts with the scenario's name), and most of their time is
// spent waiting for brokers.
const parallelScenarios = 12

func TestMain(m *testing.M) {
	// Every goroutine of the clients, of the Ferry node and of the
	// processes' waiters has ended when the test returns.
	goleak.VerifyTestMain(m)
}

// result is one scenario's transcripts, and how long each run took.
type result struct {
	rabbit, ferry         []string
	rabbitTook, ferryTook time.Duration
}

// took is how long a scenario held its slot: its slower run.
func (r result) took() time.Duration { return max(r.rabbitTook, r.ferryTook) }

// TestTranscriptsDifferOnlyAsDocumented runs every scenario against a
// private RabbitMQ and against Ferry, and requires that exactly the
// scenarios listed in testdata/differences.txt differ, each as recorded
// there, each for a reason the docs state.
func TestTranscriptsDifferOnlyAsDocumented(t *testing.T) {
	rabbitURL := startRabbitMQ(t)
	ferryURL := startFerry(t)
	names, run := selectScenarios(t)
	start := time.Now()
	results := runAll(run, rabbitURL, ferryURL)
	t.Logf("%d scenarios ran in %v", len(run), time.Since(start).Round(time.Millisecond))
	logRuns(t, run, results)
	for _, s := range run {
		res := results[s.name]
		for _, l := range slices.Concat(res.rabbit, res.ferry) {
			if strings.HasPrefix(l, abortPrefix) {
				t.Errorf("%s: %s", s.name, l)
			}
		}
	}
	listed := listedScenarios(t, names)
	for _, s := range run {
		if listed[s.name] {
			continue
		}
		if diff := lineDiff(results[s.name].rabbit, results[s.name].ferry); diff != "" {
			t.Errorf("%s differs from RabbitMQ, and %s does not list it. Document the difference in docs/amqp.md "+
				"(or fix it) and add:\n\ndiff scenario=%s\ndocs/amqp.md: \"...\"\n----\n%s", s.name, differencesFile, s.name, diff)
		}
	}
	checkDifferences(t, results)
}

// selectScenarios returns the names of every scenario, and those to run
// (all, or those -rabbitdiff.scenario matches), the slowest first.
func selectScenarios(t *testing.T) (map[string]bool, []scenario) {
	t.Helper()
	var filter *regexp.Regexp
	if *flagScenario != "" {
		filter = regexp.MustCompile(*flagScenario)
	}
	names := map[string]bool{}
	var run []scenario
	for _, s := range allScenarios() {
		if names[s.name] {
			t.Fatalf("two scenarios are named %s", s.name)
		}
		names[s.name] = true
		if filter == nil || filter.MatchString(s.name) {
			run = append(run, s)
		}
	}
	slices.SortStableFunc(run, func(a, b scenario) int { return cmp.Compare(slowRank(a.name), slowRank(b.name)) })
	return names, run
}

// slowRank ranks first the scenarios that wait longest (for x-expires,
// for RabbitMQ's stream counters, or up to patience for what one broker
// never does), so that the others run meanwhile.
func slowRank(name string) int {
	slow := []string{
		"queue.xexpires.quorum", "queue.xexpires.classic",
		"queue.expiration.quorum", "queue.expiration.classic",
		"queue.maxlen-unacked.quorum", "queue.maxlen-unacked.classic",
		"stream.offsets", "stream.counts", "queue.ttl-requeue.quorum", "queue.ttl-requeue.classic",
	}
	if i := slices.Index(slow, name); i >= 0 {
		return i
	}
	return len(slow)
}

// logRuns logs the slowest scenarios, and with -rabbitdiff.show every
// transcript.
func logRuns(t *testing.T, run []scenario, results map[string]result) {
	t.Helper()
	bySpeed := slices.Clone(run)
	slices.SortFunc(bySpeed, func(a, b scenario) int { return cmp.Compare(results[b.name].took(), results[a.name].took()) })
	for _, s := range bySpeed[:min(5, len(bySpeed))] {
		res := results[s.name]
		t.Logf("slow: %s took %v on RabbitMQ, %v on Ferry", s.name, res.rabbitTook.Round(time.Millisecond), res.ferryTook.Round(time.Millisecond))
	}
	if *flagShow {
		for _, s := range run {
			res := results[s.name]
			t.Logf("%s\nRabbitMQ:\n  %s\nFerry:\n  %s", s.name, strings.Join(res.rabbit, "\n  "), strings.Join(res.ferry, "\n  "))
		}
	}
}

// listedScenarios returns the scenarios the differences file lists,
// each of which must exist and be listed once.
func listedScenarios(t *testing.T, names map[string]bool) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(differencesFile)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		name, ok := strings.CutPrefix(line, "diff scenario=")
		if !ok {
			continue
		}
		if !names[name] {
			t.Errorf("%s:%d: no scenario is named %s", differencesFile, i+1, name)
		}
		if listed[name] {
			t.Errorf("%s:%d: %s is listed twice", differencesFile, i+1, name)
		}
		listed[name] = true
	}
	return listed
}

// checkDifferences walks the differences file: each block's reasons must
// hold, and its difference must be the one the scenario shows now.
// datadriven stops at the first difference that changed (which -rewrite
// updates), so it walks in a subtest, and the other problems it finds
// are reported after it.
func checkDifferences(t *testing.T, results map[string]result) {
	t.Helper()
	docs := map[string]string{}
	for name, path := range docsFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = strings.Join(strings.Fields(string(b)), " ")
	}
	var problems []string
	t.Run("differences", func(t *testing.T) {
		datadriven.RunTest(t, differencesFile, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "diff" {
				t.Fatalf("%s: unknown directive %q", d.Pos, d.Cmd)
			}
			var name string
			d.ScanArgs(t, "scenario", &name)
			problems = append(problems, checkReasons(d, docs)...)
			res, ran := results[name]
			if !ran {
				return d.Expected // not selected by -rabbitdiff.scenario
			}
			diff := lineDiff(res.rabbit, res.ferry)
			if diff == "" {
				problems = append(problems, fmt.Sprintf("%s: %s no longer differs from RabbitMQ: remove it from %s, "+
					"and its difference from the docs if none is left", d.Pos, name, differencesFile))
			}
			return diff
		})
	})
	for _, p := range problems {
		t.Error(p)
	}
}

var quoted = regexp.MustCompile(`^(docs/[a-z]+\.md): "(.+)"$`)

// checkReasons checks a block's reasons: lines `FILE: "PHRASE"`, with
// PHRASE found in FILE (white space aside). A difference the docs do not
// state is a failure: state it in docs/amqp.md, or change the broker.
func checkReasons(d *datadriven.TestData, docs map[string]string) (problems []string) {
	reasons := strings.Split(strings.TrimSpace(d.Input), "\n")
	if reasons[0] == "" {
		return []string{fmt.Sprintf("%s: no reason given: quote the item of docs/amqp.md that documents the difference", d.Pos)}
	}
	for _, r := range reasons {
		m := quoted.FindStringSubmatch(r)
		switch {
		case m == nil:
			problems = append(problems, fmt.Sprintf("%s: reason %q is not `FILE: \"PHRASE\"`", d.Pos, r))
		case docs[m[1]] == "":
			problems = append(problems, fmt.Sprintf("%s: reason %q quotes %s, not one of the docs a reason may quote", d.Pos, r, m[1]))
		case !strings.Contains(docs[m[1]], strings.Join(strings.Fields(m[2]), " ")):
			problems = append(problems, fmt.Sprintf("%s: %s does not say %q", d.Pos, m[1], m[2]))
		}
	}
	return problems
}

// runAll runs the scenarios, parallelScenarios at a time, each against
// both brokers at once, and returns their transcripts by name.
func runAll(scenarios []scenario, rabbitURL, ferryURL string) map[string]result {
	results := make(map[string]result, len(scenarios))
	var mu sync.Mutex // guards results
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelScenarios) // a slot per running scenario
	for _, s := range scenarios {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var res result
			var sides sync.WaitGroup
			sides.Add(2)
			go func() {
				defer sides.Done()
				began := time.Now()
				res.rabbit = runScenario(s, rabbitURL)
				res.rabbitTook = time.Since(began)
			}()
			go func() {
				defer sides.Done()
				began := time.Now()
				res.ferry = runScenario(s, ferryURL)
				res.ferryTook = time.Since(began)
			}()
			sides.Wait()
			mu.Lock()
			results[s.name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

// lineDiff returns the lines of a (RabbitMQ's) and b (Ferry's) outside
// their longest common subsequence, in hunks headed by the line of a
// they start at (1-based); "" when a and b are equal.
func lineDiff(a, b []string) string {
	if slices.Equal(a, b) {
		return ""
	}
	// lcs[i][j] is the length of the longest common subsequence of a[i:]
	// and b[j:]. Transcripts are tens of lines.
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	inHunk := false
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			inHunk = false
			i++
			j++
			continue
		case !inHunk:
			fmt.Fprintf(&out, "@@ %d\n", i+1)
			inHunk = true
		}
		if j == len(b) || (i < len(a) && lcs[i+1][j] >= lcs[i][j+1]) {
			fmt.Fprintf(&out, "-%s\n", a[i])
			i++
		} else {
			fmt.Fprintf(&out, "+%s\n", b[j])
			j++
		}
	}
	return out.String()
}

package replication

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/meta"
)

// The multi-process test re-executes this test binary as a node process:
// TestMain sees nodeEnv and runs runNodeProcess instead of the tests.
const (
	nodeEnv   = "FERRY_REPL_NODE"   // the node id
	dirEnv    = "FERRY_REPL_DIR"    // its data directory
	addrsEnv  = "FERRY_REPL_ADDRS"  // "1=host:port,2=host:port,..."
	groupsEnv = "FERRY_REPL_GROUPS" // how many groups (default 1)
	simpleEnv = "FERRY_REPL_SIMPLE" // "1": SimpleLogs instead of the segmented log
)

// runNodeProcess is a node of the multi-process test and benchmarks:
// production storage on the real disk, the TCP transport, groups of three
// voters (group 1, and up to FERRY_REPL_GROUPS), and a line protocol for
// the test on a second port:
//
//	P <payload>  ->  OK <index> | ERR <code> <leader>   (a proposal to group 1)
//	D            ->  OK <payload>,<payload>,...         (group 1, after a ReadIndex)
//	Q            ->  OK <quiesced> <leading> <groups>
func runNodeProcess() int {
	id, _ := strconv.ParseUint(os.Getenv(nodeEnv), 10, 64)
	dir := os.Getenv(dirEnv)
	addrs := map[NodeID]string{}
	for _, kv := range strings.Split(os.Getenv(addrsEnv), ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseUint(k, 10, 64)
		addrs[n] = v
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := meta.Open(meta.Options{Dir: filepath.Join(dir, "meta"), Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "meta:", err)
		return 1
	}
	defer store.Close()
	groups, _ := strconv.Atoi(os.Getenv(groupsEnv))
	groups = max(groups, 1)
	ping, peerTimeout := 20*time.Millisecond, 300*time.Millisecond // the kill test wants a dead leader noticed fast
	if groups > 1 {
		ping, peerTimeout = 0, 0 // the defaults
	}
	tr, err := NewTCPTransport(TCPConfig{NodeID: id, ClusterID: 1, Addr: addrs[id], Logger: log,
		Resolve:      func(n NodeID) (string, bool) { a, ok := addrs[n]; return a, ok },
		PingInterval: ping, PeerTimeout: peerTimeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "transport:", err)
		return 1
	}
	var logs LogProvider = &SegmentLogs{FS: vfs.Default, Dir: filepath.Join(dir, "logs"), Logger: log}
	if os.Getenv(simpleEnv) == "1" {
		logs = &SimpleLogs{FS: vfs.Default, Dir: filepath.Join(dir, "logs")}
	}
	tick := 20 * time.Millisecond
	if groups > 1 {
		tick = 100 * time.Millisecond // the default: what a node with many groups runs
	}
	e, err := New(Config{NodeID: id, FS: vfs.Default, Dir: dir, Logger: log, Logs: logs,
		State: MetaState{store}, Transport: tr, TickInterval: tick, Loops: 2,
		Address: func(n NodeID) string { return addrs[n] }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		return 1
	}
	if err := tr.Start(e); err != nil {
		fmt.Fprintln(os.Stderr, "transport:", err)
		return 1
	}
	e.Start()
	fsm := &listFSM{}
	if err := openGroups(e, fsm, groups); err != nil {
		fmt.Fprintln(os.Stderr, "groups:", err)
		return 1
	}
	host, _, _ := net.SplitHostPort(addrs[id])
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client port:", err)
		return 1
	}
	fmt.Printf("READY %s\n", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			return 1
		}
		go serveClient(conn, e, fsm)
	}
}

// openGroups opens groups 1..n, 32 at a time.
func openGroups(e *Engine, first *listFSM, n int) error {
	if err := e.OpenGroup(1, first, []NodeID{1, 2, 3}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	sem := make(chan struct{}, 32)
	for g := 2; g <= n; g++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.OpenGroup(GroupID(g), &listFSM{}, []NodeID{1, 2, 3}); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// countStates returns how many groups sleep and how many this node leads.
func countStates(e *Engine) (quiesced, leading, groups int) {
	for _, g := range e.Groups() {
		st, err := e.Status(g)
		if err != nil {
			continue
		}
		groups++
		if st.Quiesced {
			quiesced++
		}
		if st.IsLeader {
			leading++
		}
	}
	return quiesced, leading, groups
}

func serveClient(conn net.Conn, e *Engine, fsm *listFSM) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSpace(line)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var reply string
		switch {
		case strings.HasPrefix(line, "P "):
			res, err := e.Propose(ctx, 1, []byte(line[2:]))
			reply = replyLine(res, err)
		case line == "D":
			_, err := e.ReadIndex(ctx, 1)
			if err != nil {
				reply = replyLine(Result{}, err)
			} else {
				reply = "OK " + strings.Join(fsm.datas(), ",")
			}
		case line == "Q":
			q, l, n := countStates(e)
			m := e.Metrics()
			reply = fmt.Sprintf("OK %d %d %d %d %d %d", q, l, n, m.PeerDowns, m.Wakes, m.Quiesces)
		}
		cancel()
		if _, err := io.WriteString(conn, reply+"\n"); err != nil {
			return
		}
	}
}

func replyLine(res Result, err error) string {
	if err == nil {
		return fmt.Sprintf("OK %d", res.Index)
	}
	var nl *NotLeaderError
	lead := NodeID(0)
	if errors.As(err, &nl) {
		lead = nl.Leader
	}
	return fmt.Sprintf("ERR %s %d", base.CodeOf(err), lead)
}

// nodeProc is a node process started by the test.
type nodeProc struct {
	id     NodeID
	cmd    *exec.Cmd
	client string
	stderr *strings.Builder
	done   chan struct{} // closed when the process has exited and its output is read
}

func startNodeProc(t testing.TB, id NodeID, dir, addrs string, env ...string) *nodeProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("%s=%d", nodeEnv, id), dirEnv+"="+dir, addrsEnv+"="+addrs), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &nodeProc{id: id, cmd: cmd, stderr: &strings.Builder{}, done: make(chan struct{})}
	var mu sync.Mutex
	cmd.Stderr = lockedWriter{&mu, p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- addr
			}
		}
		cmd.Wait()
	}()
	select {
	case p.client = <-ready:
	case <-p.done:
		t.Fatalf("node %d exited before it was ready: %s", id, p.stderr)
	case <-time.After(10 * time.Minute):
		t.Fatalf("node %d not ready", id)
	}
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *nodeProc) kill() {
	p.cmd.Process.Kill() // SIGKILL: no shutdown, unsynced writes are the OS's
	<-p.done
}

// call sends one request line to a node and returns its reply.
func call(addr, line string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(reply), err
}

// freePort returns a port that is free on 127.0.0.1, which the nodes then
// use on 127.0.0.1, .2 and .3.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestMultiProcessKillLeaderLosesNoAcknowledgedProposal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	port := freePort(t)
	var addrParts []string
	for i := 1; i <= 3; i++ {
		addrParts = append(addrParts, fmt.Sprintf("%d=127.0.0.%d:%d", i, i, port))
	}
	addrs := strings.Join(addrParts, ",")
	root := t.TempDir()
	procs := map[NodeID]*nodeProc{}
	for id := NodeID(1); id <= 3; id++ {
		procs[id] = startNodeProc(t, id, filepath.Join(root, fmt.Sprint(id)), addrs)
	}
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	var mu sync.Mutex
	clients := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for id := NodeID(1); id <= 3; id++ {
			out = append(out, procs[id].client)
		}
		return out
	}
	var acked sync.Map                 // payload -> true
	progress := make(chan struct{}, 1) // size one: a pending signal is enough
	leader := waitProcLeader(t, clients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			proposeUntil(stop, w, clients, &acked, progress)
		}()
	}
	waitAcked(t, progress, &acked, 50)
	killed := procs[leader]
	killed.kill() // while the workers keep proposing
	before := countAcked(&acked)
	waitAcked(t, progress, &acked, before+50) // a new leader makes progress
	mu.Lock()
	procs[leader] = startNodeProc(t, leader, filepath.Join(root, fmt.Sprint(leader)), addrs)
	mu.Unlock()
	waitAcked(t, progress, &acked, countAcked(&acked)+50)
	close(stop)
	wg.Wait()
	var want []string
	acked.Range(func(k, _ any) bool { want = append(want, k.(string)); return true })
	for id := NodeID(1); id <= 3; id++ {
		got := dumpUntil(t, procs[id].client, len(want))
		for _, p := range want {
			if !slices.Contains(got, p) {
				t.Errorf("node %d lost acknowledged proposal %s (it holds %d entries)", id, p, len(got))
				break
			}
		}
	}
	t.Logf("%d proposals acknowledged; killed leader %d and restarted it", len(want), leader)
}

// proposeUntil proposes unique payloads to whichever node accepts them
// until stop, recording the acknowledged ones.
func proposeUntil(stop <-chan struct{}, w int, clients func() []string, acked *sync.Map, progress chan<- struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		payload := fmt.Sprintf("w%d-%d", w, i)
		for _, c := range clients() {
			if reply, err := call(c, "P "+payload); err == nil && strings.HasPrefix(reply, "OK ") {
				acked.Store(payload, true)
				select {
				case progress <- struct{}{}:
				default:
				}
				break
			}
		}
	}
}

func waitProcLeader(t testing.TB, clients func() []string) NodeID {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		for i, c := range clients() {
			if reply, err := call(c, "P probe"); err == nil && strings.HasPrefix(reply, "OK ") {
				return NodeID(i + 1)
			}
		}
	}
	t.Fatalf("no leader")
	return 0
}

func countAcked(m *sync.Map) int {
	n := 0
	m.Range(func(_, _ any) bool { n++; return true })
	return n
}

// waitAcked waits, woken by each acknowledgement, until n proposals were
// acknowledged.
func waitAcked(t *testing.T, progress <-chan struct{}, m *sync.Map, n int) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for countAcked(m) < n {
		select {
		case <-progress:
		case <-timeout.C:
			t.Fatalf("only %d proposals acknowledged, want %d", countAcked(m), n)
		}
	}
}

// dumpUntil asks a node for its applied entries until it holds at least n.
func dumpUntil(t *testing.T, addr string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		reply, err := call(addr, "D")
		if err == nil && strings.HasPrefix(reply, "OK ") {
			got = strings.Split(strings.TrimPrefix(reply, "OK "), ",")
			if len(got) >= n {
				return got
			}
		}
	}
	return got
}

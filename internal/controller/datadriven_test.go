package controller

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// TestDataDriven runs the stories in testdata/*.txt, each against a fresh
// controller. Every command goes through Encode and Decode before Apply.
// Rewrite the expected output with
//
//	go test ./internal/controller -run TestDataDriven -rewrite
//
// Commands (arguments in parentheses are optional; a value starting with
// a double quote is a Go string literal):
//
//	bootstrap nodes=N (coordinators=N) (guest)   nodes 1..N at "nN:7946"
//	node register id=N | node state id=N to=live|down|draining
//	tenant create|delete name=V
//	user put name=U (password=P) (tags=a,b) | user delete name=U
//	permission set user=U vhost=V (configure=) (write=) (read=)
//	permission clear user=U vhost=V
//	authorize user=U vhost=V action=configure|write|read kind=queue|stream|exchange name=N
//	authenticate user=U password=P peer=ADDR
//	policy put vhost=V name=P pattern=RE (apply-to=queues) (priority=N)
//	    input: definition, one "key: value" per line (42 or "text")
//	policy delete vhost=V name=P
//	exchange declare vhost=V name=X type=T (durable) (auto-delete) (internal)
//	    input: arguments, one "key: value" per line
//	exchange delete vhost=V name=X (if-unused)
//	bind|unbind vhost=V src=X queue=Q|stream=S|exchange=Y (key=K) (owner=C)
//	queue declare vhost=V name=Q (durable) (exclusive) (owner=C) (auto-delete) (server-named)
//	    input: arguments, values as routing.Value.String writes them
//	queue delete vhost=V name=Q (owner=C) (group=N) (reason=explicit|auto-delete|expired)
//	passive vhost=V name=Q (owner=C)
//	connection-closed owner=C
//	stream declare vhost=V name=S (partitions=N) (rf=N)   input: arguments
//	stream add-partitions vhost=V name=S total=N
//	stream alter vhost=V name=S                            input: arguments
//	stream delete vhost=V name=S
//	route vhost=V ex=X (key=K)
//	groups (node=N) | coordinator group=NAME
//	dump            the whole state
//	snapshot        snapshot, restore into a new controller, continue with it
func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no story files: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			h := &harness{c: New(Options{}), now: 1000}
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return h.run(t, d)
			})
		})
	}
}

type harness struct {
	c   *Controller
	now int64
	res routing.Result
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	if out, ok := h.query(t, d); ok {
		return out
	}
	switch d.Cmd {
	case "groups":
		var sb strings.Builder
		for _, g := range h.c.Groups(NodeID(intArg(t, d, "node", 0))) {
			what := fmt.Sprintf("coordinator %d", g.Coordinator)
			if g.Coordinator < 0 {
				what = g.Entity.String()
			}
			if g.Entity.Kind == routing.Stream {
				what += fmt.Sprintf(" partition %d", g.Partition)
			}
			fmt.Fprintf(&sb, "%s: %s\n", g.Placement, what)
		}
		return sb.String()
	case "coordinator":
		p, err := h.c.CoordinatorFor(arg(t, d, "group"))
		if err != nil {
			return formatErr(err)
		}
		return p.String() + "\n"
	case "dump":
		return h.c.Dump()
	case "snapshot":
		return h.snapshot(t)
	}
	cmd := h.command(t, d)
	data, err := Encode(cmd)
	if err != nil {
		t.Fatalf("%s: Encode: %v", d.Pos, err)
	}
	decoded, err := Decode(data)
	if err != nil {
		t.Fatalf("%s: Decode of Encode: %v", d.Pos, err)
	}
	if again, _ := Encode(decoded); !bytes.Equal(again, data) {
		t.Fatalf("%s: command does not survive Encode/Decode:\n got %x\nwant %x", d.Pos, again, data)
	}
	return formatResult(h.c.Apply(decoded))
}

// query answers the directives that ask rather than command.
func (h *harness) query(t *testing.T, d *datadriven.TestData) (string, bool) {
	switch d.Cmd {
	case "authorize":
		action := map[string]auth.Action{"configure": auth.ActionConfigure, "write": auth.ActionWrite, "read": auth.ActionRead}[arg(t, d, "action")]
		kind := map[string]auth.ResourceKind{"queue": auth.ResourceQueue, "stream": auth.ResourceStream, "exchange": auth.ResourceExchange}[arg(t, d, "kind")]
		return okOrErr(h.c.Authorize(arg(t, d, "user"), arg(t, d, "vhost"), action, kind, optArg(t, d, "name"))), true
	case "authenticate":
		p, err := h.c.Directory().Authenticate(auth.MechPlain, arg(t, d, "user"), arg(t, d, "password"),
			netip.MustParseAddr(arg(t, d, "peer")))
		if err != nil {
			return formatErr(err), true
		}
		return fmt.Sprintf("authenticated %s %v\n", p.Name, p.Tags), true
	case "passive":
		q, s, err := h.c.PassiveDeclare(arg(t, d, "vhost"), arg(t, d, "name"), optArg(t, d, "owner"))
		switch {
		case err != nil:
			return formatErr(err), true
		case q != nil:
			return describeQueue(q), true
		}
		return describeStream(s), true
	case "route":
		err := h.c.Route(arg(t, d, "vhost"), &h.res, optArg(t, d, "ex"), optArg(t, d, "key"), parseFields(t, d.Input))
		if err != nil {
			return formatErr(err), true
		}
		var sb strings.Builder
		for _, dst := range h.res.Destinations {
			fmt.Fprintf(&sb, "%s %s\n", dst.Kind, dst.Name)
		}
		if h.res.Unroutable {
			sb.WriteString("unroutable\n")
		}
		return sb.String(), true
	}
	return "", false
}

func (h *harness) snapshot(t *testing.T) string {
	data := h.c.Snapshot()
	restored := New(Options{})
	if err := restored.Restore(data); err != nil {
		t.Fatalf("Restore of a fresh snapshot: %v", err)
	}
	if got := restored.Snapshot(); !bytes.Equal(got, data) {
		t.Fatalf("restored controller snapshots differently")
	}
	if got, want := restored.Dump(), h.c.Dump(); got != want {
		t.Fatalf("restored controller differs:\n%s\nwant:\n%s", got, want)
	}
	h.c = restored
	return fmt.Sprintf("restored %d bytes\n", len(data))
}

// command builds the command a directive describes, stamped with the
// next time.
func (h *harness) command(t *testing.T, d *datadriven.TestData) Command {
	h.now++
	now := h.now
	sub := ""
	if len(d.CmdArgs) > 0 && len(d.CmdArgs[0].Vals) == 0 {
		sub = d.CmdArgs[0].Key
	}
	vhost := optArg(t, d, "vhost")
	name := optArg(t, d, "name")
	switch d.Cmd + " " + sub {
	case "bootstrap ":
		c := &Bootstrap{Now: now, CoordinatorGroups: intArg(t, d, "coordinators", 0)}
		for i := range intArg(t, d, "nodes", 1) {
			c.Nodes = append(c.Nodes, Node{ID: NodeID(i + 1), Addr: fmt.Sprintf("n%d:7946", i+1)})
		}
		if d.HasArg("guest") {
			cr := testCredentials(t, "guest")
			c.Guest = &cr
		}
		return c
	case "node register":
		id := intArg(t, d, "id", 0)
		return &RegisterNode{Now: now, ID: NodeID(id), Addr: fmt.Sprintf("n%d:7946", id)}
	case "node state":
		st := map[string]NodeState{"live": NodeLive, "down": NodeDown, "draining": NodeDraining}[arg(t, d, "to")]
		return &SetNodeState{Now: now, ID: NodeID(intArg(t, d, "id", 0)), State: st}
	case "tenant create":
		return &CreateTenant{Now: now, Name: name}
	case "tenant delete":
		return &DeleteTenant{Now: now, Name: name}
	case "user put":
		c := &PutUser{Now: now, Name: name}
		if d.HasArg("password") {
			c.Credentials = testCredentials(t, arg(t, d, "password"))
		}
		if tags := optArg(t, d, "tags"); tags != "" {
			for tag := range strings.SplitSeq(tags, ",") {
				c.Tags = append(c.Tags, auth.Tag(tag))
			}
		}
		return c
	case "user delete":
		return &DeleteUser{Now: now, Name: name}
	case "permission set":
		return &SetPermission{Now: now, User: arg(t, d, "user"), Permission: auth.Permission{Tenant: vhost,
			Configure: optArg(t, d, "configure"), Write: optArg(t, d, "write"), Read: optArg(t, d, "read")}}
	case "permission clear":
		return &ClearPermission{Now: now, User: arg(t, d, "user"), Tenant: vhost}
	case "policy put":
		return &PutPolicy{Now: now, Policy: policyArg(t, d)}
	case "policy delete":
		return &DeletePolicy{Now: now, Tenant: vhost, Name: name}
	}
	return h.entityCommand(t, d, sub, now)
}

// entityCommand builds the exchange, binding, queue and stream commands.
func (h *harness) entityCommand(t *testing.T, d *datadriven.TestData, sub string, now int64) Command {
	vhost := optArg(t, d, "vhost")
	name := optArg(t, d, "name")
	switch d.Cmd + " " + sub {
	case "exchange declare":
		typ, err := routing.ParseExchangeType(arg(t, d, "type"))
		if err != nil {
			typ = 0 // let the controller refuse it
		}
		return &DeclareExchange{Now: now, Tenant: vhost, Exchange: routing.Exchange{Name: name, Type: typ,
			Durable: d.HasArg("durable"), AutoDelete: d.HasArg("auto-delete"), Internal: d.HasArg("internal"),
			Args: parseFields(t, d.Input)}}
	case "exchange delete":
		return &DeleteExchange{Now: now, Tenant: vhost, Name: name, IfUnused: d.HasArg("if-unused")}
	case "bind ", "unbind ":
		b := routing.Binding{Source: optArg(t, d, "src"), Key: optArg(t, d, "key"), Args: parseFields(t, d.Input)}
		for _, k := range []routing.DestKind{routing.Queue, routing.Stream, routing.ToExchange} {
			if d.HasArg(k.String()) {
				b.Destination = routing.Destination{Kind: k, Name: optArg(t, d, k.String())}
			}
		}
		if d.Cmd == "bind" {
			return &Bind{Now: now, Tenant: vhost, Binding: b, Owner: optArg(t, d, "owner")}
		}
		return &Unbind{Now: now, Tenant: vhost, Binding: b, Owner: optArg(t, d, "owner")}
	case "queue declare":
		return &DeclareQueue{Now: now, Tenant: vhost, Name: name, ServerNamed: d.HasArg("server-named"),
			Durable: d.HasArg("durable"), Exclusive: d.HasArg("exclusive"), Owner: optArg(t, d, "owner"),
			Node: NodeID(intArg(t, d, "node", 0)), AutoDelete: d.HasArg("auto-delete"), Args: parseFields(t, d.Input)}
	case "queue delete":
		reason := map[string]DeleteReason{"": DeleteExplicit, "explicit": DeleteExplicit, "auto-delete": DeleteAutoDelete,
			"expired": DeleteExpired}[optArg(t, d, "reason")]
		return &DeleteQueue{Now: now, Tenant: vhost, Name: name, Owner: optArg(t, d, "owner"),
			Group: GroupID(intArg(t, d, "group", 0)), Reason: reason}
	case "connection-closed ":
		return &ConnectionClosed{Now: now, Owner: arg(t, d, "owner")}
	case "stream declare":
		return &DeclareStream{Now: now, Tenant: vhost, Name: name, Partitions: intArg(t, d, "partitions", 0),
			ReplicationFactor: intArg(t, d, "rf", 0), Args: parseFields(t, d.Input)}
	case "stream add-partitions":
		return &AddPartitions{Now: now, Tenant: vhost, Name: name, Total: intArg(t, d, "total", 0)}
	case "stream alter":
		return &AlterStream{Now: now, Tenant: vhost, Name: name, Args: parseFields(t, d.Input)}
	case "stream delete":
		return &DeleteStream{Now: now, Tenant: vhost, Name: name}
	}
	t.Fatalf("%s: unknown command %q %q", d.Pos, d.Cmd, sub)
	return nil
}

// testArgon2 makes password hashes cheap in tests; the parameters are in
// the hash, so verification uses them too.
var testArgon2 = auth.Argon2Params{MemoryKiB: 8, Iterations: 1, Parallelism: 1}

// testCredentials derives credentials with fixed salts, so stories are
// reproducible.
func testCredentials(t testing.TB, password string) auth.Credentials {
	salt := func(b byte) []byte { return bytes.Repeat([]byte{b}, base.AuthSaltBytesMin) }
	hash, err := auth.HashPassword(password, salt(1), testArgon2)
	if err != nil {
		t.Fatalf("hashing: %v", err)
	}
	s256, err := auth.NewScramCredential(auth.MechScramSHA256, password, salt(2), base.AuthScramIterationsDefault)
	if err != nil {
		t.Fatalf("scram: %v", err)
	}
	s512, err := auth.NewScramCredential(auth.MechScramSHA512, password, salt(3), base.AuthScramIterationsDefault)
	if err != nil {
		t.Fatalf("scram: %v", err)
	}
	return auth.Credentials{PasswordHash: hash, ScramSHA256: s256, ScramSHA512: s512}
}

func policyArg(t *testing.T, d *datadriven.TestData) auth.Policy {
	p := auth.Policy{Tenant: optArg(t, d, "vhost"), Name: optArg(t, d, "name"), Pattern: optArg(t, d, "pattern"),
		Priority: intArg(t, d, "priority", 0), Definition: map[string]auth.Value{}}
	if a := optArg(t, d, "apply-to"); a != "" {
		var err error
		if p.ApplyTo, err = auth.ParseApplyTo(a); err != nil {
			t.Fatalf("%s: %v", d.Pos, err)
		}
	}
	for _, f := range parseFields(t, d.Input) {
		if isInt(f.Value) {
			p.Definition[f.Key] = auth.Int(f.Value.Int())
		} else {
			p.Definition[f.Key] = auth.Str(f.Value.Text())
		}
	}
	return p
}

func arg(t *testing.T, d *datadriven.TestData, key string) string {
	if !d.HasArg(key) {
		t.Fatalf("%s: %s needs %s=", d.Pos, d.Cmd, key)
	}
	return optArg(t, d, key)
}

// optArg returns the argument's value, "" when absent; a value starting
// with a double quote is a Go string literal.
func optArg(t *testing.T, d *datadriven.TestData, key string) string {
	a, ok := d.Arg(key)
	if !ok {
		return ""
	}
	v := strings.Join(a.Vals, ",")
	if strings.HasPrefix(v, `"`) {
		u, err := strconv.Unquote(v)
		if err != nil {
			t.Fatalf("%s: %s=%s: %v", d.Pos, key, v, err)
		}
		return u
	}
	return v
}

func intArg(t *testing.T, d *datadriven.TestData, key string, def int) int {
	v := optArg(t, d, key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %s=%s: %v", d.Pos, key, v, err)
	}
	return n
}

// parseFields reads "key: value" lines, values as routing.Value.String
// writes them.
func parseFields(t *testing.T, input string) []routing.Field {
	var out []routing.Field
	for line := range strings.Lines(input) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("field line %q is not key: value", line)
		}
		val, err := parseValue(v)
		if err != nil {
			t.Fatalf("field line %q: %v", line, err)
		}
		out = append(out, routing.Field{Key: k, Value: val})
	}
	return out
}

func parseValue(s string) (routing.Value, error) {
	switch {
	case s == "void":
		return routing.VoidValue(), nil
	case s == "true" || s == "false":
		return routing.BoolValue(s == "true"), nil
	case strings.HasPrefix(s, `"`):
		u, err := strconv.Unquote(s)
		return routing.StringValue(u), err
	case strings.HasPrefix(s, "bytes(") && strings.HasSuffix(s, ")"):
		u, err := strconv.Unquote(s[len("bytes(") : len(s)-1])
		return routing.BytesValue([]byte(u)), err
	case strings.HasPrefix(s, "float(") && strings.HasSuffix(s, ")"):
		f, err := strconv.ParseFloat(s[len("float("):len(s)-1], 64)
		return routing.FloatValue(f), err
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return routing.IntValue(i), err
}

func formatErr(err error) string {
	return fmt.Sprintf("error %s: %v\n", base.CodeOf(err), err)
}

func okOrErr(err error) string {
	if err != nil {
		return formatErr(err)
	}
	return "ok\n"
}

func formatResult(r Result) string {
	if r.Err != nil {
		return formatErr(r.Err)
	}
	var sb strings.Builder
	if r.Created {
		sb.WriteString("created\n")
	} else {
		sb.WriteString("ok\n")
	}
	if r.Queue != nil {
		sb.WriteString(describeQueue(r.Queue))
	}
	if r.Stream != nil {
		sb.WriteString(describeStream(r.Stream))
	}
	for _, p := range r.NewGroups {
		fmt.Fprintf(&sb, "new %s\n", p)
	}
	for _, rm := range r.Removed {
		fmt.Fprintf(&sb, "removed %s groups %v\n", rm.EntityRef, rm.Groups)
	}
	for _, x := range r.ExchangesRemoved {
		fmt.Fprintf(&sb, "removed exchange %q in %q\n", x.Name, x.Tenant)
	}
	if r.BindingsRemoved > 0 {
		fmt.Fprintf(&sb, "bindings removed: %d\n", r.BindingsRemoved)
	}
	for _, rc := range r.Reconfigured {
		fmt.Fprintf(&sb, "reconfigured %s groups %v:", rc.EntityRef, rc.Groups)
		if rc.Queue != nil {
			cfg := FormatQueueConfig(*rc.Queue)
			if cfg == "" {
				cfg = " defaults"
			}
			sb.WriteString(cfg)
		} else {
			sb.WriteString(FormatStreamConfig(*rc.Stream))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func describeQueue(q *QueueInfo) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "queue %q %s %s", q.Name, q.Type, q.Placement)
	if q.Exclusive {
		fmt.Fprintf(&sb, " exclusive to %q", q.Owner)
	}
	cfg := FormatQueueConfig(q.Config)
	if cfg == "" {
		cfg = " defaults"
	}
	fmt.Fprintf(&sb, "\n  config%s%s\n", policySuffix(q.Policy), cfg)
	return sb.String()
}

func describeStream(s *StreamInfo) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "stream %q %d partitions", s.Name, len(s.Partitions))
	for _, p := range s.Partitions {
		fmt.Fprintf(&sb, " [%s]", p)
	}
	fmt.Fprintf(&sb, "\n  config%s%s\n", policySuffix(s.Policy), FormatStreamConfig(s.Config))
	return sb.String()
}

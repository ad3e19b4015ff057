package main

// Shared plumbing of the client commands (publish, consume, queue, ...):
// the connection flags, the HTTP API client, error mapping and output.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-mq/ferry/internal/base"
)

// clientOpts are the flags every client command takes. Each defaults to
// its FERRY_* environment variable, then to a local node's defaults.
type clientOpts struct {
	server   string
	user     string
	password string
	tenant   string
	output   string
	timeout  time.Duration
}

// clientEnvHelp is appended to every client command's Long help.
const clientEnvHelp = `
Connection: --server (env FERRY_SERVER, default http://localhost:8080), --user
(FERRY_USER, default guest), --password (FERRY_PASSWORD, default guest),
--tenant (FERRY_TENANT, default "/"). Exit codes: 0 ok, 1 error, 2 usage,
3 cannot connect, 4 not found, 5 refused, 6 partial failure (docs/cli.md).`

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// addClientFlags registers the connection and output flags on c.
// outputs lists the formats the command offers, the first the default.
func addClientFlags(c *cobra.Command, outputs ...string) *clientOpts {
	o := &clientOpts{}
	f := c.Flags()
	f.StringVar(&o.server, "server", envOr("FERRY_SERVER", "http://localhost:8080"), "the node's HTTP API (env FERRY_SERVER)")
	f.StringVar(&o.user, "user", envOr("FERRY_USER", "guest"), "user name (env FERRY_USER)")
	f.StringVar(&o.password, "password", envOr("FERRY_PASSWORD", "guest"), "password (env FERRY_PASSWORD)")
	f.StringVar(&o.tenant, "tenant", envOr("FERRY_TENANT", "/"), "tenant (virtual host) (env FERRY_TENANT)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the node's answer")
	if len(outputs) > 0 {
		f.StringVarP(&o.output, "output", "o", outputs[0], "output format: "+strings.Join(outputs, ", "))
	}
	return o
}

// checkOutput validates --output against the command's formats.
func (o *clientOpts) checkOutput(c *cobra.Command, allowed ...string) error {
	for _, a := range allowed {
		if o.output == a {
			return nil
		}
	}
	return &usageError{fmt.Errorf("--output %q: choose one of %s\nRun '%s --help' for usage.", o.output, strings.Join(allowed, ", "), c.CommandPath())}
}

// apiClient calls a node's HTTP API.
type apiClient struct {
	base *url.URL
	o    *clientOpts
	http *http.Client
}

func (o *clientOpts) client() (*apiClient, error) {
	u, err := url.Parse(o.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &usageError{fmt.Errorf("--server %q is not an http:// or https:// URL (example: http://localhost:8080)", o.server)}
	}
	return &apiClient{base: u, o: o, http: &http.Client{Timeout: o.timeout}}, nil
}

// call sends method path?query (path already escaped: see pathOf) with in as JSON (nil: no body) and
// decodes the answer into out (nil: ignored). Errors carry the API's code
// (so the exit code follows it) or say that the node cannot be reached.
func (a *apiClient) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	target := strings.TrimSuffix(a.base.String(), "/") + path
	if query != nil {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.o.user, a.o.password)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return exitErr(ExitUnavailable, fmt.Errorf("cannot reach the HTTP API at %s: %w\nIs 'ferry serve' running there? Point --server (or FERRY_SERVER) at the node's HTTP listener", a.base, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, base.CLIResponseBytesMax+1))
	if err != nil {
		return exitErr(ExitUnavailable, fmt.Errorf("reading the answer of %s: %w", a.base, err))
	}
	if len(data) > base.CLIResponseBytesMax {
		return fmt.Errorf("the answer of %s %s exceeds %d bytes (CLIResponseBytesMax); narrow the request (--prefix, --limit)", method, path, base.CLIResponseBytesMax)
	}
	if resp.StatusCode >= 400 {
		return apiError(a.base, resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("the answer of %s %s is not the expected JSON (is %s a ferry node?): %w", method, path, a.base, err)
		}
	}
	return nil
}

// pathOf builds an API path from fixed parts and names; each name is
// escaped as one segment (a name may hold '/', '%' or spaces).
func pathOf(prefix string, names ...string) string {
	p := prefix
	for _, n := range names {
		p += "/" + url.PathEscape(n)
	}
	return p
}

func apiError(server *url.URL, status int, data []byte) error {
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		if status == http.StatusNotFound {
			return exitErr(ExitUnavailable, fmt.Errorf("%s answered 404 without a JSON error: it does not serve the management API (is it a ferry node of this version, with the HTTP API on that listener?)", server))
		}
		return fmt.Errorf("%s answered %d: %s", server, status, strings.TrimSpace(string(data)))
	}
	msg := eb.Error.Message
	switch eb.Error.Code {
	case "unauthenticated":
		msg += "\nCheck --user and --password (or FERRY_USER and FERRY_PASSWORD)."
	case "access_refused":
		msg += "\nAsk an administrator for the permission or tag, or log in as another user (--user)."
	}
	if c, ok := base.CodeNamed(eb.Error.Code); ok {
		return base.Errorf(c, "%s", msg)
	}
	return fmt.Errorf("%s (%s)", msg, eb.Error.Code)
}

// tenantQuery is ?tenant=<tenant>.
func (o *clientOpts) tenantQuery() url.Values { return url.Values{"tenant": {o.tenant}} }

// ctx returns a context bounded by --timeout.
func (o *clientOpts) ctx(c *cobra.Command) (context.Context, context.CancelFunc) {
	parent := c.Context()
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, o.timeout)
}

// call makes one API call for command c: it checks --server, bounds the
// call by --timeout and then does what apiClient.call does. Commands that
// make several calls under one deadline use client and ctx themselves.
func (o *clientOpts) call(c *cobra.Command, method, path string, query url.Values, in, out any) error {
	cl, err := o.client()
	if err != nil {
		return err
	}
	ctx, cancel := o.ctx(c)
	defer cancel()
	return cl.call(ctx, method, path, query, in, out)
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// parseKV parses repeated key=value flags. Values that read as integers
// or booleans become JSON numbers and booleans when typed is set (queue
// arguments need x-max-length as a number).
func parseKV(flag string, kvs []string, typed bool) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &usageError{fmt.Errorf("--%s %q: write key=value (example: --%s x-max-length=1000)", flag, kv, flag)}
		}
		out[k] = v
		if typed {
			if i, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[k] = i
			} else if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
				out[k] = b
			}
		}
	}
	return out, nil
}

// formatMap prints a map as k=v, sorted.
func formatMap(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// exactArgs is cobra.ExactArgs with an error that says how to fix it.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("%s needs %s, got %d argument(s)\nRun '%s --help' for usage.", c.CommandPath(), names, len(args), c.CommandPath())}
		}
		return nil
	}
}

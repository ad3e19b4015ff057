package main

// The list/create/delete/inspect commands shared by queue, stream,
// exchange, binding, user, permission and policy.

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// column is one column of a list table: a header and the dotted path of
// the value in each JSON object.
type column struct{ header, path string }

// cell formats the value at path ("stats.ready") of m.
func cell(m map[string]any, path string) string {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		var parts []string
		for _, e := range v {
			parts = append(parts, fmt.Sprint(e))
		}
		return strings.Join(parts, ",")
	case map[string]any:
		return formatMap(v)
	}
	return fmt.Sprint(v)
}

// entity describes one kind of thing the admin commands manage.
type entity struct {
	noun     string // "queue"
	api      string // "/api/queues"
	group    string // root help group
	tenanted bool   // lives in a tenant (--tenant is sent)
	columns  []column
	// listQuery adds filters to a list request from the list command's
	// flags (registered by listFlags).
	listFlags func(c *cobra.Command) func(q url.Values)
}

// listCommand is `ferry <noun> list`.
func (e *entity) listCommand(example string) *cobra.Command {
	var o *clientOpts
	var addQuery func(url.Values)
	c := &cobra.Command{
		Use:     "list",
		Short:   "List " + e.noun + "s",
		Long:    "List the " + e.noun + "s of the node's HTTP API as a table (-o json for every field)." + clientEnvHelp,
		Example: example,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.checkOutput(c, "table", "json"); err != nil {
				return err
			}
			q := url.Values{}
			if e.tenanted {
				q = o.tenantQuery()
			}
			if addQuery != nil {
				addQuery(q)
			}
			var items []map[string]any
			if err := o.call(c, "GET", e.api, q, nil, &items); err != nil {
				return err
			}
			if o.output == "json" {
				return printJSON(c.OutOrStdout(), items)
			}
			header := make([]string, len(e.columns))
			for i, col := range e.columns {
				header[i] = col.header
			}
			rows := make([][]string, 0, len(items))
			for _, it := range items {
				row := make([]string, len(e.columns))
				for i, col := range e.columns {
					row[i] = cell(it, col.path)
				}
				rows = append(rows, row)
			}
			return table(c.OutOrStdout(), header, rows)
		},
	}
	o = addClientFlags(c, "table", "json")
	if e.listFlags != nil {
		addQuery = e.listFlags(c)
	}
	return c
}

// inspectCommand is `ferry <noun> inspect NAME`: the entity as JSON.
func (e *entity) inspectCommand(example string) *cobra.Command {
	var o *clientOpts
	c := &cobra.Command{
		Use:     "inspect NAME",
		Short:   "Show one " + e.noun + " with every field",
		Long:    "Show one " + e.noun + " as JSON, with every field the HTTP API reports." + clientEnvHelp,
		Example: example,
		Args:    exactArgs(1, "the "+e.noun+"'s name"),
		RunE: func(c *cobra.Command, args []string) error {
			var item map[string]any
			if err := o.call(c, "GET", pathOf(e.api, args[0]), e.query(o), nil, &item); err != nil {
				return err
			}
			return printJSON(c.OutOrStdout(), item)
		},
	}
	o = addClientFlags(c)
	return c
}

func (e *entity) query(o *clientOpts) url.Values {
	if e.tenanted {
		return o.tenantQuery()
	}
	return nil
}

// deleteCommand is `ferry <noun> delete NAME`; flags adds the command's
// own flags and returns a function filling the query from them.
func (e *entity) deleteCommand(example string, flags func(c *cobra.Command) func(q url.Values)) *cobra.Command {
	var o *clientOpts
	var addQuery func(url.Values)
	c := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a " + e.noun,
		Long:    "Delete a " + e.noun + "." + clientEnvHelp,
		Example: example,
		Args:    exactArgs(1, "the "+e.noun+"'s name"),
		RunE: func(c *cobra.Command, args []string) error {
			q := e.query(o)
			if q == nil {
				q = url.Values{}
			}
			if addQuery != nil {
				addQuery(q)
			}
			var res map[string]any
			if err := o.call(c, "DELETE", pathOf(e.api, args[0]), q, nil, &res); err != nil {
				return err
			}
			msg := fmt.Sprintf("deleted %s %q", e.noun, args[0])
			if n, ok := res["messages"]; ok {
				msg += fmt.Sprintf(" (%v messages discarded)", n)
			}
			_, err := fmt.Fprintln(c.OutOrStdout(), msg)
			return err
		},
	}
	o = addClientFlags(c)
	if flags != nil {
		addQuery = flags(c)
	}
	return c
}

// createCommand is `ferry <noun> create NAME`: body builds the request
// from the command's flags (registered by flags).
func (e *entity) createCommand(use, example, long string, flags func(c *cobra.Command) func(args []string) (any, error)) *cobra.Command {
	var o *clientOpts
	var body func([]string) (any, error)
	c := &cobra.Command{
		Use:     use,
		Short:   "Create a " + e.noun,
		Long:    long + clientEnvHelp,
		Example: example,
		Args:    exactArgs(1, "the "+e.noun+"'s name"),
		RunE: func(c *cobra.Command, args []string) error {
			in, err := body(args)
			if err != nil {
				return err
			}
			if err := o.call(c, "PUT", pathOf(e.api, args[0]), e.query(o), in, nil); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.OutOrStdout(), "created %s %q\n", e.noun, args[0])
			return err
		},
	}
	o = addClientFlags(c)
	body = flags(c)
	return c
}

// parent is the `ferry <noun>` command holding the subcommands.
func (e *entity) parent(short, long, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:     e.noun,
		Short:   short,
		Long:    long,
		Example: example,
		GroupID: e.group,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return &usageError{fmt.Errorf("%s needs a subcommand: list, create, delete or inspect\nRun '%s --help' for usage.", c.CommandPath(), c.CommandPath())}
		},
	}
	c.AddCommand(subs...)
	return c
}

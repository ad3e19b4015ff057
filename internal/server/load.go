package server

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	env "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// Sources are where Load reads the configuration from, in increasing
// precedence: the defaults, the YAML file, the environment, the flags.
type Sources struct {
	// File is the YAML file's path; "" means none.
	File string
	// FS reads File (default vfs.Default).
	FS vfs.FS
	// Env is the environment as os.Environ returns it. Variables whose
	// name is not a configuration key's are ignored (FERRY_SERVER and its
	// kin belong to the client commands).
	Env []string
	// Flags is the flag set RegisterFlags filled and the command line
	// parsed; only flags the user set count. Nil means no flags.
	Flags *pflag.FlagSet
}

// Source names of Loaded.Source.
const (
	SourceDefault = "default"
	SourceFile    = "file"
	SourceEnv     = "env"
	SourceFlag    = "flag"
)

// Loaded is a validated configuration and where each key's value came
// from (SourceDefault, SourceFile, SourceEnv or SourceFlag), for
// --print-config.
type Loaded struct {
	Config Config
	Source map[string]string
}

// ConfigError is a configuration that cannot be used: Key is the dotted
// key at fault ("" for a file that cannot be read or parsed), Value what
// was given, From where it was given. It carries base.CodeInvalidArgument.
type ConfigError struct {
	Key    string
	Value  string
	From   string // e.g. "env FERRY_LISTENERS_AMQP", "flag --node-id", "file ferry.yaml"
	Reason string
	Err    error // the underlying cause, if any
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: %q: ", e.Key, e.Value)
	}
	b.WriteString(e.Reason)
	if e.From != "" {
		fmt.Fprintf(&b, " (set by %s)", e.From)
	}
	return b.String()
}

func (e *ConfigError) Unwrap() []error {
	errs := []error{&base.Error{Code: base.CodeInvalidArgument}}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Load reads the configuration from src and validates it. Errors are
// *ConfigError naming the key, its value and where it was set.
func Load(src Sources) (Loaded, error) {
	layers := []struct {
		name string
		load func(*koanf.Koanf) error
	}{
		{SourceDefault, loadDefaults},
		{SourceFile, func(k *koanf.Koanf) error { return loadFile(k, src) }},
		{SourceEnv, func(k *koanf.Koanf) error { return loadEnv(k, src.Env) }},
		{SourceFlag, func(k *koanf.Koanf) error { return loadFlags(k, src.Flags) }},
	}
	merged := koanf.New(".")
	source := map[string]string{}
	for _, l := range layers {
		k := koanf.New(".")
		if err := l.load(k); err != nil {
			return Loaded{}, err
		}
		for _, key := range k.Keys() {
			if _, known := fieldByKey(key); !known {
				return Loaded{}, unknownKey(key, src.File)
			}
			source[key] = l.name
		}
		if err := merged.Merge(k); err != nil {
			return Loaded{}, fmt.Errorf("server: merging the %s configuration: %w", l.name, err)
		}
	}
	var cfg Config
	root := reflect.ValueOf(&cfg).Elem()
	for _, f := range configFields {
		raw := valueString(merged.Get(f.Key))
		if err := setField(root.FieldByIndex(f.index), raw); err != nil {
			return Loaded{}, &ConfigError{Key: f.Key, Value: raw, From: from(f, source[f.Key], src.File), Reason: err.Error()}
		}
	}
	l := Loaded{Config: cfg, Source: source}
	if err := l.validate(src.File); err != nil {
		return Loaded{}, err
	}
	return l, nil
}

// Defaults returns the configuration with every default and nothing else.
func Defaults() Config {
	l, err := Load(Sources{})
	base.Assert(err == nil, "server: the defaults do not validate: %v", err)
	return l.Config
}

func loadDefaults(k *koanf.Koanf) error {
	m := map[string]any{}
	for _, f := range configFields {
		m[f.Key] = f.Default
	}
	return k.Load(confmap.Provider(m, "."), nil)
}

func loadFile(k *koanf.Koanf, src Sources) error {
	if src.File == "" {
		return nil
	}
	fsys := src.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	data, err := readFile(fsys, src.File)
	if err != nil {
		return &ConfigError{Reason: fmt.Sprintf("cannot read the config file %s: %v", src.File, err), Err: err}
	}
	if err := k.Load(rawbytes.Provider(data), yaml.Parser()); err != nil {
		return &ConfigError{Reason: fmt.Sprintf("config file %s is not valid YAML: %v", src.File, err), Err: err}
	}
	return nil
}

// readFile reads at most ConfigFileBytesMax of name.
func readFile(fsys vfs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, base.ConfigFileBytesMax+1))
	if err != nil {
		return nil, err
	}
	if len(data) > base.ConfigFileBytesMax {
		return nil, fmt.Errorf("larger than %d bytes", base.ConfigFileBytesMax)
	}
	return data, nil
}

func loadEnv(k *koanf.Koanf, environ []string) error {
	byEnv := map[string]string{}
	for _, f := range configFields {
		byEnv[f.Env] = f.Key
	}
	return k.Load(env.Provider(".", env.Opt{
		Prefix:      "FERRY_",
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			return byEnv[name], value // "" drops variables that are not keys
		},
	}), nil)
}

func loadFlags(k *koanf.Koanf, fs *pflag.FlagSet) error {
	if fs == nil {
		return nil
	}
	byFlag := map[string]string{}
	for _, f := range configFields {
		byFlag[f.Flag] = f.Key
	}
	return k.Load(posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
		if !f.Changed {
			return "", nil
		}
		return byFlag[f.Name], f.Value.String() // "" drops flags that are not keys (--config, --print-config)
	}), nil)
}

// valueString renders what a provider produced in the syntax setField
// parses: YAML gives typed scalars and lists, env and flags strings.
func valueString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, it := range v {
			parts[i] = valueString(it)
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v)
	}
}

func fieldByKey(key string) (field, bool) {
	for _, f := range configFields {
		if f.Key == key {
			return f, true
		}
	}
	return field{}, false
}

func from(f field, source, file string) string {
	switch source {
	case SourceFile:
		return "file " + file
	case SourceEnv:
		return "env " + f.Env
	case SourceFlag:
		return "flag --" + f.Flag
	}
	return ""
}

// unknownKey reports a key of the file that Config does not have, with
// the closest known key as a suggestion (a typo is the common cause).
func unknownKey(key, file string) error {
	best, bestDist := "", len(key)/2+1
	for _, f := range configFields {
		if d := editDistance(key, f.Key); d < bestDist {
			best, bestDist = f.Key, d
		}
	}
	reason := "unknown configuration key"
	if best != "" {
		reason += fmt.Sprintf("; did you mean %s?", best)
	} else {
		reason += "; docs/configuration.md lists every key"
	}
	return &ConfigError{Key: key, From: "file " + file, Reason: reason}
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// RegisterFlags adds one flag per configuration key to fs. Values are
// parsed by Load, so a bad flag value is reported like a bad file or
// environment value, naming the key.
func RegisterFlags(fs *pflag.FlagSet) {
	for _, f := range configFields {
		fl := fs.VarPF(&rawFlag{typ: f.Type, val: f.Default}, f.Flag, "", f.Doc+" (env "+f.Env+")")
		fl.DefValue = f.Default
		if f.Type == "bool" {
			fl.NoOptDefVal = "true"
		}
	}
}

// rawFlag keeps the text of a flag for Load to parse.
type rawFlag struct {
	typ, val string
}

func (r *rawFlag) String() string     { return r.val }
func (r *rawFlag) Set(s string) error { r.val = s; return nil }
func (r *rawFlag) Type() string       { return r.typ }

// YAML renders the effective configuration as a YAML document that Load
// reads back unchanged, with a comment on each key saying where its value
// came from.
func (l Loaded) YAML() string {
	var b strings.Builder
	root := reflect.ValueOf(l.Config)
	section := ""
	for _, f := range configFields {
		parts := strings.Split(f.Key, ".")
		indent := ""
		if len(parts) == 2 {
			if parts[0] != section {
				section = parts[0]
				fmt.Fprintf(&b, "%s:\n", section)
			}
			indent = "  "
		}
		base.Assert(len(parts) <= 2, "server: config key %s nests deeper than YAML() renders", f.Key)
		v := root.FieldByIndex(f.index)
		fmt.Fprintf(&b, "%s%s: %s # %s\n", indent, parts[len(parts)-1], yamlValue(v), sourceNote(f, l.Source[f.Key]))
	}
	return b.String()
}

func sourceNote(f field, source string) string {
	switch source {
	case SourceEnv:
		return "env " + f.Env
	case SourceFlag:
		return "flag --" + f.Flag
	case SourceFile:
		return "config file"
	}
	return "default"
}

func yamlValue(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		items := v.Interface().([]string)
		quoted := make([]string, len(items))
		for i, it := range items {
			quoted[i] = fmt.Sprintf("%q", it)
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	s := formatField(v)
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// Keys returns every configuration key in Config order.
func Keys() []string {
	out := make([]string, len(configFields))
	for i, f := range configFields {
		out[i] = f.Key
	}
	return out
}

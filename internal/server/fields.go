package server

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// field is one leaf of Config: where its value comes from and how it is
// parsed. fields() derives the table from Config's tags once; Load, the
// flags, --print-config and docs/configuration.md all read it, so they
// cannot disagree.
type field struct {
	Key     string // dotted YAML path: "listeners.amqp"
	Env     string // FERRY_LISTENERS_AMQP
	Flag    string // listeners-amqp
	Default string // in value syntax
	Doc     string
	Type    string // for docs and --help: string, bool, int, duration, bytes, list, float
	index   []int  // reflect field index path from Config
}

var configFields = mustFields()

func mustFields() []field {
	var out []field
	walkFields(reflect.TypeFor[Config](), "", nil, &out)
	seen := map[string]string{}
	for _, f := range out {
		for _, name := range []string{"key " + f.Key, "env " + f.Env, "flag " + f.Flag} {
			if prev, dup := seen[name]; dup {
				panic(fmt.Sprintf("BUG: server.Config: %s used by %s and %s", name, prev, f.Key))
			}
			seen[name] = f.Key
		}
		if f.Doc == "" {
			panic("BUG: server.Config: field " + f.Key + " has no doc tag")
		}
		var probe Config
		if err := setField(reflect.ValueOf(&probe).Elem().FieldByIndex(f.index), f.Default); err != nil {
			panic(fmt.Sprintf("BUG: server.Config: default of %s: %v", f.Key, err))
		}
	}
	return out
}

func walkFields(t reflect.Type, prefix string, index []int, out *[]field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("koanf")
		if name == "" {
			panic("BUG: server.Config: field " + sf.Name + " has no koanf tag")
		}
		key := prefix + name
		idx := append(append([]int(nil), index...), i)
		if sf.Type.Kind() == reflect.Struct {
			walkFields(sf.Type, key+".", idx, out)
			continue
		}
		f := field{Key: key, Default: sf.Tag.Get("default"), Doc: sf.Tag.Get("doc"), Type: typeName(sf.Type), index: idx}
		f.Env = sf.Tag.Get("env")
		if f.Env == "" {
			f.Env = "FERRY_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		}
		f.Flag = sf.Tag.Get("flag")
		if f.Flag == "" {
			f.Flag = strings.NewReplacer(".", "-", "_", "-").Replace(key)
		}
		*out = append(*out, f)
	}
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == byteSizeType:
		return "bytes"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Uint64, reflect.Int:
		return "int"
	case reflect.Float64:
		return "float"
	case reflect.Slice:
		return "list"
	}
	panic("BUG: server.Config: unsupported field type " + t.String())
}

// setField parses s into v. Lists are comma-separated (flags and
// environment variables; YAML lists arrive joined the same way).
func setField(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (use a unit: 500ms, 30s, 5m)")
		}
		v.SetInt(int64(d))
		return nil
	case v.Type() == byteSizeType:
		n, err := parseByteSize(s)
		if err != nil {
			return err
		}
		v.SetUint(n)
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean (use true or false)")
		}
		v.SetBool(b)
	case reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a non-negative integer")
		}
		v.SetUint(n)
	case reflect.Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
			return fmt.Errorf("not an integer")
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		panic("BUG: server.Config: unsupported kind " + v.Kind().String())
	}
	return nil
}

// formatField renders v in the syntax setField parses.
func formatField(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Type() == byteSizeType:
		return ByteSize(v.Uint()).String()
	}
	switch v.Kind() {
	case reflect.Slice:
		return strings.Join(v.Interface().([]string), ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

var byteUnits = []struct {
	suffix string
	mult   uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func parseByteSize(s string) (uint64, error) {
	num, mult := strings.TrimSpace(s), uint64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a size (use an integer with an optional unit: 512MiB, 2GiB, 1GB)")
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("size overflows 64 bits")
	}
	return n * mult, nil
}

// String renders the size with the largest power-of-1024 unit that
// divides it exactly.
func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && uint64(b)%u.mult == 0 {
			return strconv.FormatUint(uint64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(uint64(b), 10)
}

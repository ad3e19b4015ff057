package gen

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

func versionRange(v Versions) string {
	if v.Empty() {
		return "VersionRange{Min: 1, Max: 0}"
	}
	return fmt.Sprintf("VersionRange{Min: %d, Max: %d}", v.Lo, v.Hi)
}

var listenerConsts = map[string]string{"zkBroker": "ListenerZKBroker", "broker": "ListenerBroker", "controller": "ListenerController"}

func emitAPIs(p *printer, apis []*api, headers []*Message) error {
	if err := emitHeaderVersions(p, headers); err != nil {
		return err
	}
	p.f("// The API keys of every API in the definitions.")
	p.f("const (")
	for _, a := range apis {
		p.f("APIKey%s APIKey = %d", a.name, a.key)
	}
	p.f(")")
	maxKey := apis[len(apis)-1].key
	p.f("// apiKeyMax is the largest API key in the definitions.")
	p.f("const apiKeyMax = %d", maxKey)
	p.f("// apiTable holds every API, indexed by key; a zero entry (empty Name) is")
	p.f("// a key no definition uses.")
	p.f("var apiTable = [apiKeyMax + 1]API{")
	for _, a := range apis {
		m := a.req
		flexFrom := int16(-1)
		if !m.Flexible.Empty() {
			flexFrom = m.Flexible.Lo
		}
		var ls []string
		for _, l := range m.Listeners {
			ls = append(ls, listenerConsts[l])
		}
		listeners := "0"
		if len(ls) > 0 {
			listeners = strings.Join(ls, " | ")
		}
		p.f("%d: {Key: %d, Name: %q, Versions: %s, FlexibleFrom: %d, Deprecated: %s, LatestVersionUnstable: %v, Listeners: %s},",
			a.key, a.key, a.name, versionRange(m.Valid), flexFrom, versionRange(m.Deprecated), m.LatestVersionUnstable, listeners)
	}
	p.f("}")
	for _, kind := range []string{"Request", "Response"} {
		lower := strings.ToLower(kind)
		p.f("// %sConstructors returns a new zero %s of the API with a given key.", lower, lower)
		p.f("var %sConstructors = [apiKeyMax + 1]func() %s{", lower, kind)
		for _, a := range apis {
			p.f("%d: func() %s { return new(%s%s) },", a.key, kind, a.name, kind)
		}
		p.f("}")
	}
	return nil
}

// emitHeaderVersions records the header definitions' versions, which the
// hand-written header code checks itself against.
func emitHeaderVersions(p *printer, headers []*Message) error {
	found := map[string]*Message{}
	for _, h := range headers {
		found[h.Name] = h
	}
	req, resp := found["RequestHeader"], found["ResponseHeader"]
	if req == nil || resp == nil {
		return fmt.Errorf("the RequestHeader and ResponseHeader definitions are missing")
	}
	p.f("// Header versions from RequestHeader.json and ResponseHeader.json.")
	p.f("const (")
	p.f("requestHeaderVersionMax = %d", req.Valid.Hi)
	p.f("requestHeaderFlexibleFrom = %d", req.Flexible.Lo)
	p.f("responseHeaderVersionMax = %d", resp.Valid.Hi)
	p.f("responseHeaderFlexibleFrom = %d", resp.Flexible.Lo)
	p.f(")")
	return nil
}

// ErrorCode is one row of the Kafka error-code table.
type ErrorCode struct {
	Code      int16
	Name      string // e.g. UNKNOWN_TOPIC_OR_PARTITION
	Retriable bool
}

// LoadErrorCodes reads the error-code table: one "code NAME retriable"
// row per line, "#" comments and blank lines ignored.
func LoadErrorCodes(path string) ([]ErrorCode, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseErrorCodes(src)
}

// ParseErrorCodes parses the error-code table (see LoadErrorCodes). Codes
// must be strictly ascending, so that the table reads like Kafka's.
func ParseErrorCodes(src []byte) ([]ErrorCode, error) {
	var out []ErrorCode
	sc := bufio.NewScanner(bytes.NewReader(src))
	line := 0
	names := map[string]bool{}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cols := strings.Fields(text)
		if len(cols) != 3 {
			return nil, fmt.Errorf("error codes line %d: want \"code NAME retriable\", got %q", line, text)
		}
		code, err := strconv.ParseInt(cols[0], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("error codes line %d: %w", line, err)
		}
		retriable, err := strconv.ParseBool(cols[2])
		if err != nil {
			return nil, fmt.Errorf("error codes line %d: %w", line, err)
		}
		if !isUpperSnake(cols[1]) || names[cols[1]] {
			return nil, fmt.Errorf("error codes line %d: bad or repeated name %q", line, cols[1])
		}
		if len(out) > 0 && int16(code) <= out[len(out)-1].Code {
			return nil, fmt.Errorf("error codes line %d: code %d is not ascending", line, code)
		}
		names[cols[1]] = true
		out = append(out, ErrorCode{Code: int16(code), Name: cols[1], Retriable: retriable})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 || out[0].Code != -1 || out[len(out)-1].Code > math.MaxInt16-1 {
		return nil, fmt.Errorf("error codes: the table must start at -1 (UNKNOWN_SERVER_ERROR)")
	}
	return out, nil
}

func isUpperSnake(s string) bool {
	for _, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// camel turns UPPER_SNAKE into CamelCase: UNKNOWN_SERVER_ERROR -> UnknownServerError.
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(s), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func emitErrorCodes(p *printer, codes []ErrorCode) {
	p.f("// The Kafka error codes, from internal/codegen/kafka/error_codes.txt.")
	p.f("const (")
	for _, c := range codes {
		p.f("ErrorCode%s ErrorCode = %d // %s", camel(c.Name), c.Code, c.Name)
	}
	p.f(")")
	last := codes[len(codes)-1].Code
	p.f("// errorCodeMax is the largest known error code.")
	p.f("const errorCodeMax = %d", last)
	p.f("// errorCodeTable is indexed by code+1; an entry with an empty name is a")
	p.f("// code Kafka does not define.")
	p.f("var errorCodeTable = [errorCodeMax + 2]errorCodeInfo{")
	for _, c := range codes {
		p.f("%d: {name: %q, retriable: %v},", int(c.Code)+1, c.Name, c.Retriable)
	}
	p.f("}")
}

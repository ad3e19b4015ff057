package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// scramClientFinal computes a client-final message by hand, as a client
// that sends nonce as its r= would (librdkafka before 2.6.1 sends its own
// nonce followed by the server's whole r=).
func scramClientFinal(t *testing.T, m Mechanism, password, clientFirstBare, serverFirst, cbind, nonce string) string {
	t.Helper()
	attrs := map[string]string{}
	for _, a := range strings.Split(serverFirst, ",") {
		attrs[a[:1]] = a[2:]
	}
	salt := mustB64(t, attrs["s"])
	h := m.hash()
	salted, err := pbkdf2.Key(h, password, salt, 4096, m.keyLen())
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(h, salted)
	mac.Write([]byte("Client Key"))
	clientKey := mac.Sum(nil)
	d := h()
	d.Write(clientKey)
	storedKey := d.Sum(nil)
	withoutProof := "c=" + cbind + ",r=" + nonce
	mac = hmac.New(h, storedKey)
	mac.Write([]byte(clientFirstBare + "," + serverFirst + "," + withoutProof))
	sig := mac.Sum(nil)
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(sig)
}

// TestScramAcceptsLibrdkafkaDoubledNonce pins the fix that lets kcat log
// in: librdkafka 2.0.2 answers r=<cnonce><cnonce><snonce>. That exact
// form is accepted, as Apache Kafka (3.8.1+, endsWith) does; any other
// prefix, a truncated nonce or a stale one is refused.
func TestScramAcceptsLibrdkafkaDoubledNonce(t *testing.T) {
	d := scramDirectory(t, "pencil", DirectoryOptions{})
	const cnonce, snonce = "clientnonce", "servernonce"
	for _, m := range []Mechanism{MechScramSHA256, MechScramSHA512} {
		for _, tc := range []struct {
			name, nonce string
			ok          bool
		}{
			{"exact nonce (RFC 5802)", cnonce + snonce, true},
			{"librdkafka's doubled client nonce", cnonce + cnonce + snonce, true},
			{"another prefix (Kafka's endsWith would take it)", "x" + cnonce + snonce, false},
			{"client nonce alone", cnonce, false},
			{"server nonce missing its last byte", cnonce + snonce[:len(snonce)-1], false},
		} {
			sc, err := d.NewScram(m, func() string { return snonce })
			if err != nil {
				t.Fatal(err)
			}
			sfirst, err := sc.Step([]byte("n,,n=user,r=" + cnonce))
			if err != nil {
				t.Fatalf("%s: first step: %v", m, err)
			}
			final := scramClientFinal(t, m, "pencil", "n=user,r="+cnonce, string(sfirst), "biws", tc.nonce)
			resp, err := sc.Step([]byte(final))
			name, ok := sc.Username()
			if tc.ok != (err == nil) || ok != tc.ok || (ok && name != "user") {
				t.Errorf("%s %s: got resp %q err %v user %q %v, want accepted=%v", m, tc.name, resp, err, name, ok, tc.ok)
			}
			if tc.ok && !strings.HasPrefix(string(resp), "v=") {
				t.Errorf("%s %s: got server-final %q, want v=...", m, tc.name, resp)
			}
			if !tc.ok && base.CodeOf(err) != base.CodeUnauthenticated {
				t.Errorf("%s %s: got code %v, want %v", m, tc.name, base.CodeOf(err), base.CodeUnauthenticated)
			}
			if !sc.Done() {
				t.Errorf("%s %s: Done after the final step: got false", m, tc.name)
			}
		}
	}
}

// TestScramGS2HeaderAndAttributes covers the parts of RFC 5802 the
// server checks besides the proof.
func TestScramGS2HeaderAndAttributes(t *testing.T) {
	d := scramDirectory(t, "pencil", DirectoryOptions{})
	m := MechScramSHA256
	run := func(first, cbind string) (string, error) {
		sc, _ := d.NewScram(m, func() string { return "snonce" })
		sfirst, err := sc.Step([]byte(first))
		if err != nil {
			return string(sfirst), err
		}
		bare := first[strings.Index(first, "n="):]
		resp, err := sc.Step([]byte(scramClientFinal(t, m, "pencil", bare, string(sfirst), cbind, "cn"+"snonce")))
		return string(resp), err
	}
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name, first, cbind string
		wantResp           string // a prefix
		ok                 bool
	}{
		{"plain", "n,,n=user,r=cn", b64([]byte("n,,")), "v=", true},
		{"client could bind (y)", "y,,n=user,r=cn", b64([]byte("y,,")), "v=", true},
		{"authzid equal to the user", "n,a=user,n=user,r=cn", b64([]byte("n,a=user,")), "v=", true},
		{"Kafka's tokenauth extension is ignored", "n,,n=user,r=cn,tokenauth=true", b64([]byte("n,,")), "v=", true},
		{"authzid of another user", "n,a=admin,n=user,r=cn", b64([]byte("n,a=admin,")), "e=other-error", false},
		{"channel binding requested", "p=tls-unique,,n=user,r=cn", "", "e=channel-binding-not-supported", false},
		{"mandatory extension", "n,,m=x,n=user,r=cn", "", "e=extensions-not-supported", false},
		{"bad name escape", "n,,n=us=2Xer,r=cn", "", "e=invalid-username-encoding", false},
		{"no nonce", "n,,n=user", "", "e=extensions-not-supported", false},
		{"nonce with a control byte", "n,,n=user,r=c\x01n", "", "e=invalid-encoding", false},
		{"c= not the gs2 header", "n,,n=user,r=cn", b64([]byte("y,,")), "e=channel-bindings-dont-match", false},
	} {
		resp, err := run(tc.first, tc.cbind)
		if tc.ok != (err == nil) || !strings.HasPrefix(resp, tc.wantResp) {
			t.Errorf("%s: got %q %v, want %q... accepted=%v", tc.name, resp, err, tc.wantResp, tc.ok)
		}
	}
}

func TestScramEscapedUserNameAndStepAfterDone(t *testing.T) {
	c, err := NewScramCredential(MechScramSHA256, "pw", salt(6), 4096)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirectory([]User{{Name: "a,b=c", Credentials: Credentials{ScramSHA256: c}}}, DirectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := d.NewScram(MechScramSHA256, func() string { return "s" })
	sfirst, err := sc.Step([]byte("n,,n=a=2Cb=3Dc,r=c"))
	if err != nil {
		t.Fatalf("first step with an escaped name: %v", err)
	}
	final := scramClientFinal(t, MechScramSHA256, "pw", "n=a=2Cb=3Dc,r=c", string(sfirst), "biws", "cs")
	if _, err := sc.Step([]byte(final)); err != nil {
		t.Fatalf("final step: %v", err)
	}
	if name, ok := sc.Username(); !ok || name != "a,b=c" {
		t.Errorf("Username: got %q %v, want \"a,b=c\" true", name, ok)
	}
	if _, err := sc.Step([]byte(final)); base.CodeOf(err) != base.CodeUnauthenticated {
		t.Errorf("a step after the end: got %v, want %v", err, base.CodeUnauthenticated)
	}
}

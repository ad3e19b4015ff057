package auth

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/xdg-go/scram"
)

func TestParsePlain(t *testing.T) {
	long := strings.Repeat("u", base.AuthIdentityBytesMax)
	for _, tc := range []struct {
		name string
		msg  string
		want PlainMessage
		err  string // "" for success; else a part of the error
	}{
		{"no authzid", "\x00tim\x00tanstaaftanstaaf", PlainMessage{AuthcID: "tim", Password: "tanstaaftanstaaf"}, ""},
		{"authzid", "Ursel\x00Kurt\x00xipj3plmq", PlainMessage{AuthzID: "Ursel", AuthcID: "Kurt", Password: "xipj3plmq"}, ""},
		{"utf-8", "\x00jösé\x00pässwörd", PlainMessage{AuthcID: "jösé", Password: "pässwörd"}, ""},
		{"identity at the limit", "\x00" + long + "\x00p", PlainMessage{AuthcID: long, Password: "p"}, ""},
		{"no NUL", "timpassword", PlainMessage{}, "want authzid NUL"},
		{"one NUL", "tim\x00password", PlainMessage{}, "want authzid NUL"},
		{"three NULs", "\x00tim\x00pass\x00word", PlainMessage{}, "more than two"},
		{"empty authcid", "a\x00\x00password", PlainMessage{}, "empty authentication"},
		{"empty password", "\x00tim\x00", PlainMessage{}, "empty password"},
		{"identity past the limit", "\x00" + long + "u\x00p", PlainMessage{}, "identity over"},
		{"password past the limit", "\x00u\x00" + strings.Repeat("p", base.AuthPasswordBytesMax+1), PlainMessage{}, "password over"},
		{"message past the limit", strings.Repeat("a", base.AuthSASLMessageBytesMax+1), PlainMessage{}, "message over"},
		{"invalid utf-8", "\x00tim\x00\xff\xfe", PlainMessage{}, "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePlain([]byte(tc.msg))
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Errorf("got %+v %v, want %+v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || base.CodeOf(err) != base.CodeInvalidArgument {
				t.Errorf("got %+v %v, want an invalid_argument error containing %q", got, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "tanstaaf") {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scramDirectory(t *testing.T, password string, opts DirectoryOptions) *Directory {
	t.Helper()
	c256, err := NewScramCredential(MechScramSHA256, password, salt(4), 4096)
	if err != nil {
		t.Fatal(err)
	}
	c512, err := NewScramCredential(MechScramSHA512, password, salt(5), 4096)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirectory([]User{{Name: "user", Credentials: Credentials{ScramSHA256: c256, ScramSHA512: c512}}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestScramSHA256RFC7677Vector replays the exchange of RFC 7677 §3 (user
// "user", password "pencil") against the server.
func TestScramSHA256RFC7677Vector(t *testing.T) {
	cred, err := NewScramCredential(MechScramSHA256, "pencil", mustB64(t, "W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirectory([]User{{Name: "user", Credentials: Credentials{ScramSHA256: cred}}}, DirectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := d.NewScram(MechScramSHA256, func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" })
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ client, server string }{
		{"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"},
		{"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
	} {
		got, err := conv.Step([]byte(step.client))
		if err != nil || string(got) != step.server {
			t.Fatalf("step %q: got %q %v, want %q", step.client, got, err, step.server)
		}
	}
	if name, ok := conv.Username(); !ok || name != "user" {
		t.Errorf("Username: got %q %v, want user true", name, ok)
	}
}

// runScram runs a real conversation between xdg-go/scram's client and the
// server, and returns the server's verdict.
func runScram(t *testing.T, d *Directory, m Mechanism, user, password string) (string, error) {
	t.Helper()
	client, err := m.hash().NewClient(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	cc := client.WithNonceGenerator(func() string { return "clientnonce123456789" }).NewConversation()
	sc, err := d.NewScram(m, func() string { return "servernonce987654321" })
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cc.Step("")
	for err == nil && !sc.Done() {
		var resp []byte
		resp, err = sc.Step([]byte(msg))
		if err != nil {
			break
		}
		msg, err = cc.Step(string(resp))
		if err != nil {
			t.Fatalf("client refused the server's message %q: %v", resp, err)
		}
	}
	if err != nil {
		return "", err
	}
	name, ok := sc.Username()
	if !ok {
		t.Fatalf("conversation done without error but not valid")
	}
	return name, nil
}

func TestScramConversationsWithXdgClient(t *testing.T) {
	d := scramDirectory(t, "pencil", DirectoryOptions{ScramDecoyKey: []byte("0123456789abcdef0123456789abcdef")})
	for _, m := range []Mechanism{MechScramSHA256, MechScramSHA512} {
		if name, err := runScram(t, d, m, "user", "pencil"); err != nil || name != "user" {
			t.Errorf("%s right password: got %q %v", m, name, err)
		}
		if _, err := runScram(t, d, m, "user", "pen"); base.CodeOf(err) != base.CodeUnauthenticated {
			t.Errorf("%s wrong password: got %v, want %v", m, err, base.CodeUnauthenticated)
		}
		// With a decoy key an unknown user fails like a wrong password.
		if _, err := runScram(t, d, m, "nobody", "pencil"); base.CodeOf(err) != base.CodeUnauthenticated {
			t.Errorf("%s unknown user: got %v, want %v", m, err, base.CodeUnauthenticated)
		}
	}
	plain := scramDirectory(t, "pencil", DirectoryOptions{})
	sc, _ := plain.NewScram(MechScramSHA256, func() string { return "n" })
	resp, err := sc.Step([]byte("n,,n=nobody,r=abc"))
	if base.CodeOf(err) != base.CodeUnauthenticated || string(resp) != scram.ErrUnknownUser {
		t.Errorf("unknown user without a decoy: got %q %v", resp, err)
	}
	if _, err := plain.NewScram(MechPlain, nil); base.CodeOf(err) != base.CodeNotSupported {
		t.Errorf("NewScram(PLAIN): got %v", err)
	}
}

func TestScramRefusesOversizedAndBinaryMessages(t *testing.T) {
	d := scramDirectory(t, "pencil", DirectoryOptions{})
	sc, _ := d.NewScram(MechScramSHA256, func() string { return "n" })
	if _, err := sc.Step(make([]byte, base.AuthSASLMessageBytesMax+1)); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("oversized: got %v", err)
	}
	if _, err := sc.Step([]byte("n,,n=user,r=\xff")); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("not UTF-8: got %v", err)
	}
	if _, err := sc.Step([]byte("garbage")); base.CodeOf(err) != base.CodeUnauthenticated {
		t.Errorf("garbage: got %v", err)
	}
}

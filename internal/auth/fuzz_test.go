package auth

import (
	"bytes"
	"testing"
)

// FuzzParsePlain: never panics; what parses re-encodes to the same bytes.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00tim\x00tanstaaftanstaaf"))
	f.Add([]byte("Ursel\x00Kurt\x00xipj3plmq"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte{0xff, 0, 'a', 0, 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParsePlain(b)
		if err != nil {
			return
		}
		again := []byte(m.AuthzID + "\x00" + m.AuthcID + "\x00" + m.Password)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %q gave %q", b, again)
		}
	})
}

// FuzzScramClientMessages feeds arbitrary client-first and client-final
// messages to a SCRAM server: it never panics and never accepts a client
// that did not prove the password.
func FuzzScramClientMessages(f *testing.F) {
	f.Add([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
		[]byte("c=biws,r=rOprNGfwEbeRWgbNEkqOservernonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	f.Add([]byte("y,a=admin,n=user,r=x"), []byte("c=eSxhPWFkbWluLA==,r=xservernonce,p=AAAA"))
	f.Add([]byte("p=tls-unique,,n=user,r=x"), []byte(""))
	f.Add([]byte("n,,n=us=2Cer,r=x,ext"), []byte("c=biws,r=xservernonce,p=,x"))
	// librdkafka before 2.6.1: the client nonce, then the server's whole r=.
	f.Add([]byte("n,,n=user,r=x"), []byte("c=biws,r=xxservernonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	d := fuzzDirectory(f)
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, m := range []Mechanism{MechScramSHA256, MechScramSHA512} {
			sc, err := d.NewScram(m, func() string { return "servernonce" })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sc.Step(first); err != nil {
				continue
			}
			sc.Step(final)
			if _, ok := sc.Username(); ok {
				t.Fatalf("%s accepted first %q final %q without the password", m, first, final)
			}
		}
	})
}

func fuzzDirectory(f *testing.F) *Directory {
	c256, err := NewScramCredential(MechScramSHA256, "a password nobody guesses", salt(4), 4096)
	if err != nil {
		f.Fatal(err)
	}
	c512, err := NewScramCredential(MechScramSHA512, "a password nobody guesses", salt(5), 4096)
	if err != nil {
		f.Fatal(err)
	}
	d, err := NewDirectory([]User{{Name: "user", Credentials: Credentials{ScramSHA256: c256, ScramSHA512: c512}}},
		DirectoryOptions{ScramDecoyKey: []byte("decoy key for the fuzz target...")})
	if err != nil {
		f.Fatal(err)
	}
	return d
}

// FuzzParsePHC: never panics, accepts only parameters within the limits,
// and what parses re-encodes to the same string.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=1,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, hash, err := ParsePHC(s)
		if err != nil {
			return
		}
		if p.check() != nil {
			t.Fatalf("accepted parameters outside the limits: %+v", p)
		}
		if again := encodePHC(p, salt, hash); again != s {
			t.Fatalf("re-encoding %q gave %q", s, again)
		}
	})
}

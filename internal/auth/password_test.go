package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"golang.org/x/crypto/argon2"
)

// cheap are argon2id parameters for tests that do not measure cost.
var cheap = Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

func salt(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }

// TestArgon2idKnownAnswers checks hashes and their PHC strings against the
// argon2id known answers of the reference implementation
// (phc-winner-argon2, password "password", salt "somesalt"). RFC 9106's own
// argon2id vector also sets a secret key and associated data, which
// golang.org/x/crypto/argon2 does not expose, so it cannot be run here.
func TestArgon2idKnownAnswers(t *testing.T) {
	for _, v := range []struct {
		p       Argon2Params
		keyHex  string
		phc     string
		keySize int
	}{
		{p: Argon2Params{MemoryKiB: 65536, Iterations: 2, Parallelism: 1},
			keyHex: "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7",
			phc:    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
		{p: Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1},
			keyHex: "655ad15eac652dc59f7170a7332bf49b8469be1fdb9c28bb"},
		{p: Argon2Params{MemoryKiB: 4096, Iterations: 4, Parallelism: 4},
			keyHex: "145db9733a9f4ee43edf33c509be96b934d505a4efb33c5a"},
	} {
		want, _ := hex.DecodeString(v.keyHex)
		key := argon2.IDKey([]byte("password"), []byte("somesalt"), v.p.Iterations, v.p.MemoryKiB, v.p.Parallelism, uint32(len(want)))
		if !bytes.Equal(key, want) {
			t.Errorf("argon2id %+v: got %x, want %x", v.p, key, want)
		}
		phc := encodePHC(v.p, []byte("somesalt"), want)
		if v.phc != "" && phc != v.phc {
			t.Errorf("PHC string: got %s, want %s", phc, v.phc)
		}
		if v.p.MemoryKiB > 4096 {
			continue // one 64 MiB evaluation is slow enough under -race; verify the small ones
		}
		if ok, err := VerifyPassword(phc, "password"); !ok || err != nil {
			t.Errorf("VerifyPassword(%s, right password): got %v %v, want true", phc, ok, err)
		}
		if ok, err := VerifyPassword(phc, "Password"); ok || err != nil {
			t.Errorf("VerifyPassword(%s, wrong password): got %v %v, want false", phc, ok, err)
		}
	}
}

func TestHashPasswordRoundTripsAndChecksSalt(t *testing.T) {
	phc, err := HashPassword("s3cret", salt(7), cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("PHC string: got %s", phc)
	}
	p, s, h, err := ParsePHC(phc)
	if err != nil || p != cheap || !bytes.Equal(s, salt(7)) || len(h) != base.AuthArgon2KeyBytes {
		t.Errorf("ParsePHC: got %+v %x %d-byte hash %v", p, s, len(h), err)
	}
	for _, n := range []int{base.AuthSaltBytesMin - 1, base.AuthSaltBytesMax + 1} {
		if _, err := HashPassword("x", make([]byte, n), cheap); base.CodeOf(err) != base.CodeInvalidArgument {
			t.Errorf("salt of %d bytes: got %v, want %v", n, err, base.CodeInvalidArgument)
		}
	}
	if _, err := HashPassword("x", make([]byte, base.AuthSaltBytesMax), cheap); err != nil {
		t.Errorf("salt of %d bytes: got %v", base.AuthSaltBytesMax, err)
	}
	if _, err := HashPassword(strings.Repeat("p", base.AuthPasswordBytesMax+1), salt(1), cheap); base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("long password: got %v, want %v", err, base.CodeTooLarge)
	}
}

func TestParsePHCRefusesBadOrExcessiveHashes(t *testing.T) {
	good := encodePHC(cheap, salt(1), salt(2))
	b64 := base64.RawStdEncoding.EncodeToString(salt(3))
	for _, s := range []string{
		"",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64", "m=064", 1),
		strings.Replace(good, "m=64", fmt.Sprintf("m=%d", base.AuthArgon2MemoryKiBMax+1), 1),
		strings.Replace(good, "t=1", fmt.Sprintf("t=%d", base.AuthArgon2IterationsMax+1), 1),
		strings.Replace(good, "p=1", fmt.Sprintf("p=%d", base.AuthArgon2ParallelismMax+1), 1),
		strings.Replace(good, "p=1", "p=300", 1),
		strings.Replace(good, "m=64", "m=7", 1),
		"$argon2id$v=19$m=64,t=1,p=1$" + b64 + "$" + b64 + "=",
		"$argon2id$v=19$m=64,t=1,p=1$" + b64 + "$" + b64 + "$",
		"$argon2id$v=19$m=64,t=1$" + b64 + "$" + b64,
		"$argon2id$v=19$m=64,t=1,p=1$$" + b64,
		good + strings.Repeat("A", base.AuthPHCBytesMax),
	} {
		if _, _, _, err := ParsePHC(s); base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("ParsePHC(%q): got %v, want %v", s, err, base.CodeCorrupt)
		}
	}
	limit := strings.Replace(good, "m=64", fmt.Sprintf("m=%d", base.AuthArgon2MemoryKiBMax), 1)
	if _, _, _, err := ParsePHC(limit); err != nil {
		t.Errorf("ParsePHC at the memory limit: %v", err)
	}
}

func TestNewCredentialsDerivesAllThree(t *testing.T) {
	c, err := NewCredentials("pencil", Salts{Argon2: salt(1), ScramSHA256: salt(2), ScramSHA512: salt(3)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := VerifyPassword(c.PasswordHash, "pencil"); !ok {
		t.Errorf("password hash does not verify")
	}
	p, _, _, _ := ParsePHC(c.PasswordHash)
	if p != DefaultArgon2Params {
		t.Errorf("parameters: got %+v, want %+v", p, DefaultArgon2Params)
	}
	if len(c.ScramSHA256.StoredKey) != 32 || len(c.ScramSHA512.StoredKey) != 64 ||
		c.ScramSHA256.Iterations != base.AuthScramIterationsDefault {
		t.Errorf("SCRAM credentials: got %d/%d-byte keys, %d iterations", len(c.ScramSHA256.StoredKey),
			len(c.ScramSHA512.StoredKey), c.ScramSHA256.Iterations)
	}
	if _, err := NewScramCredential(MechScramSHA256, "x", salt(1), 4095); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("4095 iterations: got %v, want %v", err, base.CodeInvalidArgument)
	}
	if _, err := NewScramCredential(MechScramSHA256, "x", salt(1), base.AuthScramIterationsMax+1); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("iterations past the limit: got %v", err)
	}
}

// BenchmarkVerifyPassword measures one verification with the default
// parameters (argon2id, 19 MiB, t=2, p=1): the cost of each PLAIN login.
func BenchmarkVerifyPassword(b *testing.B) {
	phc, err := HashPassword("correct horse battery staple", salt(9), DefaultArgon2Params)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := VerifyPassword(phc, "correct horse battery staple"); !ok {
			b.Fatal("did not verify")
		}
	}
}

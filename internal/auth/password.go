package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/xdg-go/scram"
	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id parameters of a password hash.
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultArgon2Params are the parameters of new hashes: OWASP's first
// recommendation for argon2id (19 MiB, 2 passes, 1 lane). RFC 9106's second
// recommendation (64 MiB, t=3, p=4) costs three times the memory per
// verification; a broker verifies in bursts (every client reconnecting after
// a failover), and memory is what runs out. See base.AuthArgon2MemoryKiB.
var DefaultArgon2Params = Argon2Params{
	MemoryKiB:   base.AuthArgon2MemoryKiB,
	Iterations:  base.AuthArgon2Iterations,
	Parallelism: base.AuthArgon2Parallelism,
}

// saltBytesMinRFC is RFC 9106's minimum salt length; hashes made elsewhere
// with salts this short still verify, new ones need base.AuthSaltBytesMin.
const saltBytesMinRFC = 8

func (p Argon2Params) check() error {
	if p.MemoryKiB < 8*uint32(p.Parallelism) || p.MemoryKiB > base.AuthArgon2MemoryKiBMax ||
		p.Iterations < 1 || p.Iterations > base.AuthArgon2IterationsMax ||
		p.Parallelism < 1 || p.Parallelism > base.AuthArgon2ParallelismMax {
		return base.Errorf(base.CodeInvalidArgument, "auth: argon2id parameters m=%d,t=%d,p=%d outside the limits",
			p.MemoryKiB, p.Iterations, p.Parallelism)
	}
	return nil
}

// HashPassword returns the PHC string of password's argon2id hash with the
// caller's salt (base.AuthSaltBytesMin to base.AuthSaltBytesMax random
// bytes): $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>, with
// unpadded standard base64, as the reference implementation writes it.
func HashPassword(password string, salt []byte, p Argon2Params) (string, error) {
	if len(salt) < base.AuthSaltBytesMin || len(salt) > base.AuthSaltBytesMax {
		return "", base.Errorf(base.CodeInvalidArgument, "auth: salt of %d bytes, want %d to %d",
			len(salt), base.AuthSaltBytesMin, base.AuthSaltBytesMax)
	}
	if len(password) > base.AuthPasswordBytesMax {
		return "", base.Errorf(base.CodeTooLarge, "auth: password over %d bytes", base.AuthPasswordBytesMax)
	}
	if err := p.check(); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, base.AuthArgon2KeyBytes)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	var b strings.Builder
	b.WriteString("$argon2id$v=19$m=")
	b.WriteString(strconv.FormatUint(uint64(p.MemoryKiB), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(p.Iterations), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(p.Parallelism), 10))
	b.WriteString("$")
	b.WriteString(base64.RawStdEncoding.EncodeToString(salt))
	b.WriteString("$")
	b.WriteString(base64.RawStdEncoding.EncodeToString(key))
	return b.String()
}

// ParsePHC decodes an argon2id PHC string. It refuses (base.CodeCorrupt)
// anything but argon2id version 19 with parameters within the limits, so a
// damaged or hostile stored hash cannot make verification allocate or spin
// without bound. The salt and hash are the caller's.
func ParsePHC(s string) (p Argon2Params, salt, hash []byte, err error) {
	bad := func(what string) (Argon2Params, []byte, []byte, error) {
		return Argon2Params{}, nil, nil, base.Errorf(base.CodeCorrupt, "auth: password hash: %s", what)
	}
	if len(s) > base.AuthPHCBytesMax {
		return bad("too long")
	}
	// Only the PHC alphabet: base64's decoder would skip \r and \n.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("$,=+/", c) >= 0) {
			return bad("character outside the PHC alphabet")
		}
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return bad("not an argon2id v=19 PHC string")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return bad("want m=,t=,p=")
	}
	var vals [3]uint64
	for i, prefix := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], prefix)
		n, perr := strconv.ParseUint(v, 10, 32)
		if !ok || perr != nil || (len(v) > 1 && v[0] == '0') {
			return bad("bad parameter " + prefix)
		}
		vals[i] = n
	}
	if vals[2] > base.AuthArgon2ParallelismMax {
		return bad("parameters outside the limits")
	}
	p = Argon2Params{MemoryKiB: uint32(vals[0]), Iterations: uint32(vals[1]), Parallelism: uint8(vals[2])}
	if p.check() != nil {
		return bad("parameters outside the limits")
	}
	salt, err1 := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	hash, err2 := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < saltBytesMinRFC || len(salt) > base.AuthSaltBytesMax ||
		len(hash) < 16 || len(hash) > 64 {
		return bad("bad salt or hash")
	}
	return p, salt, hash, nil
}

// VerifyPassword reports whether password matches the PHC hash, comparing
// in constant time. It is deliberately slow (one argon2id evaluation). An
// error means the stored hash is unusable, not that the password is wrong.
func VerifyPassword(phc, password string) (bool, error) {
	p, salt, hash, err := ParsePHC(phc)
	if err != nil {
		return false, err
	}
	if len(password) > base.AuthPasswordBytesMax {
		return false, nil
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(hash)))
	return subtle.ConstantTimeCompare(key, hash) == 1, nil
}

// ScramCredential is what a server stores to run SCRAM for one user and one
// hash function (RFC 5802 §3): never the password, nor anything that lets
// one log in without it.
type ScramCredential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Mechanism names a SASL mechanism.
type Mechanism string

const (
	MechPlain       Mechanism = "PLAIN"
	MechAMQPlain    Mechanism = "AMQPLAIN"
	MechScramSHA256 Mechanism = "SCRAM-SHA-256"
	MechScramSHA512 Mechanism = "SCRAM-SHA-512"
)

func (m Mechanism) hash() scram.HashGeneratorFcn {
	switch m {
	case MechScramSHA256:
		return scram.SHA256
	case MechScramSHA512:
		return scram.SHA512
	}
	return nil
}

// NewScramCredential derives the stored SCRAM credential of password for
// mechanism (SCRAM-SHA-256 or -512) with the caller's salt and iteration
// count (base.AuthScramIterationsDefault for new users; at least 4096, RFC
// 7677). The password is normalised with SASLprep, as clients do.
func NewScramCredential(m Mechanism, password string, salt []byte, iterations int) (ScramCredential, error) {
	hf := m.hash()
	if hf == nil {
		return ScramCredential{}, base.Errorf(base.CodeInvalidArgument, "auth: %s is not a SCRAM mechanism", m)
	}
	if len(salt) < base.AuthSaltBytesMin || len(salt) > base.AuthSaltBytesMax {
		return ScramCredential{}, base.Errorf(base.CodeInvalidArgument, "auth: salt of %d bytes, want %d to %d",
			len(salt), base.AuthSaltBytesMin, base.AuthSaltBytesMax)
	}
	if iterations < 4096 || iterations > base.AuthScramIterationsMax {
		return ScramCredential{}, base.Errorf(base.CodeInvalidArgument, "auth: %d SCRAM iterations, want 4096 to %d",
			iterations, base.AuthScramIterationsMax)
	}
	if len(password) > base.AuthPasswordBytesMax {
		return ScramCredential{}, base.Errorf(base.CodeTooLarge, "auth: password over %d bytes", base.AuthPasswordBytesMax)
	}
	client, err := hf.NewClient("user", password, "")
	if err != nil {
		return ScramCredential{}, base.Errorf(base.CodeInvalidArgument, "auth: password refused by SASLprep: %w", err)
	}
	sc, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return ScramCredential{}, base.Errorf(base.CodeInternal, "auth: deriving SCRAM keys: %w", err)
	}
	return ScramCredential{Salt: append([]byte(nil), salt...), Iterations: iterations,
		StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

// Credentials are everything stored for one user's password: the argon2id
// hash (PLAIN, AMQPLAIN, HTTP basic) and the SCRAM credentials, all derived
// at once from the same password, because SCRAM cannot be served from an
// argon2 hash.
type Credentials struct {
	PasswordHash string
	ScramSHA256  ScramCredential
	ScramSHA512  ScramCredential
}

// Salts are the caller's random salts for NewCredentials, one per
// derivation (reusing one salt would tie the derivations together).
type Salts struct {
	Argon2, ScramSHA256, ScramSHA512 []byte
}

// NewCredentials derives a user's Credentials from a password, with the
// default argon2id parameters and SCRAM iteration count.
func NewCredentials(password string, salts Salts) (Credentials, error) {
	var c Credentials
	var err error
	if c.PasswordHash, err = HashPassword(password, salts.Argon2, DefaultArgon2Params); err != nil {
		return Credentials{}, err
	}
	if c.ScramSHA256, err = NewScramCredential(MechScramSHA256, password, salts.ScramSHA256, base.AuthScramIterationsDefault); err != nil {
		return Credentials{}, err
	}
	if c.ScramSHA512, err = NewScramCredential(MechScramSHA512, password, salts.ScramSHA512, base.AuthScramIterationsDefault); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// keyLen returns the SCRAM key length of mechanism m.
func (m Mechanism) keyLen() int {
	if m == MechScramSHA512 {
		return sha512.Size
	}
	return sha256.Size
}

package protocol

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// filler populates any message struct (ours or kmsg's) with random values
// by reflection: every exported field, nested arrays of 0-3 elements, null
// and non-null nullable fields, and unknown tagged fields. It is seeded, so
// a failure names the seed that reproduces it.
type filler struct {
	rnd *rand.Rand
}

func newFiller(seed uint64) *filler {
	return &filler{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// unknownTagBase is above every tag Kafka has assigned, so a random unknown
// tag never collides with a known one in either codec.
const unknownTagBase = 40

var (
	kmsgTagsType   = reflect.TypeFor[kmsg.Tags]()
	taggedFieldsTy = reflect.TypeFor[[]TaggedField]()
	bytesType      = reflect.TypeFor[[]byte]()
)

func (f *filler) fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(f.rnd.IntN(2) == 1)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(f.int(v.Type().Bits()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.int(v.Type().Bits())) & (1<<v.Type().Bits() - 1))
	case reflect.Float64:
		v.SetFloat(float64(f.rnd.IntN(2000)-1000) / 8)
	case reflect.String:
		v.SetString(f.string())
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			f.fill(v.Index(i))
		}
	case reflect.Pointer:
		if f.rnd.IntN(3) == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		f.fillSlice(v)
	case reflect.Struct:
		f.fillStruct(v)
	}
}

// int returns a value of the given width, biased toward the edges and the
// sentinels (-1, 0) that Kafka fields use.
func (f *filler) int(bits int) int64 {
	switch f.rnd.IntN(6) {
	case 0:
		return 0
	case 1:
		return -1
	case 2:
		return int64(uint64(1)<<(bits-1) - 1) // max
	case 3:
		return -int64(uint64(1) << (bits - 1)) // min
	}
	shift := 64 - bits
	return int64(f.rnd.Uint64()) << shift >> shift
}

func (f *filler) string() string {
	b := make([]byte, f.rnd.IntN(7))
	for i := range b {
		b[i] = byte('a' + f.rnd.IntN(26))
	}
	return string(b)
}

func (f *filler) bytes() []byte {
	if f.rnd.IntN(4) == 0 {
		return nil
	}
	b := make([]byte, f.rnd.IntN(9))
	for i := range b {
		b[i] = byte(f.rnd.Uint32())
	}
	return b
}

func (f *filler) fillSlice(v reflect.Value) {
	switch v.Type() {
	case bytesType:
		v.SetBytes(f.bytes())
		return
	case taggedFieldsTy:
		var tags []TaggedField
		for _, tag := range f.tagIDs() {
			tags = append(tags, TaggedField{Tag: tag, Data: f.bytes()})
		}
		v.Set(reflect.ValueOf(tags))
		return
	}
	if f.rnd.IntN(5) == 0 {
		v.SetZero()
		return
	}
	n := f.rnd.IntN(4)
	s := reflect.MakeSlice(v.Type(), n, n)
	for i := range n {
		f.fill(s.Index(i))
	}
	v.Set(s)
}

// tagIDs returns 0-2 distinct ascending unknown tags.
func (f *filler) tagIDs() []uint32 {
	var ids []uint32
	for range f.rnd.IntN(3) {
		id := unknownTagBase + uint32(f.rnd.IntN(100))
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (f *filler) fillStruct(v reflect.Value) {
	if v.Type() == kmsgTagsType {
		tags := v.Addr().Interface().(*kmsg.Tags)
		for _, id := range f.tagIDs() {
			data := f.bytes()
			if data == nil {
				data = []byte{}
			}
			tags.Set(id, data)
		}
		return
	}
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).IsExported() {
			f.fill(v.Field(i))
		}
	}
}

// fillMessage fills the struct m points to.
func (f *filler) fillMessage(m any) { f.fill(reflect.ValueOf(m).Elem()) }

// maxInt16 is the bound of version loops.
const maxInt16 = math.MaxInt16

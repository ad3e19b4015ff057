package replication

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"sync"

	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// SimpleState is a StateStore in one append-only file: every Commit appends
// one record [length u32][CRC32C u32][updates] and syncs it, so a commit is
// atomic (a torn record is dropped whole at open) and costs one fsync. The
// file is rewritten compactly when it grows to several times its live
// size. It is for tests, the simulator and nodes until the Pebble store is
// wired in; it is safe for concurrent use.
type SimpleState struct {
	fs   vfs.FS
	name string

	mu     sync.Mutex
	f      vfs.File               // guarded by mu
	groups map[GroupID]GroupState // guarded by mu
	size   int64                  // guarded by mu
	failed error                  // guarded by mu
}

const simpleStateRecHeader = 8

// OpenSimpleState opens or creates the state file dir/state.
func OpenSimpleState(fsys vfs.FS, dir string) (*SimpleState, error) {
	if err := mkdirDurable(fsys, dir); err != nil {
		return nil, err
	}
	s := &SimpleState{fs: fsys, name: path.Join(dir, "state"), groups: map[GroupID]GroupState{}}
	f, err := fsys.OpenReadWrite(s.name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.rewriteLocked(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err != nil {
		return nil, storageErr("opening "+s.name, err)
	}
	s.f = f
	if err := s.recover(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *SimpleState) recover() error {
	size, err := s.f.Size()
	if err != nil {
		return storageErr("sizing "+s.name, err)
	}
	data := make([]byte, size)
	if _, err := s.f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return storageErr("reading "+s.name, err)
	}
	at := 0
	for len(data)-at >= simpleStateRecHeader {
		n := int(binary.BigEndian.Uint32(data[at:]))
		if n > len(data)-at-simpleStateRecHeader {
			break
		}
		rec := data[at+simpleStateRecHeader : at+simpleStateRecHeader+n]
		if crc32.Checksum(rec, castagnoli) != binary.BigEndian.Uint32(data[at+4:]) {
			break
		}
		ups, err := decodeStateUpdates(rec)
		if err != nil {
			return err
		}
		s.applyLocked(ups)
		at += simpleStateRecHeader + n
	}
	s.size = int64(at)
	if int64(at) < size {
		if err := s.f.Truncate(int64(at)); err != nil {
			return storageErr("truncating torn tail of "+s.name, err)
		}
	}
	if _, err := s.f.Seek(int64(at), io.SeekStart); err != nil {
		return storageErr("seeking "+s.name, err)
	}
	return nil
}

func (s *SimpleState) applyLocked(ups []StateUpdate) {
	for _, u := range ups {
		if u.Delete {
			delete(s.groups, u.Group)
			continue
		}
		st := s.groups[u.Group]
		if u.HardState != nil {
			st.HardState = *u.HardState
		}
		if u.Snapshot != nil {
			st.Snapshot = *u.Snapshot
		}
		s.groups[u.Group] = st
	}
}

// Load returns a copy of the group's state.
func (s *SimpleState) Load(group GroupID) (GroupState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.groups[group]
	if ok {
		st.Snapshot.ConfState = cloneConfState(st.Snapshot.ConfState)
	}
	return st, ok, nil
}

func (s *SimpleState) Commit(ups []StateUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	payload := encodeStateUpdates(ups)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if err := s.appendLocked(payload); err != nil {
		s.failed = err
		return err
	}
	s.applyLocked(ups)
	if s.size > 1<<20 && s.size > 4*s.liveBytesLocked() {
		if err := s.rewriteLocked(); err != nil {
			s.failed = err
			return err
		}
	}
	return nil
}

func (s *SimpleState) appendLocked(payload []byte) error {
	rec := make([]byte, simpleStateRecHeader, simpleStateRecHeader+len(payload))
	binary.BigEndian.PutUint32(rec, uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(payload, castagnoli))
	rec = append(rec, payload...)
	if _, err := s.f.Write(rec); err != nil {
		return storageErr("writing "+s.name, err)
	}
	if err := s.f.Sync(); err != nil {
		return storageErr("syncing "+s.name, err)
	}
	s.size += int64(len(rec))
	return nil
}

func (s *SimpleState) liveBytesLocked() int64 {
	return int64(len(encodeStateUpdates(s.allLocked())))
}

func (s *SimpleState) allLocked() []StateUpdate {
	ups := make([]StateUpdate, 0, len(s.groups))
	for g, st := range s.groups {
		ups = append(ups, StateUpdate{Group: g, HardState: &st.HardState, Snapshot: &st.Snapshot})
	}
	return ups
}

// rewriteLocked writes the live state to a new file durably (tmp, sync,
// rename, directory sync) and continues appending to it.
func (s *SimpleState) rewriteLocked() error {
	tmp := s.name + ".tmp"
	f, err := s.fs.Create(tmp)
	if err != nil {
		return storageErr("creating "+tmp, err)
	}
	old, oldSize := s.f, s.size
	s.f, s.size = f, 0
	if len(s.groups) > 0 {
		if err := s.appendLocked(encodeStateUpdates(s.allLocked())); err != nil {
			f.Close()
			s.f, s.size = old, oldSize
			return err
		}
	} else if err := f.Sync(); err != nil {
		f.Close()
		s.f, s.size = old, oldSize
		return storageErr("syncing "+tmp, err)
	}
	if err := s.fs.Rename(tmp, s.name); err != nil {
		return storageErr("renaming "+tmp, err)
	}
	if err := s.fs.SyncDir(path.Dir(s.name)); err != nil {
		return storageErr("syncing directory of "+s.name, err)
	}
	if old != nil {
		old.Close()
	}
	return nil
}

func (s *SimpleState) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Update flags in the encoding of one StateUpdate.
const (
	updHardState = 1 << iota
	updSnapshot
	updDelete
)

func encodeStateUpdates(ups []StateUpdate) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ups)))
	for _, u := range ups {
		b = binary.AppendUvarint(b, u.Group)
		var flags byte
		if u.HardState != nil {
			flags |= updHardState
		}
		if u.Snapshot != nil {
			flags |= updSnapshot
		}
		if u.Delete {
			flags |= updDelete
		}
		b = append(b, flags)
		if u.HardState != nil {
			b = appendHardState(b, u.HardState)
		}
		if u.Snapshot != nil {
			b = appendSnapshotMeta(b, u.Snapshot)
		}
	}
	return b
}

// decodeStateUpdates decodes one commit record of the state file. It
// allocates at most one StateUpdate per remaining byte pair.
func decodeStateUpdates(b []byte) ([]StateUpdate, error) {
	d := decoder{b: b}
	n := d.count(2, len(b))
	ups := make([]StateUpdate, 0, n)
	for range n {
		u := StateUpdate{Group: d.uvarint()}
		flags := d.u8()
		if flags&^(updHardState|updSnapshot|updDelete) != 0 {
			d.fail(errors.New("unknown update flags"))
		}
		if flags&updHardState != 0 {
			hs := d.hardState()
			u.HardState = &hs
		}
		if flags&updSnapshot != 0 {
			m := d.snapshotMeta()
			u.Snapshot = &m
		}
		u.Delete = flags&updDelete != 0
		if d.err != nil {
			break
		}
		ups = append(ups, u)
	}
	if err := d.done("state record"); err != nil {
		return nil, err
	}
	return ups, nil
}

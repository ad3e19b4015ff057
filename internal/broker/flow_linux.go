//go:build linux

package broker

import "golang.org/x/sys/unix"

// totalMemory returns the machine's RAM.
func totalMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

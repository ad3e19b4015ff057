//go:build !linux

package broker

// totalMemory is unknown here: the memory watermark must be configured
// (FlowConfig.MemoryLimitBytes), else a default of 4 GiB of RAM is assumed.
func totalMemory() uint64 { return 4 << 30 }

import CPlumbSys

/// Ordered access to memory the kernel writes concurrently (ring buffer and perf ring
/// positions, record headers). Acquire pairs with the kernel's smp_store_release of a
/// position; release publishes our consumer position after we are done with the records.
// Public, not `package`: measured with bench/ringbuf.sh (drain), the `package` variant was not
// inlined into PlumbBPF's record loop and cost ~20% of the reader's rate.
public enum SharedMemory {
    @inlinable @inline(__always)
    public static func loadAcquire64(_ p: UnsafeRawPointer) -> UInt64 {
        cbpf_load_acquire_u64(p.assumingMemoryBound(to: UInt64.self))
    }

    @inlinable @inline(__always)
    public static func loadAcquire32(_ p: UnsafeRawPointer) -> UInt32 {
        cbpf_load_acquire_u32(p.assumingMemoryBound(to: UInt32.self))
    }

    @inlinable @inline(__always)
    public static func storeRelease64(_ p: UnsafeMutableRawPointer, _ value: UInt64) {
        cbpf_store_release_u64(p.assumingMemoryBound(to: UInt64.self), value)
    }
}

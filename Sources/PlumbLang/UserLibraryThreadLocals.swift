// Thread-locals of a shared library in one traced process (-p PID): where the library's
// static TLS block lies below the thread pointer is chosen by ld.so at startup and kept in its
// struct link_map (l_tls_offset), a private glibc struct. glibc publishes the member's offset
// for libthread_db in libc.so.6's `_thread_db_link_map_l_tls_offset` ({bits, count, offset}
// as three u32), so at compile time we find the library's link_map (the list from ld.so's
// `_r_debug.r_map`, matched by l_addr = the library's load bias) in the process's memory and
// read l_tls_offset there. The value holds for that process and its forks (same layout); a
// library loaded by dlopen after startup has dynamic TLS (no static offset): an error.
import Glibc
import PlumbBPF
import PlumbELF

enum LibraryTLS {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The library's static TLS offset below the thread pointer in process `pid`.
    static func staticOffset(pid: Int32, library: String) throws(Failure) -> UInt64 {
        let binaries = Compiler.mappedBinaries(pid: pid)
        func base(_ p: String) -> Substring { p.split(separator: "/").last ?? "" }
        guard let ld = binaries.first(where: { base($0).hasPrefix("ld-linux") || base($0).hasPrefix("ld-") && base($0).contains(".so") }),
              let libc = binaries.first(where: { base($0).hasPrefix("libc.so") }) else {
            throw Failure(description: "process \(pid) maps no glibc dynamic loader and libc.so (only glibc's layout is known)")
        }
        guard let ldELF = try? ELFFile(path: ld), let libcELF = try? ELFFile(path: libc),
              let rDebug = (try? ldELF.symbols(dynamic: true))?.first(where: { $0.name == "_r_debug" }),
              let descriptor = (try? libcELF.symbols(dynamic: true))?.first(where: { $0.name == "_thread_db_link_map_l_tls_offset" }),
              let descriptorFile = libcELF.fileOffset(ofVirtualAddress: descriptor.value) else {
            throw Failure(description: "\(ld) has no _r_debug or \(libc) no _thread_db_link_map_l_tls_offset (glibc's libthread_db descriptors)")
        }
        let v = ByteView(libcELF.bytes, order: libcELF.order)
        guard let bits = v.u32(Int(clamping: descriptorFile)), bits == 64,
              let fieldOffset = v.u32(Int(clamping: descriptorFile) + 8) else {
            throw Failure(description: "glibc's descriptor of link_map.l_tls_offset in \(libc) is not a 64-bit field")
        }
        let ldBias: UInt64, libraryBias: UInt64
        do {
            ldBias = try USDTResolver.loadBias(pid: pid, binary: ld)
            libraryBias = try USDTResolver.loadBias(pid: pid, binary: library)
        } catch {
            throw Failure(description: "\(error)")
        }
        let fd = open("/proc/\(pid)/mem", O_RDONLY)
        guard fd >= 0 else { throw Failure(description: "cannot open /proc/\(pid)/mem: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        func word(_ address: UInt64) throws(Failure) -> UInt64 {
            var x: UInt64 = 0
            guard let off = off_t(exactly: address), pread(fd, &x, 8, off) == 8 else {
                throw Failure(description: "cannot read process \(pid)'s memory at 0x\(String(address, radix: 16))")
            }
            return x
        }
        // struct r_debug { int r_version; struct link_map *r_map; ... }
        // struct link_map { l_addr; l_name; l_ld; l_next; l_prev; ... } (the public part)
        var map = try word(ldBias &+ rDebug.value &+ 8)
        var steps = 0
        while map != 0, steps < 4096 {
            if try word(map) == libraryBias {
                let offset = try word(map &+ UInt64(fieldOffset))
                // glibc: 0 = no TLS offset yet, all ones = forced dynamic TLS (dlopen'ed).
                guard offset != 0, offset < 1 << 40 else {
                    throw Failure(description: "\(library)'s TLS block is allocated dynamically in process \(pid) (loaded with dlopen?), not at a fixed offset from the thread pointer")
                }
                return offset
            }
            map = try word(map &+ 24)
            steps += 1
        }
        throw Failure(description: "\(library) is not in process \(pid)'s list of loaded objects")
    }
}

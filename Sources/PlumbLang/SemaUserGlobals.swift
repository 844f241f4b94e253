// User-space globals: `var("name")`, `var("name@file.c")` (a static of one file),
// `var("name", "PATH")`. Spelled as a function call because `@name` is a map in this
// language and bpftrace has no syntax of its own for it; PATH defaults to the probe's binary
// (uprobe/usdt), else the -p process's executable.
//
// The value is read with bpf_probe_read_user as its DWARF type (structs stay addressable:
// `var("g_conn").user->name`). PIE and libraries are relocated by the load bias: inside an
// entry uprobe or a usdt probe of the same binary it is pt_regs->ip minus the probe's address
// (right in whichever process hit it; a usdt probe with several sites picks the site by its
// attach cookie); elsewhere it is read from /proc/PID/maps for -p at
// compile time. Without DWARF, a .symtab/.dynsym object symbol reads as an unsigned integer of
// the symbol's size, with a warning that the type is a guess. Thread-locals of the executable
// are read in the current thread (UserThreadLocals.swift).
import Glibc
import PlumbBPF
import PlumbDWARF
import PlumbELF

extension Compiler {
    func userVar(_ args: [Expr], _ e: Expr) -> Val {
        let usage = "var() reads a user-space global: var(\"name\"), var(\"name@file.c\") or var(\"name\", \"/path/to/binary\")"
        guard (1...2).contains(args.count), case .string(let qualified) = args[0].kind, !qualified.isEmpty else {
            error(usage, e.range); return .poison
        }
        var pathArg: String?
        if args.count == 2 {
            guard case .string(let p) = args[1].kind else { error(usage, args[1].range); return .poison }
            pathArg = p
        }
        let site = userTypes.probeSites[probeName]
        var exe: String?
        if let pid = options.pid { exe = Compiler.mappedBinaries(pid: pid).first }
        guard let wanted = pathArg ?? site?.path ?? userTypes.usdtPaths[probeName] ?? exe else {
            error("var(\"\(qualified)\") needs the binary: give it as var(\"\(qualified)\", \"PATH\"), use it in a uprobe or usdt probe, or trace a process with -p PID", e.range)
            return .poison
        }
        guard let path = try? UprobeResolver.resolveBinary(wanted), let elf = try? ELFFile(path: path) else {
            error("binary '\(wanted)' not found or not an ELF file", (args.count == 2 ? args[1] : e).range)
            return .poison
        }
        let name = qualified.split(separator: "@").first.map(String.init) ?? qualified

        // Address and type: DWARF first, else the symbol table with a guessed integer type.
        var address: UInt64 = 0
        var type = SType.u64
        var dwarfReason = ""
        var threadLocal: UInt64?  // offset in the executable's TLS block (UserThreadLocals.swift)
        switch userDWARF(path) {
        case .success(let k):
            do {
                let g = try userTypes.loaded[k].dwarf.variable(named: qualified)
                if let o = g.tlsOffset {
                    threadLocal = o
                } else if let a = g.address {
                    address = a
                } else {
                    error("'\(qualified)' in \(path) has no fixed address (optimized out or extern)", e.range)
                    return .poison
                }
                type = userSType(g.type, binary: k)
            } catch {
                dwarfReason = "\(error)"
            }
        case .failure(let err):
            dwarfReason = "\(err)"
        }
        if !dwarfReason.isEmpty {
            var objects: [ELFSymbol] = []
            for dynamic in [false, true] {
                objects += ((try? elf.symbols(dynamic: dynamic)) ?? []).filter {
                    ($0.type == ELFSymbol.STT_OBJECT || $0.type == ExecutableTLS.STT_TLS) && $0.sectionIndex != ELFSymbol.SHN_UNDEF
                }
            }
            guard let s = objects.first(where: { $0.name == name }) else {
                error("no global variable '\(qualified)' in \(path)", e.range,
                      notes: [.init(dwarfReason)] + (nearest(name, in: Array(Set(objects.map(\.name)))).map { [.init("did you mean '\($0)'?")] } ?? []))
                return .poison
            }
            if s.type == ExecutableTLS.STT_TLS { threadLocal = s.value } else { address = s.value }
            let size = [1, 2, 4, 8].contains(Int(s.size)) ? Int(s.size) : 8
            type = .int(size: size, signed: false)
            warning("no DWARF type for '\(name)' in \(path): reading it as a \(size)-byte unsigned integer (the type is a guess)", e.range)
        }

        // Relocation.
        if let threadLocal {
            guard userThreadLocalAddress(qualified, offset: threadLocal, elf: elf, path: path, e) else { return .poison }
        } else if elf.type == ELFFile.ET_EXEC {
            b.emit(.loadImm64(.r0, Int64(bitPattern: address)))
        } else if let site, site.path == path, case .registers(false, true) = context {
            b.emit(.load(.r0, .r6, offset: PtRegs.ip, size: .doubleWord))
            b.emit(.loadImm64(.r1, Int64(bitPattern: address &- site.address)))
            b.emit(.add64(.r0, .r1))
        } else if let sites = usdtSites[probeName], userTypes.usdtPaths[probeName] == path, let last = sites.last,
                  case .registers(false, true) = context {
            // Several sites: ip minus the address of the site that fired, picked by its cookie.
            b.emit(.mov64(.r1, .r6))
            b.emit(.call(helper: Compiler.getAttachCookieHelper))
            let done = b.newLabel()
            for (i, s) in sites.dropLast().enumerated() {
                let next = b.newLabel()
                b.jump(.jne, .r0, imm: Int32(clamping: i), to: next)
                b.emit(.loadImm64(.r1, Int64(bitPattern: address &- s.address)))
                b.goto(done)
                b.bind(next)
            }
            b.emit(.loadImm64(.r1, Int64(bitPattern: address &- last.address)))
            b.bind(done)
            b.emit(.load(.r0, .r6, offset: PtRegs.ip, size: .doubleWord))
            b.emit(.add64(.r0, .r1))
        } else if let pid = options.pid {
            do {
                let bias = try USDTResolver.loadBias(pid: pid, binary: path)
                b.emit(.loadImm64(.r0, Int64(bitPattern: address &+ bias)))
            } catch {
                self.error("cannot relocate var(\"\(qualified)\"): \(error)", e.range)
                return .poison
            }
        } else {
            error("var(\"\(qualified)\"): \(path) is position-independent, so the global's address is known only in a process; use it in an entry uprobe or usdt probe of this binary, or trace a process with -p PID", e.range)
            return .poison
        }
        let base = result(.u64, from: .r0)
        return access(type, base: base.loc, offset: 0, space: .user, e)
    }
}

// iter:NAME probes. The program is attached with a BPF_TRACE_ITER link, and one iterator fd
// made from the link is read to its end on a thread of its own: the kernel runs the program
// once per object as it is read, the program's printf records arrive on the ring buffer the
// event loop drains meanwhile, and once the iteration is over the tracer exits, as bpftrace
// does (an iter probe runs once; the compiler refuses it beside other probes).
import PlumbLang
import PlumbBPF
import Synchronization

/// Where the runs stand: 0 running, 1 finished, 2 failed (error kept in `failure`).
final class IteratorProgress: Sendable {
    let state = Atomic<Int>(0)
    let failure = Mutex<String?>(nil)
}

extension TraceRuntime {
    /// Attaches `probe`'s iterator program and starts reading it; `progress` says when it ends.
    func startIterator(_ probe: PlannedProbe, name: String, progress: IteratorProgress) throws(TraceError) -> Link {
        let program = try self.program(probe)
        let attached: (link: Link, run: IteratorRun)
        do {
            attached = try program.attachIterator()
        } catch {
            throw .attach(probe: probe.name, reason: "\(error)")
        }
        attached.run.readToEndInBackground { error in
            if let error {
                progress.failure.withLock { $0 = "reading iterator \(name): \(error)" }
                progress.state.store(2, ordering: .releasing)
            } else {
                progress.state.store(1, ordering: .releasing)
            }
        }
        return attached.link
    }

    /// iter:NAME:PIN: the iterator's link pinned at `pin`, and the run is over. The pin keeps the
    /// program and its maps alive after plumb exits; each read of the file runs the program, whose
    /// printf writes there (bpf_seq_printf). Remove the file to detach it.
    func pinIterator(_ probe: PlannedProbe, at pin: String, progress: IteratorProgress) throws(TraceError) -> Link {
        let program = try self.program(probe)
        let link: Link
        do { link = try program.attachIteratorForPinning() } catch { throw .attach(probe: probe.name, reason: "\(error)") }
        do {
            try link.pin(pin)
        } catch {
            let dir = pin.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            let reason: String = switch error.errno {
            case .fileExists?: "\(pin) already exists: remove it first (rm \(pin)) or choose another pin"
            case .noSuchFileOrDirectory?: "\(dir.isEmpty ? "/" : dir) does not exist: create it on the bpffs mount (mkdir -p \(dir)) or choose another pin"
            case .notPermitted?, .invalidArgument?, .permissionDenied?:
                "\(pin) is not on a bpffs mount: pin under /sys/fs/bpf (mount it with mount -t bpf bpf /sys/fs/bpf if it is not mounted)"
            default: "\(error)"
            }
            throw .attach(probe: probe.name, reason: "could not pin the iterator: " + reason)
        }
        out.append("Program pinned to \(pin)\n")
        progress.state.store(1, ordering: .releasing)
        return link
    }

    /// Whether an iterator run has ended (the event loop then stops, as after exit()).
    /// A failed read is reported on stderr once.
    func iteratorFinished(_ progress: IteratorProgress?) -> Bool {
        guard let progress else { return false }
        switch progress.state.load(ordering: .acquiring) {
        case 0: return false
        case 2:
            if let message = progress.failure.withLock({ m -> String? in defer { m = nil }; return m }) {
                FileHandleStderr.write("ERROR: \(message)\n")
            }
            return true
        default: return true
        }
    }
}

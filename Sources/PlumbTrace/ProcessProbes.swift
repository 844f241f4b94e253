// The runtime's side of following processes (see PlumbLang/SemaProcess.swift for the design):
// a ProcessTracker is started only when -p/-c is given or the script has process probes; its
// pid map is handed to the loader for the programs' `plumb_pids`; its records drive
// process:begin/end through BPF_PROG_TEST_RUN; an empty set ends the run.
import PlumbLang
import PlumbBPF
import Glibc

final class ProcessFollowing {
    let tracker: ProcessTracker
    /// Tracking a chosen set (-p/-c): the run ends when it is empty. Otherwise every process is
    /// followed for process probes and the run goes on.
    let endsWhenEmpty: Bool
    private var beginPrograms: [Program] = []
    private var endPrograms: [Program] = []

    private init(tracker: ProcessTracker, endsWhenEmpty: Bool) {
        self.tracker = tracker
        self.endsWhenEmpty = endsWhenEmpty
    }

    /// Starts the tracker when the plan or the options ask for one (nil otherwise: no cost).
    /// `targets` are the -p pids and the -c command's (held, not yet exec'd) pid.
    static func start(plan: TracePlan, targets: [Int32]) throws(TraceError) -> ProcessFollowing? {
        let filters = plan.filtersProcesses
        let hasProbes = plan.probes.contains { $0.target == .processBegin || $0.target == .processEnd }
        guard filters || hasProbes || !targets.isEmpty else { return nil }
        if filters && targets.isEmpty {
            throw .command("the script's user probes were compiled to follow processes (-p/-c) but the runtime was given none; set TraceOptions.pid or child")
        }
        do {
            // No target: process probes cover every user process, i.e. init and its descendants.
            let tracker = try ProcessTracker(pids: targets.isEmpty ? [1] : targets)
            return ProcessFollowing(tracker: tracker, endsWhenEmpty: !targets.isEmpty)
        } catch {
            throw .load("starting the process tracker: \(error)")
        }
    }

    /// The tracker's pid map, for the plan's programs to share.
    var reusedMaps: [String: Map] { [ProcessTracker.pidMapName: tracker.pidMap] }

    func bind(_ probes: [PlannedProbe], programs: [String: Program]) {
        beginPrograms = probes.filter { $0.target == .processBegin }.compactMap { programs[$0.program] }
        endPrograms = probes.filter { $0.target == .processEnd }.compactMap { programs[$0.program] }
    }

    /// Runs process:begin/end for the records that arrived (and, the first time, for the
    /// processes running at start); `drain` empties the events ring now and then so a burst of
    /// processes cannot fill it.
    func pump(_ drain: () -> Void) throws(TraceError) {
        let events: [ProcessTracker.Event]
        do { events = try tracker.events() } catch { throw .load("reading the process tracker's records: \(error)") }
        var ran = 0
        for e in events where e.kind != .exec {
            let programs = e.kind == .begin ? beginPrograms : endPrograms
            if programs.isEmpty { continue }
            let context = ProcessProbeContext.bytes(pid: e.pid, tid: e.tid, parent: e.parent, nanoseconds: e.nanoseconds,
                                                    uid: e.uid, gid: e.gid, comm: e.comm)
            for p in programs {
                do { _ = try p.testRun(context: context) } catch {
                    throw .attach(probe: e.kind == .begin ? "process:begin" : "process:end", reason: "running it with BPF_PROG_TEST_RUN failed: \(error)")
                }
            }
            ran += 1
            if ran % 64 == 0 { drain() }
        }
    }

    /// Every tracked process has exited (only for a chosen set).
    var finished: Bool {
        guard endsWhenEmpty else { return false }
        return (try? tracker.isEmpty) ?? false
    }

    func detach() { try? tracker.detach() }
}

extension TracePlan {
    /// Its user probes filter on the tracker's pid set (compiled with -p/-c).
    public var filtersProcesses: Bool { object.maps.contains { $0.name == ProcessTracker.pidMapName } }
}

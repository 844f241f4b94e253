// A throwaway PostgreSQL 15 cluster for tests: initdb into a temp dir owned by `postgres`
// (the server refuses to run as root), a Unix socket in that dir, no TCP, stopped and removed
// by `stop()` (or deinit).
import Foundation
import Glibc

public final class PostgreSQLCluster: @unchecked Sendable {
    public static let bin = "/usr/lib/postgresql/15/bin"
    public static var postgres: String { bin + "/postgres" }

    /// Why a cluster cannot be started here, or nil.
    public static func unavailableReason() -> String? {
        for tool in ["postgres", "initdb", "pg_ctl", "psql"] where !FileManager.default.isExecutableFile(atPath: "\(bin)/\(tool)") {
            return "\(bin)/\(tool) missing (apt-get install postgresql-15; scripts/setup.sh does)"
        }
        guard getpwnam("postgres") != nil else { return "no 'postgres' user to run the server as" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") else { return "runuser missing (util-linux)" }
        guard getuid() == 0 else { return "starting the server as user postgres needs root" }
        return nil
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The cluster's folder: data/ inside, the socket and the log beside it.
    public let directory: String
    public var dataDirectory: String { directory + "/data" }
    public private(set) var postmasterPID: Int32 = 0
    private var running = false
    private var scripts = 0

    /// initdb + pg_ctl start; throws with the server log when either fails.
    public init() throws {
        var template = Array("/tmp/plumb-pg-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw Failure(description: "mkdtemp: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: made)
        guard let pw = getpwnam("postgres") else { throw Failure(description: "no postgres user") }
        guard chown(directory, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
            throw Failure(description: "chown \(directory): \(String(cString: strerror(errno)))")
        }
        let initdb = Self.asPostgres(Self.bin + "/initdb", ["-D", dataDirectory, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"])
        guard initdb.status == 0 else { cleanUp(); throw Failure(description: "initdb failed:\n\(initdb.output)") }
        let options = "-k \(directory) -c listen_addresses='' -c fsync=off -c autovacuum=off -c max_connections=20"
        let start = Self.asPostgres(Self.bin + "/pg_ctl", ["-D", dataDirectory, "-l", directory + "/log", "-o", options, "-w", "-t", "60", "start"])
        guard start.status == 0 else {
            let log = (try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? ""
            cleanUp()
            throw Failure(description: "pg_ctl start failed:\n\(start.output)\n\(log)")
        }
        running = true
        // postmaster.pid: the first line is the postmaster's pid.
        let pidFile = (try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8)) ?? ""
        guard let pid = pidFile.split(separator: "\n").first.flatMap({ Int32($0) }) else {
            stop()
            throw Failure(description: "no pid in \(dataDirectory)/postmaster.pid")
        }
        postmasterPID = pid
    }

    /// Runs `sql` with psql in a new session (a new backend): each statement of a multi-line
    /// script is sent on its own. Returns psql's output, unaligned and tuples only.
    public func psql(_ sql: String) throws -> String {
        scripts += 1
        let file = "\(directory)/script\(scripts).sql"
        guard FileManager.default.createFile(atPath: file, contents: Data(sql.utf8)) else {
            throw Failure(description: "cannot write \(file)")
        }
        defer { unlink(file) }
        let r = Self.asPostgres(Self.bin + "/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", directory, "-U", "postgres", "-d", "postgres", "-f", file])
        guard r.status == 0 else { throw Failure(description: "psql failed (\(r.status)):\n\(r.output)") }
        return r.output
    }

    /// pg_ctl stop -m fast, then the folder goes.
    public func stop() {
        if running {
            _ = Self.asPostgres(Self.bin + "/pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
            running = false
        }
        cleanUp()
    }

    private func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }

    deinit { stop() }

    /// Runs `exe` as user postgres, stdin /dev/null, stdout and stderr into one temp file; waits
    /// with waitpid. (Not Foundation's Process: its waitUntilExit was seen to hang on pg_ctl,
    /// whose server child outlives it.)
    static func asPostgres(_ exe: String, _ args: [String]) -> (status: Int32, output: String) {
        var template = Array("/tmp/plumb-pg-out-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { b in b.baseAddress.map { mkstemp($0) } ?? -1 }
        guard fd >= 0 else { return (-1, "mkstemp: \(String(cString: strerror(errno)))") }
        let outPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { close(fd); unlink(outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        // From `/`: the caller's folder (a CI clone under a 0700 mktemp folder) may be closed
        // to postgres, and psql/pg_ctl then print "could not change directory" into the output.
        let argv = ["/usr/sbin/runuser", "-u", "postgres", "--", "/bin/sh", "-c", "cd / && exec \"$0\" \"$@\"", exe] + args
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        guard rc == 0 else { return (-1, "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS by hand (macros Swift does not import).
        return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }
}

/// A BPF helper function id (`enum bpf_func_id`): part of the instruction set, as the
/// immediate of a helper call. Open-ended (new kernels add helpers), so a struct; the
/// commonly used ones are named, the kernel's full list is in its BTF (`enum bpf_func_id`).
public struct HelperID: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(integerLiteral value: Int32) { rawValue = value }

    public static let mapLookupElem: HelperID = 1
    public static let mapUpdateElem: HelperID = 2
    public static let mapDeleteElem: HelperID = 3
    public static let probeRead: HelperID = 4
    public static let ktimeGetNs: HelperID = 5
    public static let tracePrintk: HelperID = 6
    public static let getSmpProcessorID: HelperID = 8
    public static let getCurrentPidTgid: HelperID = 14
    public static let getCurrentComm: HelperID = 16
    public static let perfEventOutput: HelperID = 25
    public static let getStackID: HelperID = 27
    public static let probeReadStr: HelperID = 45
    public static let probeReadUser: HelperID = 112
    public static let probeReadKernel: HelperID = 113
    public static let ringbufOutput: HelperID = 130
    public static let ringbufReserve: HelperID = 131
    public static let ringbufSubmit: HelperID = 132
    public static let getAttachCookie: HelperID = 174
}

extension Instruction {
    /// call helper `helper`.
    public static func call(_ helper: HelperID) -> Instruction { call(helper: helper.rawValue) }
}

/// The DWARF constants this reader uses (DWARF 5 spec section 7, plus the GNU extensions gcc emits).
public enum DW {
    public enum TAG {
        public static let arrayType: UInt16 = 0x01, classType: UInt16 = 0x02, enumerationType: UInt16 = 0x04,
            formalParameter: UInt16 = 0x05, lexicalBlock: UInt16 = 0x0b, member: UInt16 = 0x0d,
            pointerType: UInt16 = 0x0f, referenceType: UInt16 = 0x10, compileUnit: UInt16 = 0x11,
            structureType: UInt16 = 0x13, subroutineType: UInt16 = 0x15, typedef: UInt16 = 0x16,
            unionType: UInt16 = 0x17, unspecifiedParameters: UInt16 = 0x18, variant: UInt16 = 0x19,
            inheritance: UInt16 = 0x1c, inlinedSubroutine: UInt16 = 0x1d, ptrToMemberType: UInt16 = 0x1f,
            subrangeType: UInt16 = 0x21, baseType: UInt16 = 0x24, constType: UInt16 = 0x26,
            enumerator: UInt16 = 0x28, subprogram: UInt16 = 0x2e, variable: UInt16 = 0x34,
            volatileType: UInt16 = 0x35, restrictType: UInt16 = 0x37, namespace: UInt16 = 0x39,
            importedUnit: UInt16 = 0x3d, unspecifiedType: UInt16 = 0x3b, partialUnit: UInt16 = 0x3c,
            rvalueReferenceType: UInt16 = 0x42, typeUnit: UInt16 = 0x41, atomicType: UInt16 = 0x47,
            callSite: UInt16 = 0x48, skeletonUnit: UInt16 = 0x4a, gnuCallSite: UInt16 = 0x4109
    }
    public enum AT {
        public static let sibling: UInt16 = 0x01, location: UInt16 = 0x02, name: UInt16 = 0x03,
            byteSize: UInt16 = 0x0b, bitOffset: UInt16 = 0x0c, bitSize: UInt16 = 0x0d,
            stmtList: UInt16 = 0x10, lowPC: UInt16 = 0x11, highPC: UInt16 = 0x12, language: UInt16 = 0x13,
            compDir: UInt16 = 0x1b, constValue: UInt16 = 0x1c, inline: UInt16 = 0x20,
            upperBound: UInt16 = 0x2f, abstractOrigin: UInt16 = 0x31, count: UInt16 = 0x37,
            dataMemberLocation: UInt16 = 0x38, declFile: UInt16 = 0x3a, declLine: UInt16 = 0x3b,
            declaration: UInt16 = 0x3c, encoding: UInt16 = 0x3e, external: UInt16 = 0x3f,
            frameBase: UInt16 = 0x40, specification: UInt16 = 0x47, type: UInt16 = 0x49,
            ranges: UInt16 = 0x55, entryPC: UInt16 = 0x52, lowerBound: UInt16 = 0x22,
            dataBitOffset: UInt16 = 0x6b, linkageName: UInt16 = 0x6e, strOffsetsBase: UInt16 = 0x72,
            addrBase: UInt16 = 0x73, rnglistsBase: UInt16 = 0x74, dwoName: UInt16 = 0x76,
            loclistsBase: UInt16 = 0x8c, signature: UInt16 = 0x69, mipsLinkageName: UInt16 = 0x2007,
            gnuVector: UInt16 = 0x2107, gnuAddrBase: UInt16 = 0x2133, gnuRangesBase: UInt16 = 0x2132
    }
    public enum FORM {
        public static let addr: UInt16 = 0x01, block2: UInt16 = 0x03, block4: UInt16 = 0x04,
            data2: UInt16 = 0x05, data4: UInt16 = 0x06, data8: UInt16 = 0x07, string: UInt16 = 0x08,
            block: UInt16 = 0x09, block1: UInt16 = 0x0a, data1: UInt16 = 0x0b, flag: UInt16 = 0x0c,
            sdata: UInt16 = 0x0d, strp: UInt16 = 0x0e, udata: UInt16 = 0x0f, refAddr: UInt16 = 0x10,
            ref1: UInt16 = 0x11, ref2: UInt16 = 0x12, ref4: UInt16 = 0x13, ref8: UInt16 = 0x14,
            refUdata: UInt16 = 0x15, indirect: UInt16 = 0x16, secOffset: UInt16 = 0x17,
            exprloc: UInt16 = 0x18, flagPresent: UInt16 = 0x19, strx: UInt16 = 0x1a, addrx: UInt16 = 0x1b,
            refSup4: UInt16 = 0x1c, strpSup: UInt16 = 0x1d, data16: UInt16 = 0x1e, lineStrp: UInt16 = 0x1f,
            refSig8: UInt16 = 0x20, implicitConst: UInt16 = 0x21, loclistx: UInt16 = 0x22,
            rnglistx: UInt16 = 0x23, refSup8: UInt16 = 0x24, strx1: UInt16 = 0x25, strx2: UInt16 = 0x26,
            strx3: UInt16 = 0x27, strx4: UInt16 = 0x28, addrx1: UInt16 = 0x29, addrx2: UInt16 = 0x2a,
            addrx3: UInt16 = 0x2b, addrx4: UInt16 = 0x2c,
            gnuAddrIndex: UInt16 = 0x1f01, gnuStrIndex: UInt16 = 0x1f02, gnuRefAlt: UInt16 = 0x1f20,
            gnuStrpAlt: UInt16 = 0x1f21
    }
    public enum ATE {
        public static let address: UInt64 = 1, boolean: UInt64 = 2, complexFloat: UInt64 = 3, float: UInt64 = 4,
            signed: UInt64 = 5, signedChar: UInt64 = 6, unsigned: UInt64 = 7, unsignedChar: UInt64 = 8,
            utf: UInt64 = 0x10
    }
    public enum UT {
        public static let compile: UInt8 = 1, type: UInt8 = 2, partial: UInt8 = 3, skeleton: UInt8 = 4,
            splitCompile: UInt8 = 5, splitType: UInt8 = 6
    }
}

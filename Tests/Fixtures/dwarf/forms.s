# Hand-written DWARF for PlumbDWARFTests: the rarer forms and unit shapes compilers seldom emit
# (DW_FORM_indirect, ref_udata/ref1/ref2/ref8/ref_addr, implicit_const, data16, block1, the
# 64-bit format, DWARF 2 and 4 units referring across units). Every reference is a difference
# of labels in one section, so the object needs no relocations.
        .section .debug_abbrev,"",@progbits
.Labbrev0:
        .uleb128 1, 0x11
        .byte 1
        .uleb128 0x03, 0x08, 0x13, 0x21
        .sleb128 12
        .byte 0, 0
        .uleb128 2, 0x24
        .byte 0
        .uleb128 0x03, 0x08, 0x0b, 0x0b, 0x3e, 0x16
        .byte 0, 0
        .uleb128 3, 0x13
        .byte 1
        .uleb128 0x03, 0x08, 0x0b, 0x0f
        .byte 0, 0
        .uleb128 4, 0x0d
        .byte 0
        .uleb128 0x03, 0x08, 0x49, 0x15, 0x38, 0x05
        .byte 0, 0
        .uleb128 5, 0x0d
        .byte 0
        .uleb128 0x03, 0x08, 0x49, 0x10, 0x38, 0x0d, 0x0d, 0x0b, 0x6b, 0x06
        .byte 0, 0
        .uleb128 6, 0x0f
        .byte 0
        .uleb128 0x0b, 0x21
        .sleb128 8
        .uleb128 0x49, 0x12
        .byte 0, 0
        .uleb128 7, 0x34
        .byte 0
        .uleb128 0x03, 0x08, 0x49, 0x14, 0x3f, 0x19, 0x02, 0x18
        .byte 0, 0
        .uleb128 8, 0x16
        .byte 0
        .uleb128 0x03, 0x08, 0x49, 0x11, 0x3a, 0x1e
        .byte 0, 0
        .uleb128 9, 0x2e
        .byte 1
        .uleb128 0x03, 0x08, 0x11, 0x01, 0x12, 0x07, 0x49, 0x13, 0x3f, 0x0c
        .byte 0, 0
        .uleb128 10, 0x05
        .byte 0
        .uleb128 0x03, 0x08, 0x49, 0x13, 0x02, 0x0a
        .byte 0, 0
        .uleb128 11, 0x04
        .byte 1
        .uleb128 0x03, 0x08, 0x0b, 0x0b
        .byte 0, 0
        .uleb128 12, 0x28
        .byte 0
        .uleb128 0x03, 0x08, 0x1c, 0x0d
        .byte 0, 0
        .byte 0
.Labbrev1:
        .uleb128 1, 0x11
        .byte 1
        .uleb128 0x03, 0x08
        .byte 0, 0
        .uleb128 2, 0x34
        .byte 0
        .uleb128 0x03, 0x08, 0x49, 0x10, 0x02, 0x18
        .byte 0, 0
        .byte 0
.Labbrev2:
        .uleb128 1, 0x11
        .byte 1
        .uleb128 0x03, 0x08
        .byte 0, 0
        .uleb128 2, 0x34
        .byte 0
        .uleb128 0x03, 0x08, 0x49, 0x10, 0x02, 0x0a
        .byte 0, 0
        .byte 0

        .section .debug_info,"",@progbits
# Unit 0: DWARF 5, 32-bit.
.Linfo0:
        .long .Lend0 - .Lstart0
.Lstart0:
        .short 5
        .byte 1, 8
        .long .Labbrev0 - .Labbrev0
        .uleb128 1
        .asciz "forms.c"
.Lint:
        .uleb128 2
        .asciz "int"
        .byte 4
        .uleb128 0x0b
        .byte 5
.Lpair:
        .uleb128 3
        .asciz "pair"
        .uleb128 16
        .uleb128 4
        .asciz "first"
        .uleb128 .Lint - .Linfo0
        .short 0
        .uleb128 5
        .asciz "bits"
        .long .Lint - .Linfo0
        .sleb128 4
        .byte 3
        .long 37
        .uleb128 4
        .asciz "next"
        .uleb128 .Lptr - .Linfo0
        .short 8
        .byte 0
.Lptr:
        .uleb128 6
        .short .Lpair - .Linfo0
        .uleb128 7
        .asciz "hand_global"
        .quad .Lpair - .Linfo0
        .uleb128 9
        .byte 0x03
        .quad 0x1234
        .uleb128 8
        .asciz "pair_t"
        .byte .Lpair - .Linfo0
        .quad 0, 0
        .uleb128 9
        .asciz "hand_fn"
        .quad 0x4000
        .quad 0x20
        .long .Lint - .Linfo0
        .byte 1
        .uleb128 10
        .asciz "p"
        .long .Lptr - .Linfo0
        .byte 2, 0x91, 0x78
        .byte 0
        .uleb128 11
        .asciz "mood"
        .byte 4
        .uleb128 12
        .asciz "SAD"
        .sleb128 -3
        .uleb128 12
        .asciz "HAPPY"
        .sleb128 300
        .byte 0
        .byte 0
.Lend0:
# Unit 1: DWARF 4 in the 64-bit format; its variable's type is in unit 0 (ref_addr, 8 bytes).
        .long 0xffffffff
        .quad .Lend1 - .Lstart1
.Lstart1:
        .short 4
        .quad .Labbrev1 - .Labbrev0
        .byte 8
        .uleb128 1
        .asciz "wide.c"
        .uleb128 2
        .asciz "other_global"
        .quad .Lint - .Linfo0
        .uleb128 9
        .byte 0x03
        .quad 0x5678
        .byte 0
.Lend1:
# Unit 2: DWARF 2 with 4-byte addresses: ref_addr has the address size.
        .long .Lend2 - .Lstart2
.Lstart2:
        .short 2
        .long .Labbrev2 - .Labbrev0
        .byte 4
        .uleb128 1
        .asciz "old.c"
        .uleb128 2
        .asciz "old_global"
        .long .Lint - .Linfo0
        .byte 5, 0x03
        .long 0x9abc
        .byte 0
.Lend2:

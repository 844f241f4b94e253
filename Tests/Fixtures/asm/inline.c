// Inline BPF assembly reaching every instruction form LLVM 21 assembles, for the
// disassembler differential test. Built with -mcpu=v4 (bpfel and bpfeb).
#define SEC(n) __attribute__((section(n), used))

static __attribute__((noinline)) int callee(int a) { return a + 1; }

SEC("socket")
int alu(void *ctx) {
    asm volatile(
        "r1 = r2\n w1 = w2\n r1 = 0x7fffffff\n r1 = -2147483648\n w1 = -1\n"
        "r1 += r2\n r1 += -5\n w1 += w2\n w1 += 5\n r1 -= r2\n r1 -= 5\n w1 -= w2\n w1 -= 5\n"
        "r1 *= r2\n r1 *= 3\n w1 *= w2\n w1 *= 3\n r1 /= r2\n r1 /= 3\n w1 /= w2\n w1 /= 3\n"
        "r1 s/= r2\n r1 s/= -3\n w1 s/= w2\n w1 s/= 3\n r1 %%= r2\n r1 %%= 3\n w1 %%= w2\n w1 %%= 3\n"
        "r1 s%%= r2\n r1 s%%= 3\n w1 s%%= w2\n w1 s%%= -3\n"
        "r1 |= r2\n r1 |= 1\n w1 |= w2\n w1 |= 1\n r1 &= r2\n r1 &= 255\n w1 &= w2\n w1 &= 255\n"
        "r1 <<= r2\n r1 <<= 3\n w1 <<= w2\n w1 <<= 3\n r1 >>= r2\n r1 >>= 60\n w1 >>= w2\n w1 >>= 31\n"
        "r1 s>>= r2\n r1 s>>= 63\n w1 s>>= w2\n w1 s>>= 1\n r1 ^= r2\n r1 ^= -1\n w1 ^= w2\n w1 ^= 1\n"
        "r1 = -r1\n w1 = -w1\n"
        "r1 = (s8)r2\n r1 = (s16)r2\n r1 = (s32)r2\n w1 = (s8)w2\n w1 = (s16)w2\n"
        "r1 = be16 r1\n r1 = be32 r1\n r1 = be64 r1\n r1 = le16 r1\n r1 = le32 r1\n r1 = le64 r1\n"
        "r1 = bswap16 r1\n r1 = bswap32 r1\n r1 = bswap64 r1\n"
        "r1 = addr_space_cast(r2, 0, 1)\n r3 = addr_space_cast(r4, 1, 0)\n"
        "r1 = 0 ll\n r2 = 0x123456789 ll\n r3 = -1 ll\n r4 = 0xffffffff00000000 ll\n r5 = 0x80000000 ll\n"
        "r9 = r10\n r0 = 0\n"
        ::: "memory", "r0", "r1", "r2", "r3", "r4", "r5", "r9");
    return 0;
}

SEC("socket")
int mem(void *ctx) {
    asm volatile(
        "r2 = *(u8 *)(r1 + 0)\n r2 = *(u16 *)(r1 - 8)\n r2 = *(u32 *)(r1 + 4)\n r2 = *(u64 *)(r10 - 8)\n"
        "r2 = *(s8 *)(r1 + 0)\n r2 = *(s16 *)(r1 + 2)\n r2 = *(s32 *)(r1 - 32768)\n"
        "*(u8 *)(r1 + 0) = r2\n *(u16 *)(r1 + 2) = r2\n *(u32 *)(r1 + 4) = w2\n *(u64 *)(r10 - 16) = r2\n"
        "*(u8 *)(r1 + 0) = 1\n *(u16 *)(r1 + 0) = -2\n *(u32 *)(r1 + 32767) = 3\n *(u64 *)(r1 + 0) = -4\n"
        "lock *(u64 *)(r1 + 0) += r2\n lock *(u32 *)(r1 + 0) += w2\n"
        "lock *(u64 *)(r1 + 8) |= r2\n lock *(u32 *)(r1 + 8) |= w2\n"
        "lock *(u64 *)(r1 + 8) &= r2\n lock *(u32 *)(r1 + 8) &= w2\n"
        "lock *(u64 *)(r1 - 8) ^= r2\n lock *(u32 *)(r1 - 8) ^= w2\n"
        "r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_add((u32 *)(r1 + 0), w2)\n"
        "r2 = atomic_fetch_or((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_or((u32 *)(r1 + 0), w2)\n"
        "r2 = atomic_fetch_and((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_and((u32 *)(r1 + 0), w2)\n"
        "r2 = atomic_fetch_xor((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_xor((u32 *)(r1 + 0), w2)\n"
        "r2 = xchg_64(r1 + 0, r2)\n w2 = xchg32_32(r1 + 4, w2)\n"
        "r0 = cmpxchg_64(r1 + 0, r0, r2)\n w0 = cmpxchg32_32(r1 + 4, w0, w2)\n"
        "r0 = load_acquire((u64 *)(r1 + 0))\n w0 = load_acquire((u32 *)(r1 + 8))\n"
        "w0 = load_acquire((u16 *)(r1 + 8))\n w0 = load_acquire((u8 *)(r1 - 8))\n"
        "store_release((u64 *)(r1 + 0), r2)\n store_release((u32 *)(r1 + 0), w2)\n"
        "store_release((u16 *)(r1 + 0), w2)\n store_release((u8 *)(r1 + 0), w2)\n"
        "r6 = r1\n r0 = *(u8 *)skb[1]\n r0 = *(u16 *)skb[2]\n r0 = *(u32 *)skb[-4]\n"
        "r0 = *(u8 *)skb[r1]\n r0 = *(u16 *)skb[r2]\n r0 = *(u32 *)skb[r3]\n"
        ::: "memory", "r0", "r1", "r2", "r3", "r6");
    return 0;
}

SEC("socket")
int jumps(void *ctx) {
    asm volatile(
        "top:\n"
        "if r1 == r2 goto top\n if r1 == 0 goto out\n if r1 != r2 goto top\n if r1 != -1 goto out\n"
        "if r1 > r2 goto top\n if r1 > 1 goto out\n if r1 >= r2 goto top\n if r1 >= 1 goto out\n"
        "if r1 < r2 goto top\n if r1 < 1 goto out\n if r1 <= r2 goto top\n if r1 <= 1 goto out\n"
        "if r1 s> r2 goto top\n if r1 s> 1 goto out\n if r1 s>= r2 goto top\n if r1 s>= -1 goto out\n"
        "if r1 s< r2 goto top\n if r1 s< 1 goto out\n if r1 s<= r2 goto top\n if r1 s<= 1 goto out\n"
        "if r1 & r2 goto top\n if r1 & 4 goto out\n"
        "if w1 == w2 goto top\n if w1 == 0 goto out\n if w1 != w2 goto top\n if w1 != -1 goto out\n"
        "if w1 > w2 goto top\n if w1 > 1 goto out\n if w1 >= w2 goto top\n if w1 >= 1 goto out\n"
        "if w1 < w2 goto top\n if w1 < 1 goto out\n if w1 <= w2 goto top\n if w1 <= 1 goto out\n"
        "if w1 s> w2 goto top\n if w1 s> 1 goto out\n if w1 s>= w2 goto top\n if w1 s>= -1 goto out\n"
        "if w1 s< w2 goto top\n if w1 s< 1 goto out\n if w1 s<= w2 goto top\n if w1 s<= 1 goto out\n"
        "if w1 & w2 goto top\n if w1 & 4 goto out\n"
        "goto top\n gotol out\n gotol top\n may_goto top\n may_goto out\n goto +0\n"
        "call 6\n call 0x7fffffff\n callx r3\n"
        "out:\n"
        ::: "memory", "r0", "r1", "r2", "r3", "r4", "r5");
    return callee(1);
}

SEC("socket")
int pseudo(void *ctx) {
    asm volatile(
        "ld_pseudo r1, 1, 3\n ld_pseudo r2, 2, 4\n ld_pseudo r3, 3, 77\n ld_pseudo r4, 4, 2\n"
        "ld_pseudo r5, 5, 0\n ld_pseudo r6, 6, 1\n"
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        /* ld_imm64 src=2 (map value) with offset 0x10 in the second half; kfunc call (src=2) */
        ".byte 0x18, 0x12, 0, 0, 0, 0, 0, 5,  0, 0, 0, 0, 0, 0, 0, 0x10\n"
        ".byte 0x85, 0x02, 0, 0, 0, 0, 0x12, 0x34\n"
        ".byte 0x85, 0x02, 0, 1, 0, 0, 0, 9\n"
#else
        ".byte 0x18, 0x21, 0, 0, 5, 0, 0, 0,  0, 0, 0, 0, 0x10, 0, 0, 0\n"
        ".byte 0x85, 0x20, 0, 0, 0x34, 0x12, 0, 0\n"
        ".byte 0x85, 0x20, 1, 0, 9, 0, 0, 0\n"
#endif
        ::: "memory", "r0", "r1", "r2", "r3", "r4", "r5", "r6");
    return 0;
}

char LICENSE[] SEC("license") = "GPL";

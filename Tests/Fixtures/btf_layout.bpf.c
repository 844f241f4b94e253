// BTF fixture: struct layouts the C dumper must reproduce (bitfields, padding, packing,
// alignment, anonymous members, arrays). Globals make clang emit each type.

struct bits {
	unsigned int a: 1;
	unsigned int b: 3;
	int c: 7;
	unsigned long long d: 33;   /* spans a 32-bit unit */
	unsigned char e: 2;
	int : 0;                    /* zero-width: realign to the next int */
	unsigned short f: 9;
	long g: 60;
	char h;
	unsigned int i: 17;
	_Bool j: 1;
};

struct gaps {
	char a;
	long b;                     /* natural padding */
	char c;
	int d __attribute__((aligned(16)));
	char e;
	long f[3];
	short g;
};

struct __attribute__((packed)) packed_s {
	char a;
	int b;
	long c;
	short d;
};

struct contains_packed {
	char x;
	struct packed_s p;
	int y;
};

struct __attribute__((packed, aligned(4))) packed_aligned {
	char a;
	int b;
	char c;
};

struct __attribute__((aligned(16))) aligned16 {
	int a;
};

struct has_aligned {
	char c;
	struct aligned16 s;
	char tail;
};

struct tail_pad_bits {
	long a;
	unsigned int b: 3;
};

struct big_gap {
	char a;
	char b __attribute__((aligned(64)));
	char c __attribute__((aligned(32)));
	int d: 5;
	int e: 5 __attribute__((aligned(8)));
};

struct empty {};

struct with_empty {
	int a;
	struct empty e;
	struct {} anon_empty;
	int b;
};

struct anon_members {
	int kind;
	union {
		struct {
			int x, y;
		};
		struct {
			long wide;
			union {
				char c;
				short s;
			} inner;
		} named_in_union;
		unsigned char raw[16];
	};
	struct {
		unsigned int lo: 4, hi: 4;
	} nibbles;
	union {
		int i;
		float f;
	} *ptr_to_anon;
};

union top_union {
	int i;
	char c[7];
	struct bits b;
	double d;
};

struct arrays {
	int one[4];
	int two[2][3];
	char three[2][3][4];
	struct gaps grid[2][2];
	int *ptrs[5];
	int (*ptr_to_arr)[8];
	int (*ptr_to_2d)[2][3];
	const char *const names[3];
	int flex[];
};

struct bits g_bits;
struct gaps g_gaps;
struct packed_s g_packed;
struct contains_packed g_contains_packed;
struct packed_aligned g_packed_aligned;
struct has_aligned g_has_aligned;
struct tail_pad_bits g_tail_pad_bits;
struct big_gap g_big_gap;
struct with_empty g_with_empty;
struct anon_members g_anon;
union top_union g_union;
struct arrays *g_arrays;
int g_matrix[3][4][5];

char _license[] __attribute__((section("license"))) = "GPL";

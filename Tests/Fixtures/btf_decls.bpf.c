// BTF fixture: declarators and named things the C dumper must reproduce: function
// pointers, enums of every size, typedef chains, qualifiers, tags, forward declarations.

#define __tag(x) __attribute__((btf_type_tag(x)))
#define __decl(x) __attribute__((btf_decl_tag(x)))

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed long long s64;
typedef u64 chain1;
typedef chain1 chain2;
typedef const chain2 const_chain;
typedef struct fwd_only *fwd_ptr;

struct fwd_only;
union fwd_union;

enum e8 { E8_A = 1, E8_B = 255 } __attribute__((packed));
enum e16 { E16_A = 1, E16_B = 0x1234 } __attribute__((packed));
enum es8 { ES8_NEG = -3, ES8_POS = 100 } __attribute__((packed));
enum e32 { E32_A, E32_B = 0x7fffffff, E32_C = 0xffffffffu };
enum esigned { ES_NEG = -1, ES_MIN = -2147483647 - 1, ES_POS = 5 };
enum e64 { E64_SMALL = 1, E64_BIG = 0x123456789abcdefULL, E64_MAX = 0xffffffffffffffffULL };
enum e64s { E64S_NEG = -5LL, E64S_BIG = 0x100000000LL };
enum { ANON_CONST_A = 10, ANON_CONST_B = 20 };

typedef enum { TE_X, TE_Y } typedef_enum_t;
typedef struct { int a; u8 b; } typedef_struct_t;
typedef union { int a; float f; } typedef_union_t;

typedef int (*binop_t)(int, int);
typedef void (*handler_t)(void);
typedef int (*varfn_t)(const char *fmt, ...);
typedef int (*(*fn_returning_fnptr)(long))(char);
typedef void (*arr_of_fnptr_t[4])(int);

struct callbacks {
	binop_t op;
	handler_t handlers[3];
	int (*direct)(struct callbacks *self, unsigned long flags);
	void (*(*get_handler)(int which))(void);
	int (*table[2][2])(void *);
	char *(*returns_ptr)(const void *restrict src, u32 len);
	struct fwd_only *(*make)(union fwd_union *u);
	typedef_struct_t (*returns_struct)(typedef_union_t);
	enum e8 (*returns_enum)(enum { INLINE_A, INLINE_B } e);
};

struct quals {
	const int ci;
	volatile int vi;
	const volatile int cvi;
	int *const cp;
	const int *pc;
	const int *const cpc;
	int *restrict rp;
	volatile char *volatile *const vpp;
	const char *const *const names;
	const_chain cc;
	const int carr[2];
	const volatile u64 *cv_ptr;
};

struct tagged {
	int __tag("user") *uptr;
	char __tag("user") __tag("rcu") *multi;
	int __tag("percpu") *const cptr;
	struct tagged __tag("rcu") *next;
	int plain __decl("plain_member");
	int tagged_member __decl("a") __decl("b");
} __decl("tagged_struct");

struct kinds {
	_Bool b;
	char c;
	signed char sc;
	unsigned char uc;
	short s;
	unsigned short us;
	int i;
	unsigned int ui;
	long l;
	unsigned long ul;
	long long ll;
	unsigned long long ull;
	__int128 i128;
	unsigned __int128 u128;
	float f;
	double d;
	long double ld;
	char str[16];
	u8 bytes[4];
	s64 signed64;
};

struct uses_fwd {
	struct fwd_only *a;
	union fwd_union *b;
	fwd_ptr c;
	struct later *l;
};

struct later {
	struct uses_fwd *back;
	int v;
};

struct enums {
	enum e8 a;
	enum e16 b;
	enum es8 c;
	enum e32 d;
	enum esigned e;
	enum e64 f;
	enum e64s g;
	typedef_enum_t h;
	enum { FIELD_ENUM_A = -1, FIELD_ENUM_B } inline_enum;
	enum e8 arr[3];
};

struct self_ref {
	struct self_ref *next;
	struct self_ref **pprev;
	struct { struct self_ref *inner; } wrap;
};

struct mutual_b;
struct mutual_a { struct mutual_b *b; int x; };
struct mutual_b { struct mutual_a a; struct mutual_a *pa; };

struct callbacks g_callbacks;
struct quals g_quals;
struct tagged g_tagged;
struct kinds g_kinds;
struct uses_fwd g_uses_fwd;
struct enums g_enums;
struct self_ref g_self_ref;
struct mutual_b g_mutual;
typedef_enum_t g_te;
typedef_struct_t g_ts;
typedef_union_t g_tu;
fn_returning_fnptr g_frf;
arr_of_fnptr_t g_afp;
varfn_t g_varfn;
int g_anon_enum_user = ANON_CONST_A;
chain2 g_chain;

int global_fn(struct callbacks *cb __decl("arg"), int x) __decl("fn_tag");
__attribute__((noinline)) int global_fn(struct callbacks *cb, int x)
{
	return cb ? x + 1 : x;
}

__attribute__((section("tracepoint/x"), used))
int prog(void *ctx)
{
	return global_fn(&g_callbacks, 1);
}

char _license[] __attribute__((section("license"))) = "GPL";

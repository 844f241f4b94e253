// BTF fixture: corner cases of the C dumper: padding-only and nested empty structs,
// repeated names (___N suffixes), typedef cycles through pointers, opaque typedefs,
// bitfields of enum and typedef types, packed unions, __builtin_va_list.

typedef unsigned int u32;
typedef u32 flags_t;

struct pad_only {
	int : 32;
};

struct pad_between {
	char a;
	int : 12;
	char b;
	char : 8;
};

struct nested_empty {
	int a;
	struct {
		struct {} deeper;
		int x;
	} level1;
	union {} empty_union;
};

enum color { RED, GREEN, BLUE };

struct odd_bits {
	enum color c: 2;
	flags_t f: 5;
	_Bool b: 1;
	unsigned long long wide: 40;
	signed char sc: 3;
};

union __attribute__((packed)) packed_union {
	char c;
	int i;
	struct __attribute__((packed)) {
		char x;
		long y;
	} s;
};

struct __attribute__((packed)) packed_bits {
	char a;
	unsigned int b: 20;
	unsigned long long c: 44;
	short d;
};

typedef struct node node_t;
struct node {
	node_t *next;
	struct node *prev;
	int val;
};

typedef struct opaque opaque_t;

typedef struct {
	int (*cb)(struct { int a; } *arg);
	struct { char tag; } *anon_ptr;
	struct { short s; } arr_of_anon[2];
} anon_holder_t;

struct dup {
	int x;
};

typedef __builtin_va_list va_list_t;

struct va_user {
	va_list_t ap;
	__builtin_va_list raw;
};

struct volatile_members {
	volatile struct dup vd;
	const union packed_union cu;
	struct dup *volatile vp;
	const anon_holder_t *holder;
};

struct pad_only g_pad_only;
struct pad_between g_pad_between;
struct nested_empty g_nested_empty;
struct odd_bits g_odd_bits;
union packed_union g_packed_union;
struct packed_bits g_packed_bits;
node_t g_node;
opaque_t *g_opaque;
anon_holder_t g_anon_holder;
struct dup g_dup;
struct va_user g_va;
struct volatile_members g_vm;

/* A struct tag declared in a parameter list is a different type with the same name. */
__attribute__((noinline)) long use_dup(struct dup { long y; char z; } *p, enum { DUP_ENUM_A = 7 } e)
{
	return p->y + e;
}

__attribute__((section("tracepoint/y"), used))
int prog2(void *ctx)
{
	return use_dup((void *)0, 0) + g_dup.x;
}

char _license[] __attribute__((section("license"))) = "GPL";

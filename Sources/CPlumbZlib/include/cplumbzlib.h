#ifndef CPLUMBZLIB_H
#define CPLUMBZLIB_H
/* zlib for PlumbDWARF's compressed debug sections (SHF_COMPRESSED, .zdebug_*). No logic here. */
#include <zlib.h>
#endif
